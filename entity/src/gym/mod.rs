//! Model `gym`: Gym lead conversions: branches, users (leads) and their membership and
//! credit-pack purchases, from which a lead's conversion to a paying client is derived.
//!
//! Its tables live in schema `gym` on PostgreSQL and in the attached database `gym` on SQLite,
//! so each is addressed as `"gym"."<table>"` on both backends.

/// Gym branches, with the IANA time zone local times are reported in.
pub mod dim_branch;
/// Gym users; a user is a lead until their first membership or credit-pack purchase makes them
/// a client.
pub mod dim_user;
/// Credit-pack purchases, one row per purchased credit pack.
pub mod fct_credit_pack_purchases;
/// Membership purchases, one row per purchased user membership.
pub mod fct_membership_purchases;

/// The model's name: its PostgreSQL schema and its attached SQLite database.
pub const NAME: &str = "gym";

/// The model's tables in load order (referenced tables before referencing ones).
pub const TABLES: &[&str] = &[
    "dim_branch",
    "dim_user",
    "fct_credit_pack_purchases",
    "fct_membership_purchases",
];
