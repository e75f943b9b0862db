//! Creates model `social`: Social media: users and content (type-2 slowly changing dimensions),
//! ad campaigns, devices, and content-engagement and ad events.
//!
//! Written with sea-query rather than from the entities so that it stays as it was when
//! it was first applied. No foreign keys (the loader checks references, and late
//! partitions must load in any order).

use sea_orm_migration::prelude::*;

use crate::ddl;

/// The model (PostgreSQL schema, SQLite attached database) this migration creates.
const MODEL: &str = "social";

/// The tables this migration creates, in creation order (dropped in reverse).
const TABLES: &[&str] = &[
    "user",
    "content",
    "campaign",
    "device",
    "content_event",
    "ad_event",
];

/// Creates the `social` namespace, its tables and their indexes.
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

        // user: Users, a type-2 slowly changing dimension: one row per version of a user
        // (`user_id` repeats), valid from `updated_at`; `is_current` marks the latest version.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "user"))
                    .if_not_exists()
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(ColumnDef::new("status").string().not_null())
                    .col(ColumnDef::new("name").string().not_null())
                    .col(ColumnDef::new("email").string().not_null())
                    .col(ColumnDef::new("phone").string().null())
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
                    .col(ColumnDef::new("last_active_date").date().null())
                    .col(ColumnDef::new("churned_date").date().null())
                    .primary_key(Index::create().col("user_id").col("updated_at"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "user", &["updated_at"]).await?;
        ddl::create_index(manager, MODEL, "user", &["created_at"]).await?;

        // content: Content items (`post`, `photo`, `video`, `story`, `reel`), a type-2 slowly
        // changing dimension: one row per version (`content_id` repeats), valid from
        // `updated_at`.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "content"))
                    .if_not_exists()
                    .col(ColumnDef::new("content_id").string().not_null())
                    .col(ColumnDef::new("content_type").string().not_null())
                    .col(ColumnDef::new("content_name").string().not_null())
                    .col(ColumnDef::new("content_desc").string().null())
                    .col(ColumnDef::new("creator_id").string().not_null())
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
                    .primary_key(Index::create().col("content_id").col("updated_at"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "content", &["updated_at"]).await?;
        ddl::create_index(manager, MODEL, "content", &["created_at"]).await?;
        ddl::create_index(manager, MODEL, "content", &["creator_id"]).await?;

        // campaign: Ad campaigns.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "campaign"))
                    .if_not_exists()
                    .col(ColumnDef::new("campaign_id").string().not_null())
                    .col(ColumnDef::new("campaign_type").string().not_null())
                    .col(ColumnDef::new("campaign_name").string().not_null())
                    .col(ColumnDef::new("campaign_desc").string().null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("starttime")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("endtime").timestamp_with_time_zone().null())
                    .primary_key(Index::create().col("campaign_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "campaign", &["created_at"]).await?;

        // device: Devices (`mobile`, `tablet`, `desktop`, `tv`) events are recorded from.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "device"))
                    .if_not_exists()
                    .col(ColumnDef::new("device_id").string().not_null())
                    .col(ColumnDef::new("device_type").string().not_null())
                    .col(ColumnDef::new("os").string().not_null())
                    .primary_key(Index::create().col("device_id"))
                    .to_owned(),
            )
            .await?;

        // content_event: Engagement events (`view`, `like`, `comment`, `share`) of a viewer on
        // a content item.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "content_event"))
                    .if_not_exists()
                    .col(ColumnDef::new("event_id").string().not_null())
                    .col(
                        ColumnDef::new("event_time")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("event_type").string().not_null())
                    .col(ColumnDef::new("content_id").string().not_null())
                    .col(ColumnDef::new("creator_id").string().not_null())
                    .col(ColumnDef::new("viewer_id").string().not_null())
                    .col(ColumnDef::new("device_id").string().not_null())
                    .col(ColumnDef::new("ip_address").string().null())
                    .primary_key(Index::create().col("event_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "content_event", &["event_time"]).await?;
        ddl::create_index(
            manager,
            MODEL,
            "content_event",
            &["event_type", "event_time"],
        )
        .await?;
        ddl::create_index(manager, MODEL, "content_event", &["content_id"]).await?;
        ddl::create_index(manager, MODEL, "content_event", &["creator_id"]).await?;
        ddl::create_index(manager, MODEL, "content_event", &["viewer_id"]).await?;
        ddl::create_index(manager, MODEL, "content_event", &["device_id"]).await?;

        // ad_event: Ad events (`impression`, `click`, `conversion`) of a user in a campaign,
        // with the revenue and cost attributed to each.
        manager
            .create_table(
                Table::create()
                    .table(ddl::table(MODEL, "ad_event"))
                    .if_not_exists()
                    .col(ColumnDef::new("event_id").string().not_null())
                    .col(
                        ColumnDef::new("event_time")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("event_type").string().not_null())
                    .col(ColumnDef::new("campaign_id").string().not_null())
                    .col(ColumnDef::new("user_id").string().not_null())
                    .col(ColumnDef::new("device_id").string().not_null())
                    .col(ColumnDef::new("ip_address").string().null())
                    .col(ColumnDef::new("revenue").decimal_len(18, 2).not_null())
                    .col(ColumnDef::new("cost").decimal_len(18, 2).not_null())
                    .primary_key(Index::create().col("event_id"))
                    .to_owned(),
            )
            .await?;
        ddl::create_index(manager, MODEL, "ad_event", &["event_time"]).await?;
        ddl::create_index(manager, MODEL, "ad_event", &["event_type", "event_time"]).await?;
        ddl::create_index(manager, MODEL, "ad_event", &["campaign_id"]).await?;
        ddl::create_index(manager, MODEL, "ad_event", &["user_id"]).await?;
        ddl::create_index(manager, MODEL, "ad_event", &["device_id"]).await?;
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
