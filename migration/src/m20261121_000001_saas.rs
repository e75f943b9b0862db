//! Creates model `saas`: SaaS lifecycle: account and shop events, hourly-partitioned (`ts`)
//! user, shop and plan snapshots, and daily-partitioned (`ds`) invoices and payments. A user
//! goes lead (signed up) → prospect (created a shop) → customer (paid an invoice) → churned
//! (deleted account or shops, or left an invoice unpaid).
//!
//! Written with sea-query rather than from the entities so that it stays as it was when
//! it was first applied. No foreign keys (the loader checks references, and late
//! partitions must load in any order).

use sea_orm_migration::prelude::*;

use crate::ddl;

/// The model (PostgreSQL schema, SQLite attached database) this migration creates.
const MODEL: &str = "saas";

/// The tables this migration creates, in creation order (dropped in reverse).
const TABLES: &[&str] = &[
    "global_events",
    "users",
    "shops",
    "plans",
    "invoices",
    "payments",
];

/// Creates the `saas` namespace, its tables and their indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// All or nothing on both backends (SQLite too, where sea-orm-migration would not use one).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::create_namespace(manager, MODEL).await?;

        // global_events: Lifecycle events (`user_account_creation`, `user_delete_account`,
        // `user_shop_create`, `user_shop_delete`), one row per event in the hourly partition
        // `ts` it arrived in; the event details are in `metadata`.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "global_events"))
                    .if_not_exists()
                    .col(ColumnDef::new("ts").string().not_null())
                    .col(ColumnDef::new("event_id").string().not_null())
                    .col(
                        ColumnDef::new("event_time")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("event_type").string().not_null())
                    .col(ColumnDef::new("metadata").json_binary().not_null())
                    .primary_key(Index::create().col("ts").col("event_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "global_events", &["event_time"]).await?;
        ddl::create_index(
            manager,
            MODEL,
            "global_events",
            &["event_type", "event_time"],
        )
        .await?;

        // users: User snapshots: one row per user and hourly partition `ts` it was
        // (re)published in; as of T a user is the row from its latest partition with `ts <= T`.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "users"))
                    .if_not_exists()
                    .col(ColumnDef::new("ts").string().not_null())
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(
                        ColumnDef::new("creation_timestamp")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("ts").col("user_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "users", &["user_id", "ts"]).await?;

        // shops: Shop snapshots: one row per shop and hourly partition `ts`, with the shop's
        // owner.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "shops"))
                    .if_not_exists()
                    .col(ColumnDef::new("ts").string().not_null())
                    .col(ColumnDef::new("shop_id").string().not_null())
                    .col(
                        ColumnDef::new("creation_timestamp")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("owner_user_id").string().not_null())
                    .primary_key(Index::create().col("ts").col("shop_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "shops", &["shop_id", "ts"]).await?;
        ddl::create_index(manager, MODEL, "shops", &["owner_user_id"]).await?;

        // plans: Plan dimension snapshots: one row per plan and hourly partition `ts`, with the
        // amount a shop on the plan is invoiced.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "plans"))
                    .if_not_exists()
                    .col(ColumnDef::new("ts").string().not_null())
                    .col(ColumnDef::new("plan_id").string().not_null())
                    .col(
                        ColumnDef::new("invoice_amount")
                            .decimal_len(18, 2)
                            .not_null(),
                    )
                    .primary_key(Index::create().col("ts").col("plan_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "plans", &["plan_id", "ts"]).await?;

        // invoices: Invoices, one row per invoice in the daily partition `ds` it arrived in.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "invoices"))
                    .if_not_exists()
                    .col(ColumnDef::new("ds").date().not_null())
                    .col(ColumnDef::new("invoice_id").string().not_null())
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(ColumnDef::new("shop_id").string().not_null())
                    .col(
                        ColumnDef::new("invoice_timestamp")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("invoice_amount")
                            .decimal_len(18, 2)
                            .not_null(),
                    )
                    .primary_key(Index::create().col("ds").col("invoice_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "invoices", &["invoice_id"]).await?;
        ddl::create_index(manager, MODEL, "invoices", &["invoice_timestamp"]).await?;
        ddl::create_index(manager, MODEL, "invoices", &["user_id"]).await?;
        ddl::create_index(manager, MODEL, "invoices", &["shop_id"]).await?;

        // payments: Payments of invoices, one row per payment in the daily partition `ds` it
        // arrived in; a payment carries no amount (it pays its invoice).
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "payments"))
                    .if_not_exists()
                    .col(ColumnDef::new("ds").date().not_null())
                    .col(ColumnDef::new("payment_id").string().not_null())
                    .col(ColumnDef::new("invoice_id").string().not_null())
                    .col(ColumnDef::new("user_id").string().not_null())
                    .primary_key(Index::create().col("ds").col("payment_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "payments", &["invoice_id"]).await?;
        ddl::create_index(manager, MODEL, "payments", &["user_id"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES.iter().rev() {
            manager
                .drop_table(
                    Table::drop()
                        .table(ddl::table(MODEL, table))
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        ddl::drop_namespace(manager, MODEL).await
    }
}
