//! What a table looks like to the loader, read from its sea-orm entity (the one source of
//! truth for column names, types, nullability and keys), plus the dispatch from
//! `(model, table)` names to entities.

use sea_orm::sea_query::ColumnType;
use sea_orm::{ColumnTrait, EntityTrait, IdenStatic, Iterable, PrimaryKeyToColumn};

use super::rules::{self, Reference, Rule};

/// How a column's CSV text becomes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Text, as is.
    Text,
    /// A 32-bit integer.
    Int32,
    /// A 64-bit integer.
    Int64,
    /// A decimal with at most `scale` decimals and `int_digits` digits before the point.
    Decimal {
        /// Digits allowed before the decimal point (`None`: unbounded).
        int_digits: Option<u32>,
        /// Digits allowed after the decimal point.
        scale: u32,
    },
    /// A boolean.
    Bool,
    /// A timestamp, stored in UTC.
    Timestamp,
    /// A calendar date.
    Date,
    /// A JSON object.
    Json,
}

/// One column of a table.
#[derive(Debug, Clone)]
pub(crate) struct ColumnSpec {
    /// Its name.
    pub name: &'static str,
    /// How its text is parsed.
    pub kind: Kind,
    /// Whether an empty field (NULL) is accepted.
    pub nullable: bool,
    /// The rules of `rules.rs` for this column (plus the variants of a database enum).
    pub rules: Vec<Rule>,
    /// Allowed values when the entity declares the column as a database enum.
    pub variants: Option<Vec<String>>,
}

/// One table: its columns in entity order, its key, its references.
#[derive(Debug, Clone)]
pub(crate) struct TableSpec {
    /// The model (`saas`).
    pub model: &'static str,
    /// The table (`global_events`).
    pub table: &'static str,
    /// The columns, in the order of the entity.
    pub columns: Vec<ColumnSpec>,
    /// Indexes into `columns` of the primary key.
    pub key: Vec<usize>,
    /// The references this table makes (from `rules.rs`).
    pub references: Vec<&'static Reference>,
}

impl TableSpec {
    /// The index of a column by name.
    pub(super) fn index_of(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == column)
    }

    /// The column names, comma-separated, for messages.
    pub(super) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The loader's kind of a sea-orm column type, or why it has none.
fn kind_of(column_type: &ColumnType) -> Result<(Kind, Option<Vec<String>>), String> {
    let kind = match column_type {
        ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => Kind::Text,
        ColumnType::Enum { variants, .. } => {
            return Ok((
                Kind::Text,
                Some(variants.iter().map(|v| v.to_string()).collect()),
            ));
        }
        ColumnType::TinyInteger
        | ColumnType::SmallInteger
        | ColumnType::Integer
        | ColumnType::TinyUnsigned
        | ColumnType::SmallUnsigned => Kind::Int32,
        ColumnType::BigInteger | ColumnType::Unsigned => Kind::Int64,
        ColumnType::Decimal(precision) | ColumnType::Money(precision) => match precision {
            Some((p, s)) => Kind::Decimal {
                int_digits: Some(p.saturating_sub(*s)),
                scale: *s,
            },
            None => Kind::Decimal {
                int_digits: None,
                scale: 2,
            },
        },
        ColumnType::Boolean => Kind::Bool,
        ColumnType::DateTime | ColumnType::Timestamp | ColumnType::TimestampWithTimeZone => {
            Kind::Timestamp
        }
        ColumnType::Date => Kind::Date,
        ColumnType::Json | ColumnType::JsonBinary => Kind::Json,
        other => return Err(format!("the loader cannot read columns of type {other:?}")),
    };
    Ok((kind, None))
}

