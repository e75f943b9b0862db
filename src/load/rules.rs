//! The model-specific rules of the loader, as data: everything `docs/SOURCE-SCHEMA.md` says
//! about a column beyond its type (which comes from the sea-orm entity), and the references
//! between tables.
//!
//! Adding a rule is adding a line here; the loader (`validate.rs`) knows only the rule kinds.

/// What a column's value must satisfy beyond its type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rule {
    /// An hourly partition stamp: `YYYY-MM-DD HH:00:00`.
    PartitionHour,
    /// One of the listed values.
    OneOf(&'static [&'static str]),
    /// An IANA time zone name (`Europe/Paris`).
    TimeZone,
    /// A JSON object with at least these keys, all with string values (other keys are
    /// accepted and kept).
    JsonShape(&'static [&'static str]),
    /// A JSON object whose shape depends on the value of another column of the row: the
    /// keys of the pair whose first element is that value (at least these keys, with string
    /// values).
    JsonShapeBy {
        /// The column that selects the shape.
        column: &'static str,
        /// `(value of that column, keys)`.
        shapes: &'static [(&'static str, &'static [&'static str])],
    },
}

/// A rule attached to one column of one table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnRule {
    /// The model (`saas`).
    pub model: &'static str,
    /// The table (`global_events`).
    pub table: &'static str,
    /// The column (`event_type`).
    pub column: &'static str,
    /// What its values must satisfy.
    pub rule: Rule,
}

/// A reference: every non-NULL value of `table.column` must be a value of
/// `target_table.target_column` (loaded in the same run or already stored).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reference {
    /// The model both tables belong to.
    pub model: &'static str,
    /// The referencing table.
    pub table: &'static str,
    /// The referencing column.
    pub column: &'static str,
    /// The referenced table.
    pub target_table: &'static str,
    /// The referenced column (a key, or the business key of a type-2 dimension).
    pub target_column: &'static str,
}

const fn rule(
    model: &'static str,
    table: &'static str,
    column: &'static str,
    rule: Rule,
) -> ColumnRule {
    ColumnRule {
        model,
        table,
        column,
        rule,
    }
}

const fn refers(
    model: &'static str,
    table: &'static str,
    column: &'static str,
    target_table: &'static str,
    target_column: &'static str,
) -> Reference {
    Reference {
        model,
        table,
        column,
        target_table,
        target_column,
    }
}

/// The `{name, source}` shape of the gym purchase details.
const PURCHASE_DETAILS: Rule = Rule::JsonShape(&["name", "source"]);

/// Every column rule of every model.
pub(crate) const COLUMN_RULES: &[ColumnRule] = &[
    // saas
    rule("saas", "global_events", "ts", Rule::PartitionHour),
    rule("saas", "users", "ts", Rule::PartitionHour),
    rule("saas", "shops", "ts", Rule::PartitionHour),
    rule("saas", "plans", "ts", Rule::PartitionHour),
    rule(
        "saas",
        "global_events",
        "event_type",
        Rule::OneOf(&[
            "user_account_creation",
            "user_delete_account",
            "user_shop_create",
            "user_shop_delete",
        ]),
    ),
    rule(
        "saas",
        "global_events",
        "metadata",
        Rule::JsonShapeBy {
            column: "event_type",
            shapes: &[
                ("user_account_creation", &["user_id", "email"]),
                ("user_delete_account", &["user_id"]),
                ("user_shop_create", &["user_id", "shop_id", "plan_id"]),
                ("user_shop_delete", &["user_id", "shop_id"]),
            ],
        },
    ),
    // gym
    rule("gym", "dim_branch", "timezone_id", Rule::TimeZone),
    rule(
        "gym",
        "fct_credit_pack_purchases",
        "credit_pack_purchase_details",
        PURCHASE_DETAILS,
    ),
    rule(
        "gym",
        "fct_membership_purchases",
        "membership_purchase_details",
        PURCHASE_DETAILS,
    ),
    // shop, social and web: their source documents define no value sets (event types,
    // statuses, content and device types are free text)
];

/// Every reference of every model.
pub(crate) const REFERENCES: &[Reference] = &[
    // saas
    refers("saas", "shops", "owner_user_id", "users", "user_id"),
    refers("saas", "payments", "invoice_id", "invoices", "invoice_id"),
    // gym
    refers("gym", "dim_user", "branch_id", "dim_branch", "branch_id"),
    refers(
        "gym",
        "fct_credit_pack_purchases",
        "user_id",
        "dim_user",
        "user_id",
    ),
    refers(
        "gym",
        "fct_credit_pack_purchases",
        "branch_id",
        "dim_branch",
        "branch_id",
    ),
    refers(
        "gym",
        "fct_membership_purchases",
        "user_id",
        "dim_user",
        "user_id",
    ),
    refers(
        "gym",
        "fct_membership_purchases",
        "branch_id",
        "dim_branch",
        "branch_id",
    ),
    // shop
    refers(
        "shop",
        "product",
        "product_category_id",
        "product_category",
        "product_category_id",
    ),
    refers(
        "shop",
        "product_category",
        "parent_category_id",
        "product_category",
        "product_category_id",
    ),
    refers(
        "shop",
        "order_line",
        "customer_id",
        "customer",
        "customer_id",
    ),
    refers("shop", "order_line", "product_id", "product", "product_id"),
    refers(
        "shop",
        "order_line",
        "product_category_id",
        "product_category",
        "product_category_id",
    ),
    refers(
        "shop",
        "order_line",
        "campaign_id",
        "campaign",
        "campaign_id",
    ),
    refers(
        "shop",
        "inventory_event",
        "product_id",
        "product",
        "product_id",
    ),
    refers(
        "shop",
        "inventory_snapshot",
        "product_id",
        "product",
        "product_id",
    ),
    // social
    refers("social", "content", "creator_id", "user", "user_id"),
    refers(
        "social",
        "content_event",
        "content_id",
        "content",
        "content_id",
    ),
    refers("social", "content_event", "viewer_id", "user", "user_id"),
    refers("social", "content_event", "creator_id", "user", "user_id"),
    refers(
        "social",
        "content_event",
        "device_id",
        "device",
        "device_id",
    ),
    refers(
        "social",
        "ad_event",
        "campaign_id",
        "campaign",
        "campaign_id",
    ),
    refers("social", "ad_event", "user_id", "user", "user_id"),
    refers("social", "ad_event", "device_id", "device", "device_id"),
    // web
    refers("web", "users", "address_id", "addresses", "address_id"),
    refers("web", "orders", "user_id", "users", "user_id"),
    refers("web", "orders", "promo_id", "promos", "promo_id"),
    refers("web", "orders", "address_id", "addresses", "address_id"),
    refers("web", "order_items", "order_id", "orders", "order_id"),
    refers("web", "order_items", "product_id", "products", "product_id"),
    refers("web", "events", "user_id", "users", "user_id"),
    refers("web", "events", "order_id", "orders", "order_id"),
    refers("web", "events", "product_id", "products", "product_id"),
];

/// The rules of one table's column.
pub(crate) fn rules_of<'a>(
    model: &'a str,
    table: &'a str,
    column: &'a str,
) -> impl Iterator<Item = &'static Rule> + 'a {
    COLUMN_RULES
        .iter()
        .filter(move |r| r.model == model && r.table == table && r.column == column)
        .map(|r| &r.rule)
}

/// The references made by one table.
pub(crate) fn references_of<'a>(
    model: &'a str,
    table: &'a str,
) -> impl Iterator<Item = &'static Reference> + 'a {
    REFERENCES
        .iter()
        .filter(move |r| r.model == model && r.table == table)
}
