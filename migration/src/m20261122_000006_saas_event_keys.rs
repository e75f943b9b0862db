//! Indexes `saas.global_events` by the user and the shop its metadata names
//! (`metadata ->> 'user_id'`, `metadata ->> 'shop_id'`), so that the lifecycle drill-down
//! (a page of users' emails, shops and plans) and the stage history's per-user updates find
//! a user's events without reading every event. Expression indexes on both backends; queries
//! write the same expressions (`e.metadata ->> 'user_id'`), which is what lets the planners
//! use them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// The indexes: name and metadata key.
const INDEXES: &[(&str, &str)] = &[
    ("global_events_metadata_user_id_idx", "user_id"),
    ("global_events_metadata_shop_id_idx", "shop_id"),
];

/// Adds the two expression indexes of `saas.global_events`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        for (name, key) in INDEXES {
            let sql = match backend {
                DbBackend::Sqlite => format!(
                    "CREATE INDEX IF NOT EXISTS \"saas\".\"{name}\" ON \"global_events\" ((metadata ->> '{key}'))"
                ),
                DbBackend::Postgres => format!(
                    "CREATE INDEX IF NOT EXISTS \"{name}\" ON \"saas\".\"global_events\" ((metadata ->> '{key}'))"
                ),
                other => {
                    return Err(DbErr::Custom(format!(
                        "tally migrations support SQLite and PostgreSQL, not {other:?}"
                    )));
                }
            };
            manager.get_connection().execute_unprepared(&sql).await?;
        }
        if backend == DbBackend::Postgres {
            // statistics of the new expressions, or the planner guesses they match many rows
            // and keeps reading every event
            manager
                .get_connection()
                .execute_unprepared("ANALYZE \"saas\".\"global_events\"")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS \"saas\".\"{name}\""))
                .await?;
        }
        Ok(())
    }
}