/// Describes the table of entity `E` of `model`, generically from the entity's columns and
/// primary key, with the rules and references of `rules.rs`.
pub(crate) fn describe<E: EntityTrait>(model: &'static str) -> Result<TableSpec, String> {
    let table = E::default().table_name();
    let mut columns = Vec::new();
    for column in E::Column::iter() {
        let name = column.as_str();
        let def = column.def();
        let (kind, variants) =
            kind_of(def.get_column_type()).map_err(|e| format!("{model}.{table}.{name}: {e}"))?;
        columns.push(ColumnSpec {
            name,
            kind,
            nullable: def.is_null(),
            rules: rules::rules_of(model, table, name).copied().collect(),
            variants,
        });
    }
    let mut spec = TableSpec {
        model,
        table,
        columns,
        key: Vec::new(),
        references: rules::references_of(model, table).collect(),
    };
    for pk in E::PrimaryKey::iter() {
        let name = pk.into_column().as_str();
        let index = spec
            .index_of(name)
            .ok_or_else(|| format!("{model}.{table}: key column {name} is not a column"))?;
        spec.key.push(index);
    }
    Ok(spec)
}

/// Generates the dispatch from names to entities: `describe_table` and `tables_of`.
macro_rules! models {
    ($($model:ident: [$($table:ident),* $(,)?];)*) => {
        /// The description of `model.table`, `None` when no such table is known.
        pub(crate) fn describe_table(model: &str, table: &str) -> Option<Result<TableSpec, String>> {
            match (model, table) {
                $($(
                    (stringify!($model), stringify!($table)) =>
                        Some(describe::<entity::$model::$table::Entity>(stringify!($model))),
                )*)*
                _ => None,
            }
        }

        /// The tables of a model in load order, `None` for an unknown model.
        pub(crate) fn tables_of(model: &str) -> Option<&'static [&'static str]> {
            match model {
                $(stringify!($model) => Some(entity::$model::TABLES),)*
                _ => None,
            }
        }
    };
}

models! {
    saas: [global_events, users, shops, plans, payments, invoices];
    gym: [dim_branch, dim_user, fct_credit_pack_purchases, fct_membership_purchases];
    shop: [customer, product, product_category, campaign, order_line, inventory_event,
        inventory_snapshot];
    social: [user, content, campaign, content_event, ad_event, device];
    web: [users, addresses, products, orders, order_items, promos, events];
}

/// The models the loader knows, for messages.
pub(crate) fn model_list() -> String {
    entity::MODELS.join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every table of every model has a description, and every rule and reference names
    /// columns that exist (the rules cannot drift from the entities unnoticed).
    #[test]
    fn every_table_is_described_and_rules_name_real_columns() {
        for model in entity::MODELS {
            let tables = tables_of(model).expect("model has tables");
            for table in tables {
                let spec = describe_table(model, table)
                    .unwrap_or_else(|| panic!("{model}.{table} has no entity in the loader"))
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(spec.table, *table);
                assert!(!spec.key.is_empty(), "{model}.{table} has no key");
            }
        }
        for r in rules::COLUMN_RULES {
            let spec = describe_table(r.model, r.table)
                .unwrap_or_else(|| panic!("rule on unknown table {}.{}", r.model, r.table))
                .unwrap();
            let column = spec.index_of(r.column).unwrap_or_else(|| {
                panic!(
                    "rule on unknown column {}.{}.{}",
                    r.model, r.table, r.column
                )
            });
            if let Rule::JsonShapeBy { column, .. } = r.rule {
                assert!(spec.index_of(column).is_some(), "{column} selects no shape");
            }
            let _ = column;
        }
        for r in rules::REFERENCES {
            for (table, column) in [(r.table, r.column), (r.target_table, r.target_column)] {
                let spec = describe_table(r.model, table)
                    .unwrap_or_else(|| panic!("reference to unknown table {}.{table}", r.model))
                    .unwrap();
                assert!(
                    spec.index_of(column).is_some(),
                    "reference names unknown column {}.{table}.{column}",
                    r.model
                );
            }
            let tables = tables_of(r.model).unwrap();
            let from = tables.iter().position(|t| *t == r.table).unwrap();
            let to = tables.iter().position(|t| *t == r.target_table).unwrap();
            assert!(
                to <= from,
                "{}.{} is loaded before {}.{} which it references",
                r.model,
                r.table,
                r.model,
                r.target_table
            );
        }
    }
}
