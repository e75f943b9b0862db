//! Model `shop`: E-commerce: customers and products (type-2 slowly changing dimensions),
//! product categories, marketing campaigns, order lines, and inventory events and daily
//! snapshots.
//!
//! Its tables live in schema `shop` on PostgreSQL and in the attached database `shop` on
//! SQLite, so each is addressed as `"shop"."<table>"` on both backends.

/// Marketing campaigns that orders can be attributed to.
pub mod campaign;
/// Customers, a type-2 slowly changing dimension: one row per version of a customer
/// (`customer_id` repeats), valid from `updated_at`; `is_current` marks the latest version.
pub mod customer;
/// Inventory movements (`restock`, `sale`, `return`, `adjustment`) of a product in a store.
pub mod inventory_event;
/// Daily inventory snapshots: quantity on hand per store and product.
pub mod inventory_snapshot;
/// Order lines: one row per product line of an order, with quantity and amounts.
pub mod order_line;
/// Products, a type-2 slowly changing dimension: one row per version of a product (`product_id`
/// repeats), valid from `updated_at`; `is_current` marks the latest version.
pub mod product;
/// Product categories, optionally nested through `parent_category_id`.
pub mod product_category;

/// The model's name: its PostgreSQL schema and its attached SQLite database.
pub const NAME: &str = "shop";

/// The model's tables in load order (referenced tables before referencing ones).
pub const TABLES: &[&str] = &[
    "customer",
    "product_category",
    "product",
    "campaign",
    "order_line",
    "inventory_event",
    "inventory_snapshot",
];
