//! Model `social`: Social media: users and content (type-2 slowly changing dimensions), ad
//! campaigns, devices, and content-engagement and ad events.
//!
//! Its tables live in schema `social` on PostgreSQL and in the attached database `social` on
//! SQLite, so each is addressed as `"social"."<table>"` on both backends.

/// Ad events (`impression`, `click`, `conversion`) of a user in a campaign, with the revenue
/// and cost attributed to each.
pub mod ad_event;
/// Ad campaigns.
pub mod campaign;
/// Content items (`post`, `photo`, `video`, `story`, `reel`), a type-2 slowly changing
/// dimension: one row per version (`content_id` repeats), valid from `updated_at`.
pub mod content;
/// Engagement events (`view`, `like`, `comment`, `share`) of a viewer on a content item.
pub mod content_event;
/// Devices (`mobile`, `tablet`, `desktop`, `tv`) events are recorded from.
pub mod device;
/// Users, a type-2 slowly changing dimension: one row per version of a user (`user_id`
/// repeats), valid from `updated_at`; `is_current` marks the latest version.
pub mod user;

/// The model's name: its PostgreSQL schema and its attached SQLite database.
pub const NAME: &str = "social";

/// The model's tables in load order (referenced tables before referencing ones).
pub const TABLES: &[&str] = &[
    "user",
    "content",
    "campaign",
    "device",
    "content_event",
    "ad_event",
];
