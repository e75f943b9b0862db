//! Sea-ORM entities of tally's source tables.
//!
//! One module per model ([`saas`], [`gym`], [`shop`], [`social`], [`web`]), one sub-module
//! per table, named exactly as the table (`entity::saas::global_events`,
//! `entity::social::user`, …). Every entity is qualified with its model's namespace
//! (`schema_name`): a PostgreSQL schema, or on SQLite an attached database of the same
//! name, so `saas.users` and `web.users` coexist. The column list of each table is the
//! one of `docs/SOURCE-SCHEMA.md`.
//!
//! Each model module also exports `NAME` (the model's name) and `TABLES` (its tables in
//! load order: referenced tables before referencing ones).
#![deny(missing_docs)]

pub mod gym;
pub mod saas;
pub mod shop;
pub mod social;
pub mod web;

/// The models, in migration order. Each is the name of a module of this crate, of a
/// PostgreSQL schema and of an attached SQLite database.
pub const MODELS: &[&str] = &[saas::NAME, gym::NAME, shop::NAME, social::NAME, web::NAME];

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, Iterable};

    /// The `(schema, table)` of every entity of the crate.
    fn entities() -> Vec<(String, String)> {
        vec![
            name::<super::saas::global_events::Entity>(),
            name::<super::saas::users::Entity>(),
            name::<super::saas::shops::Entity>(),
            name::<super::saas::plans::Entity>(),
            name::<super::saas::invoices::Entity>(),
            name::<super::saas::payments::Entity>(),
            name::<super::gym::dim_branch::Entity>(),
            name::<super::gym::dim_user::Entity>(),
            name::<super::gym::fct_credit_pack_purchases::Entity>(),
            name::<super::gym::fct_membership_purchases::Entity>(),
            name::<super::shop::customer::Entity>(),
            name::<super::shop::product_category::Entity>(),
            name::<super::shop::product::Entity>(),
            name::<super::shop::campaign::Entity>(),
            name::<super::shop::order_line::Entity>(),
            name::<super::shop::inventory_event::Entity>(),
            name::<super::shop::inventory_snapshot::Entity>(),
            name::<super::social::user::Entity>(),
            name::<super::social::content::Entity>(),
            name::<super::social::campaign::Entity>(),
            name::<super::social::device::Entity>(),
            name::<super::social::content_event::Entity>(),
            name::<super::social::ad_event::Entity>(),
            name::<super::web::addresses::Entity>(),
            name::<super::web::users::Entity>(),
            name::<super::web::products::Entity>(),
            name::<super::web::promos::Entity>(),
            name::<super::web::orders::Entity>(),
            name::<super::web::order_items::Entity>(),
            name::<super::web::events::Entity>(),
        ]
    }

    /// The `(schema, table)` of entity `E`.
    fn name<E: EntityTrait + Default>() -> (String, String) {
        let e = E::default();
        let schema = e.schema_name().unwrap_or_default().to_owned();
        (schema, e.table_name().to_owned())
    }

    /// `MODELS` lists the modules' names in the documented order.
    #[test]
    fn models() {
        assert_eq!(super::MODELS, &["saas", "gym", "shop", "social", "web"]);
    }

    /// Checks that an entity is in `schema` and named `table`, and that its columns are
    /// exactly `cols`, in that order.
    fn check<E: EntityTrait + Default>(schema: &str, table: &str, cols: &[&str]) {
        let e = E::default();
        assert_eq!(e.schema_name(), Some(schema));
        assert_eq!(e.table_name(), table);
        let names: Vec<String> = E::Column::iter()
            .map(|c| sea_orm::IdenStatic::as_str(&c).to_owned())
            .collect();
        assert_eq!(names, cols, "{schema}.{table}");
    }

    #[test]
    fn namespaced_entities() {
        check::<super::saas::users::Entity>(
            "saas",
            "users",
            &["ts", "user_id", "creation_timestamp"],
        );
        check::<super::web::users::Entity>(
            "web",
            "users",
            &[
                "user_id",
                "first_name",
                "last_name",
                "email",
                "phone_number",
                "created_at",
                "updated_at",
                "address_id",
            ],
        );
        check::<super::shop::campaign::Entity>(
            "shop",
            "campaign",
            &[
                "campaign_id",
                "campaign_name",
                "campaign_start_time",
                "campaign_end_time",
                "campaign_description",
            ],
        );
        check::<super::social::user::Entity>(
            "social",
            "user",
            &[
                "user_id",
                "status",
                "name",
                "email",
                "phone",
                "created_at",
                "updated_at",
                "is_current",
                "last_active_date",
                "churned_date",
            ],
        );
    }

    /// `TABLES` of each model names exactly the entities of its module, once each.
    #[test]
    fn tables_lists() {
        let lists: [(&str, &[&str]); 5] = [
            (super::saas::NAME, super::saas::TABLES),
            (super::gym::NAME, super::gym::TABLES),
            (super::shop::NAME, super::shop::TABLES),
            (super::social::NAME, super::social::TABLES),
            (super::web::NAME, super::web::TABLES),
        ];
        let mut listed: Vec<(String, String)> = lists
            .iter()
            .flat_map(|(m, ts)| ts.iter().map(move |t| (m.to_string(), t.to_string())))
            .collect();
        let mut found = entities();
        listed.sort_unstable();
        found.sort_unstable();
        assert_eq!(listed, found);
        assert_eq!(found.len(), 30);
    }
}
