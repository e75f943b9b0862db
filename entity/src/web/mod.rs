//! Model `web`: The dbt "greenery" web shop: users and their addresses, products, promos,
//! orders and their items, and web events (page views, add-to-cart, checkout, shipping).
//!
//! Its tables live in schema `web` on PostgreSQL and in the attached database `web` on SQLite,
//! so each is addressed as `"web"."<table>"` on both backends.

/// Postal addresses of users and orders.
pub mod addresses;
/// Web events (`page_view`, `add_to_cart`, `checkout`, `package_shipped`) of a user's session.
pub mod events;
/// Items of orders: quantity of a product in an order.
pub mod order_items;
/// Orders (`preparing`, `shipped`, `delivered`), with costs, promo and shipping details.
pub mod orders;
/// Products of the web shop, with price and units in stock.
pub mod products;
/// Promo codes (`active` or `inactive`) and their discounts.
pub mod promos;
/// Users of the web shop.
pub mod users;

/// The model's name: its PostgreSQL schema and its attached SQLite database.
pub const NAME: &str = "web";

/// The model's tables in load order (referenced tables before referencing ones).
pub const TABLES: &[&str] = &[
    "addresses",
    "users",
    "products",
    "promos",
    "orders",
    "order_items",
    "events",
];
