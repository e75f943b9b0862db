//! Model `saas`: SaaS lifecycle: account and shop events, hourly-partitioned (`ts`) user, shop
//! and plan snapshots, and daily-partitioned (`ds`) invoices and payments. A user goes lead
//! (signed up) → prospect (created a shop) → customer (paid an invoice) → churned (deleted
//! account or shops, or left an invoice unpaid).
//!
//! Its tables live in schema `saas` on PostgreSQL and in the attached database `saas` on
//! SQLite, so each is addressed as `"saas"."<table>"` on both backends.

/// Lifecycle events (`user_account_creation`, `user_delete_account`, `user_shop_create`,
/// `user_shop_delete`), one row per event in the hourly partition `ts` it arrived in; the event
/// details are in `metadata`.
pub mod global_events;
/// Invoices, one row per invoice in the daily partition `ds` it arrived in.
pub mod invoices;
/// Payments of invoices, one row per payment in the daily partition `ds` it arrived in; a
/// payment carries no amount (it pays its invoice).
pub mod payments;
/// Plan dimension snapshots: one row per plan and hourly partition `ts`, with the amount a shop
/// on the plan is invoiced.
pub mod plans;
/// Shop snapshots: one row per shop and hourly partition `ts`, with the shop's owner.
pub mod shops;
/// User snapshots: one row per user and hourly partition `ts` it was (re)published in; as of T
/// a user is the row from its latest partition with `ts <= T`.
pub mod users;

/// The model's name: its PostgreSQL schema and its attached SQLite database.
pub const NAME: &str = "saas";

/// The model's tables in load order (referenced tables before referencing ones).
pub const TABLES: &[&str] = &[
    "global_events",
    "users",
    "shops",
    "plans",
    "invoices",
    "payments",
];
