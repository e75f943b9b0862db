//! Indexes each event table's time column by its day in UTC: the expression tally groups on
//! when a request asks for that time dimension `(granularity: DAY)` in UTC, the most common
//! question of a dashboard.
//!
//! - PostgreSQL: `date_trunc('day', "<col>" AT TIME ZONE 'UTC')` (since replaced by a
//!   `date_bin` of the same day: `m20261201_000008_day_buckets_binned`). The planner reads the rows
//!   in day order from the index instead of sorting them, and estimates the number of days
//!   from the index's statistics instead of guessing (a guess it otherwise makes for any
//!   expression, often wrong by 20×, which decides how per-table aggregates are joined).
//! - SQLite: `strftime('%Y-%m-%dT00:00:00Z', "<col>")`. SQLite reads the rows in day order
//!   and the day's text from the index, with no temporary B-tree for the GROUP BY and no
//!   `strftime` per row.
//!
//! The expressions must stay exactly what `tally`'s SQL dialects write for a day bucket of an
//! instant in UTC (`Dialect::time_key`), or the planners do not match them; a test of the
//! tally crate checks both backends use the index for a by-day request.

use sea_orm_migration::prelude::*;

use crate::ddl;

/// The indexed columns: (model, table, time column). Event and fact tables whose time column
/// is an instant and is a model's time dimension (tables of versioned rows are grouped after
/// their asOf cut, and the gym's times are local wall-clock times).
pub const DAY_BUCKETS: &[(&str, &str, &str)] = &[
    ("saas", "global_events", "event_time"),
    ("saas", "invoices", "invoice_timestamp"),
    ("shop", "order_line", "order_time"),
    ("shop", "inventory_event", "event_time"),
    ("social", "content_event", "event_time"),
    ("social", "ad_event", "event_time"),
    ("web", "events", "created_at"),
    ("web", "orders", "created_at"),
];

/// Adds the day-bucket indexes of [`DAY_BUCKETS`].
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        for (model, table, column) in DAY_BUCKETS {
            // the expression of its day, frozen: a later migration replaces it
            let sql = match backend {
                sea_orm_migration::sea_orm::DbBackend::Postgres => ddl::day_index_sql(
                    backend,
                    model,
                    table,
                    column,
                    &ddl::day_bucket_expr_truncated(column),
                )?,
                _ => ddl::create_day_index_sql(backend, model, table, column)?,
            };
            manager.get_connection().execute_unprepared(&sql).await?;
        }
        if backend == sea_orm_migration::sea_orm::DbBackend::Postgres {
            // statistics of the new expressions: the number of days is what the planner needs
            for (model, table, _) in DAY_BUCKETS {
                manager
                    .get_connection()
                    .execute_unprepared(&format!("ANALYZE \"{model}\".\"{table}\""))
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (model, table, column) in DAY_BUCKETS {
            let name = ddl::day_index_name(table, column);
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS \"{model}\".\"{name}\""))
                .await?;
        }
        Ok(())
    }
}
