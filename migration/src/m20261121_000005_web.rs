//! Creates model `web`: The dbt "greenery" web shop: users and their addresses, products,
//! promos, orders and their items, and web events (page views, add-to-cart, checkout,
//! shipping).
//!
//! Written with sea-query rather than from the entities so that it stays as it was when
//! it was first applied. No foreign keys (the loader checks references, and late
//! partitions must load in any order).

use sea_orm_migration::prelude::*;

use crate::ddl;

/// The model (PostgreSQL schema, SQLite attached database) this migration creates.
const MODEL: &str = "web";

/// The tables this migration creates, in creation order (dropped in reverse).
const TABLES: &[&str] = &[
    "addresses",
    "users",
    "products",
    "promos",
    "orders",
    "order_items",
    "events",
];

/// Creates the `web` namespace, its tables and their indexes.
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

        // addresses: Postal addresses of users and orders.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "addresses"))
                    .if_not_exists()
                    .col(ColumnDef::new("address_id").string().not_null())
                    .col(ColumnDef::new("address").string().not_null())
                    .col(ColumnDef::new("zipcode").string().not_null())
                    .col(ColumnDef::new("state").string().not_null())
                    .col(ColumnDef::new("country").string().not_null())
                    .primary_key(Index::create().col("address_id"))
                    .to_owned(),
            )
            .await?;

        // users: Users of the web shop.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "users"))
                    .if_not_exists()
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(ColumnDef::new("first_name").string().not_null())
                    .col(ColumnDef::new("last_name").string().not_null())
                    .col(ColumnDef::new("email").string().not_null())
                    .col(ColumnDef::new("phone_number").string().null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("updated_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new("address_id").string().not_null())
                    .primary_key(Index::create().col("user_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "users", &["address_id"]).await?;
        ddl::create_index(manager, MODEL, "users", &["created_at"]).await?;
        ddl::create_index(manager, MODEL, "users", &["updated_at"]).await?;

        // products: Products of the web shop, with price and units in stock.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "products"))
                    .if_not_exists()
                    .col(ColumnDef::new("product_id").string().not_null())
                    .col(ColumnDef::new("name").string().not_null())
                    .col(ColumnDef::new("price").decimal_len(18, 2).not_null())
                    .col(ColumnDef::new("inventory").integer().not_null())
                    .primary_key(Index::create().col("product_id"))
                    .to_owned(),
            )
            .await?;

        // promos: Promo codes (`active` or `inactive`) and their discounts.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "promos"))
                    .if_not_exists()
                    .col(ColumnDef::new("promo_id").string().not_null())
                    .col(ColumnDef::new("discount").integer().not_null())
                    .col(ColumnDef::new("status").string().not_null())
                    .primary_key(Index::create().col("promo_id"))
                    .to_owned(),
            )
            .await?;

        // orders: Orders (`preparing`, `shipped`, `delivered`), with costs, promo and shipping
        // details.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "orders"))
                    .if_not_exists()
                    .col(ColumnDef::new("order_id").string().not_null())
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(ColumnDef::new("promo_id").string().null())
                    .col(ColumnDef::new("address_id").string().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("order_cost").decimal_len(18, 2).not_null())
                    .col(
                        ColumnDef::new("shipping_cost")
                            .decimal_len(18, 2)
                            .not_null(),
                    )
                    .col(ColumnDef::new("order_total").decimal_len(18, 2).not_null())
                    .col(ColumnDef::new("tracking_id").string().null())
                    .col(ColumnDef::new("shipping_service").string().null())
                    .col(
                        ColumnDef::new("estimated_delivery_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new("delivered_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new("status").string().not_null())
                    .primary_key(Index::create().col("order_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "orders", &["user_id"]).await?;
        ddl::create_index(manager, MODEL, "orders", &["promo_id"]).await?;
        ddl::create_index(manager, MODEL, "orders", &["address_id"]).await?;
        ddl::create_index(manager, MODEL, "orders", &["created_at"]).await?;

        // order_items: Items of orders: quantity of a product in an order.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "order_items"))
                    .if_not_exists()
                    .col(ColumnDef::new("order_id").string().not_null())
                    .col(ColumnDef::new("product_id").string().not_null())
                    .col(ColumnDef::new("quantity").integer().not_null())
                    .primary_key(Index::create().col("order_id").col("product_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "order_items", &["product_id"]).await?;

        // events: Web events (`page_view`, `add_to_cart`, `checkout`, `package_shipped`) of a
        // user's session.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "events"))
                    .if_not_exists()
                    .col(ColumnDef::new("event_id").string().not_null())
                    .col(ColumnDef::new("session_id").string().not_null())
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(ColumnDef::new("page_url").string().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("event_type").string().not_null())
                    .col(ColumnDef::new("order_id").string().null())
                    .col(ColumnDef::new("product_id").string().null())
                    .primary_key(Index::create().col("event_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "events", &["created_at"]).await?;
        ddl::create_index(manager, MODEL, "events", &["event_type", "created_at"]).await?;
        ddl::create_index(manager, MODEL, "events", &["session_id"]).await?;
        ddl::create_index(manager, MODEL, "events", &["user_id"]).await?;
        ddl::create_index(manager, MODEL, "events", &["order_id"]).await?;
        ddl::create_index(manager, MODEL, "events", &["product_id"]).await?;
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
