//! Creates model `gym`: Gym lead conversions: branches, users (leads) and their membership and
//! credit-pack purchases, from which a lead's conversion to a paying client is derived.
//!
//! Written with sea-query rather than from the entities so that it stays as it was when
//! it was first applied. No foreign keys (the loader checks references, and late
//! partitions must load in any order).

use sea_orm_migration::prelude::*;

use crate::ddl;

/// The model (PostgreSQL schema, SQLite attached database) this migration creates.
const MODEL: &str = "gym";

/// The tables this migration creates, in creation order (dropped in reverse).
const TABLES: &[&str] = &[
    "dim_branch",
    "dim_user",
    "fct_credit_pack_purchases",
    "fct_membership_purchases",
];

/// Creates the `gym` namespace, its tables and their indexes.
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

        // dim_branch: Gym branches, with the IANA time zone local times are reported in.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "dim_branch"))
                    .if_not_exists()
                    .col(ColumnDef::new("branch_id").string().not_null())
                    .col(ColumnDef::new("name").string().not_null())
                    .col(ColumnDef::new("email").string().not_null())
                    .col(ColumnDef::new("city").string().not_null())
                    .col(ColumnDef::new("country").string().not_null())
                    .col(ColumnDef::new("timezone_id").string().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("branch_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "dim_branch", &["created_at"]).await?;

        // dim_user: Gym users; a user is a lead until their first membership or credit-pack
        // purchase makes them a client.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "dim_user"))
                    .if_not_exists()
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(ColumnDef::new("branch_id").string().not_null())
                    .col(ColumnDef::new("name").string().not_null())
                    .col(ColumnDef::new("email").string().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("user_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "dim_user", &["branch_id"]).await?;
        ddl::create_index(manager, MODEL, "dim_user", &["created_at"]).await?;

        // fct_credit_pack_purchases: Credit-pack purchases, one row per purchased credit pack.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "fct_credit_pack_purchases"))
                    .if_not_exists()
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(ColumnDef::new("branch_id").string().not_null())
                    .col(ColumnDef::new("credit_pack_id").string().not_null())
                    .col(
                        ColumnDef::new("credit_pack_purchased_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("credit_pack_purchase_details")
                            .json_binary()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("credit_pack_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(
            manager,
            MODEL,
            "fct_credit_pack_purchases",
            &["user_id", "credit_pack_purchased_at"],
        )
        .await?;
        ddl::create_index(manager, MODEL, "fct_credit_pack_purchases", &["branch_id"]).await?;
        ddl::create_index(
            manager,
            MODEL,
            "fct_credit_pack_purchases",
            &["credit_pack_purchased_at"],
        )
        .await?;
        ddl::create_index(manager, MODEL, "fct_credit_pack_purchases", &["created_at"]).await?;

        // fct_membership_purchases: Membership purchases, one row per purchased user
        // membership.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "fct_membership_purchases"))
                    .if_not_exists()
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(ColumnDef::new("branch_id").string().not_null())
                    .col(ColumnDef::new("user_membership_id").string().not_null())
                    .col(
                        ColumnDef::new("membership_purchased_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("membership_purchase_details")
                            .json_binary()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("user_membership_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(
            manager,
            MODEL,
            "fct_membership_purchases",
            &["user_id", "membership_purchased_at"],
        )
        .await?;
        ddl::create_index(manager, MODEL, "fct_membership_purchases", &["branch_id"]).await?;
        ddl::create_index(
            manager,
            MODEL,
            "fct_membership_purchases",
            &["membership_purchased_at"],
        )
        .await?;
        ddl::create_index(manager, MODEL, "fct_membership_purchases", &["created_at"]).await?;
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
