//! Sea-ORM migrations of tally's source tables: one migration per model, then later
//! additions (indexes) in date order.
//!
//! Each migration creates its model's namespace (a PostgreSQL schema; on SQLite an
//! attached database, which the connection must already have attached), the model's
//! tables as listed in `docs/SOURCE-SCHEMA.md` with their primary keys, and the indexes
//! the metrics and `asOf` cuts need. There are no foreign-key constraints: the loader
//! checks references, and partitions may arrive late and in any order.
//!
//! Run them with [`Migrator`] (`Migrator::up(&db, None)`); the migration bookkeeping
//! table lives in the connection's default namespace (`public` on PostgreSQL, the main
//! database on SQLite).

pub use sea_orm_migration;
pub use sea_orm_migration::prelude::*;

pub mod ddl;
mod m20261121_000001_saas;
mod m20261121_000002_gym;
mod m20261121_000003_shop;
mod m20261121_000004_social;
mod m20261121_000005_web;
mod m20261122_000006_saas_event_keys;
pub mod m20261130_000007_day_buckets;
mod m20261201_000008_day_buckets_binned;
pub mod tally_state;

/// The migrator of tally's source tables: one migration per model, in the order of
/// `entity::MODELS` (saas, gym, shop, social, web), then the saas event indexes and the event tables' day-bucket indexes (rebuilt on
/// PostgreSQL when the expression tally groups a day on changed). The tables
/// tally keeps for itself are created after them by [`tally_state::up`].
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_saas::Migration),
            Box::new(m20261121_000002_gym::Migration),
            Box::new(m20261121_000003_shop::Migration),
            Box::new(m20261121_000004_social::Migration),
            Box::new(m20261121_000005_web::Migration),
            Box::new(m20261122_000006_saas_event_keys::Migration),
            Box::new(m20261130_000007_day_buckets::Migration),
            Box::new(m20261201_000008_day_buckets_binned::Migration),
        ]
    }
}
