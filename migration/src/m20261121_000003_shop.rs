//! Creates model `shop`: E-commerce: customers and products (type-2 slowly changing
//! dimensions), product categories, marketing campaigns, order lines, and inventory events and
//! daily snapshots.
//!
//! Written with sea-query rather than from the entities so that it stays as it was when
//! it was first applied. No foreign keys (the loader checks references, and late
//! partitions must load in any order).

use sea_orm_migration::prelude::*;

use crate::ddl;

/// The model (PostgreSQL schema, SQLite attached database) this migration creates.
const MODEL: &str = "shop";

/// The tables this migration creates, in creation order (dropped in reverse).
const TABLES: &[&str] = &[
    "customer",
    "product_category",
    "product",
    "campaign",
    "order_line",
    "inventory_event",
    "inventory_snapshot",
];

/// Creates the `shop` namespace, its tables and their indexes.
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

        // customer: Customers, a type-2 slowly changing dimension: one row per version of a
        // customer (`customer_id` repeats), valid from `updated_at`; `is_current` marks the
        // latest version.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "customer"))
                    .if_not_exists()
                    .col(ColumnDef::new("customer_id").string().not_null())
                    .col(ColumnDef::new("first_name").string().not_null())
                    .col(ColumnDef::new("last_name").string().not_null())
                    .col(ColumnDef::new("email").string().not_null())
                    .col(ColumnDef::new("phone").string().null())
                    .col(ColumnDef::new("city").string().not_null())
                    .col(ColumnDef::new("state").string().null())
                    .col(ColumnDef::new("country").string().not_null())
                    .col(ColumnDef::new("customer_age").integer().null())
                    .col(
                        ColumnDef::new("updated_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("is_current").boolean().not_null())
                    .primary_key(Index::create().col("customer_id").col("updated_at"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "customer", &["updated_at"]).await?;

        // product_category: Product categories, optionally nested through `parent_category_id`.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "product_category"))
                    .if_not_exists()
                    .col(ColumnDef::new("product_category_id").string().not_null())
                    .col(ColumnDef::new("category_name").string().not_null())
                    .col(ColumnDef::new("parent_category_id").string().null())
                    .primary_key(Index::create().col("product_category_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "product_category", &["parent_category_id"]).await?;

        // product: Products, a type-2 slowly changing dimension: one row per version of a
        // product (`product_id` repeats), valid from `updated_at`; `is_current` marks the
        // latest version.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "product"))
                    .if_not_exists()
                    .col(ColumnDef::new("product_id").string().not_null())
                    .col(ColumnDef::new("product_title").string().not_null())
                    .col(ColumnDef::new("product_brand").string().not_null())
                    .col(ColumnDef::new("product_category_id").string().not_null())
                    .col(ColumnDef::new("unit_price").decimal_len(18, 2).not_null())
                    .col(ColumnDef::new("sku").string().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("updated_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("is_current").boolean().not_null())
                    .primary_key(Index::create().col("product_id").col("updated_at"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "product", &["updated_at"]).await?;
        ddl::create_index(manager, MODEL, "product", &["created_at"]).await?;
        ddl::create_index(manager, MODEL, "product", &["product_category_id"]).await?;

        // campaign: Marketing campaigns that orders can be attributed to.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "campaign"))
                    .if_not_exists()
                    .col(ColumnDef::new("campaign_id").string().not_null())
                    .col(ColumnDef::new("campaign_name").string().not_null())
                    .col(
                        ColumnDef::new("campaign_start_time")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("campaign_end_time")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new("campaign_description").string().null())
                    .primary_key(Index::create().col("campaign_id"))
                    .to_owned(),
            )
            .await?;

        // order_line: Order lines: one row per product line of an order, with quantity and
        // amounts.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "order_line"))
                    .if_not_exists()
                    .col(ColumnDef::new("line_item_id").string().not_null())
                    .col(ColumnDef::new("order_id").string().not_null())
                    .col(
                        ColumnDef::new("order_time")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("customer_id").string().not_null())
                    .col(ColumnDef::new("campaign_id").string().null())
                    .col(ColumnDef::new("store_id").string().not_null())
                    .col(ColumnDef::new("product_id").string().not_null())
                    .col(ColumnDef::new("product_category_id").string().not_null())
                    .col(ColumnDef::new("count").integer().not_null())
                    .col(ColumnDef::new("amt").decimal_len(18, 2).not_null())
                    .col(ColumnDef::new("discount").decimal_len(18, 2).not_null())
                    .col(
                        ColumnDef::new("unit_price_at_purchase")
                            .decimal_len(18, 2)
                            .not_null(),
                    )
                    .col(ColumnDef::new("tax_amt").decimal_len(18, 2).not_null())
                    .col(ColumnDef::new("shipping_amt").decimal_len(18, 2).not_null())
                    .col(ColumnDef::new("line_number").integer().not_null())
                    .primary_key(Index::create().col("line_item_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "order_line", &["order_time"]).await?;
        ddl::create_index(manager, MODEL, "order_line", &["order_id"]).await?;
        ddl::create_index(manager, MODEL, "order_line", &["customer_id"]).await?;
        ddl::create_index(manager, MODEL, "order_line", &["campaign_id"]).await?;
        ddl::create_index(manager, MODEL, "order_line", &["product_id"]).await?;
        ddl::create_index(manager, MODEL, "order_line", &["product_category_id"]).await?;

        // inventory_event: Inventory movements (`restock`, `sale`, `return`, `adjustment`) of a
        // product in a store.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "inventory_event"))
                    .if_not_exists()
                    .col(ColumnDef::new("inventory_event_id").string().not_null())
                    .col(ColumnDef::new("event_type").string().not_null())
                    .col(
                        ColumnDef::new("event_time")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("store_id").string().not_null())
                    .col(ColumnDef::new("product_id").string().not_null())
                    .col(ColumnDef::new("quantity_change").integer().not_null())
                    .col(ColumnDef::new("reference_order_id").string().null())
                    .primary_key(Index::create().col("inventory_event_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "inventory_event", &["event_time"]).await?;
        ddl::create_index(
            manager,
            MODEL,
            "inventory_event",
            &["event_type", "event_time"],
        )
        .await?;
        ddl::create_index(manager, MODEL, "inventory_event", &["product_id"]).await?;

        // inventory_snapshot: Daily inventory snapshots: quantity on hand per store and
        // product.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "inventory_snapshot"))
                    .if_not_exists()
                    .col(ColumnDef::new("snapshot_date").date().not_null())
                    .col(ColumnDef::new("store_id").string().not_null())
                    .col(ColumnDef::new("product_id").string().not_null())
                    .col(ColumnDef::new("quantity_on_hand").integer().not_null())
                    .primary_key(
                        Index::create()
                            .col("snapshot_date")
                            .col("store_id")
                            .col("product_id"),
                    )
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "inventory_snapshot", &["product_id"]).await?;
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
