//! Rebuilds the PostgreSQL day-bucket indexes of `m20261130_000007_day_buckets` on the
//! expression tally's SQL now groups a day of an instant in UTC on:
//! `date_bin(INTERVAL '1 day', "<col>" AT TIME ZONE INTERVAL '+00:00', TIMESTAMP '0001-01-01 00:00:00')`
//! ([`crate::ddl::day_bucket_expr`]). It gives the same day as the `date_trunc('day', "<col>"
//! AT TIME ZONE 'UTC')` it replaces, by integer arithmetic instead of a zone looked up by name
//! and a split into calendar fields for every row. An index on the old expression no longer
//! matches what tally's SQL writes, so it is dropped. SQLite's expression is unchanged:
//! nothing to do there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::ddl;
use crate::m20261130_000007_day_buckets::DAY_BUCKETS;

/// Replaces the PostgreSQL day-bucket indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Drops the day-bucket indexes of [`DAY_BUCKETS`] and creates them on `expr(column)`, then
/// gathers the statistics of the new expressions (the number of days is what the planner
/// needs). PostgreSQL only.
async fn rebuild(
    manager: &SchemaManager<'_>,
    expr: impl Fn(&str) -> Result<String, DbErr>,
) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    if backend != DbBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for (model, table, column) in DAY_BUCKETS {
        let name = ddl::day_index_name(table, column);
        db.execute_unprepared(&format!("DROP INDEX IF EXISTS \"{model}\".\"{name}\""))
            .await?;
        let sql = ddl::day_index_sql(backend, model, table, column, &expr(column)?)?;
        db.execute_unprepared(&sql).await?;
    }
    for (model, table, _) in DAY_BUCKETS {
        db.execute_unprepared(&format!("ANALYZE \"{model}\".\"{table}\""))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, |column| {
            ddl::day_bucket_expr(DbBackend::Postgres, column)
        })
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, |column| Ok(ddl::day_bucket_expr_truncated(column))).await
    }
}
