//! Row queries: the rows of one table as of `asOf` — its `asOf` cut, the request's filter
//! over its columns, a total order (the request's sort keys, then the table's default order
//! and key), and a page.

use super::{CutNode, OutType, OutputColumn, OutputValue, Plan, cut_description};
use crate::query::{Item, QuerySpec};
use crate::semantic::{ColType, Model, RowColumn};

/// The rows of one table, filtered, sorted and paged.
#[derive(Debug, Clone)]
pub struct RowsNode {
    /// The logical table.
    pub table: String,
    /// The selected columns, in response order: response key and column.
    pub columns: Vec<(String, RowColumn)>,
    /// Sort keys, the request's first, then the table's default order and key.
    pub order: Vec<RowOrder>,
    /// Whether rows of every conversion variant are listed (no `conversionFilter` given),
    /// or only the request's variant.
    pub all_variants: bool,
    /// What the node computes.
    pub description: String,
}

/// A sort key of a row query.
#[derive(Debug, Clone)]
pub struct RowOrder {
    /// The column.
    pub column: RowColumn,
    /// Descending instead of ascending (nulls last either way).
    pub descending: bool,
    /// The conversion variants in declared order, when the column is the table's
    /// conversion-filter column: it sorts by that order rather than by text.
    pub variants: Option<Vec<String>>,
}

/// The type a row column is returned as.
pub fn out_type(ty: ColType) -> OutType {
    match ty {
        ColType::Int => OutType::Int,
        ColType::Float => OutType::Float(None),
        ColType::Decimal => OutType::Decimal,
        ColType::Bool => OutType::Bool,
        ColType::Time => OutType::Time,
        ColType::String | ColType::Date | ColType::LocalTime | ColType::Json => OutType::String,
    }
}

/// Plans a checked row query of `table`.
pub(super) fn plan_rows(model: &Model, spec: &QuerySpec, table: &str) -> Plan {
    let t = model.table(table);
    let rows = t.and_then(|t| t.rows.as_ref());
    let column = |field: &str| rows.and_then(|r| r.column(field)).cloned();
    let mut columns = Vec::new();
    let mut output = Vec::new();
    for f in &spec.fields {
        if let Item::Column { name } = &f.item
            && let Some(c) = column(name)
        {
            output.push(OutputColumn {
                key: f.key.clone(),
                value: OutputValue::Column(c.field.clone()),
                ty: out_type(c.ty),
            });
            columns.push((f.key.clone(), c));
        }
    }
    let variants = |c: &RowColumn| {
        t.and_then(|t| t.conversion_filter.as_ref())
            .filter(|cf| cf.column == c.column)
            .map(|_| model.conversion_variants.clone())
    };
    let mut order: Vec<RowOrder> = Vec::new();
    let mut push = |c: RowColumn, descending: bool| {
        if !order.iter().any(|o| o.column.column == c.column) {
            let variants = variants(&c);
            order.push(RowOrder {
                column: c,
                descending,
                variants,
            });
        }
    };
    for o in &spec.order {
        if let Some(c) = column(&o.target) {
            push(c, o.descending);
        }
    }
    if let Some(r) = rows {
        for name in &r.order {
            if let Some(c) = r.columns.iter().find(|c| c.column == *name) {
                push(c.clone(), false);
            }
        }
    }
    let cuts = t
        .map(|t| CutNode {
            table: t.name.clone(),
            cte: format!("asof_{}", t.name),
            description: cut_description(t),
        })
        .into_iter()
        .collect();
    let field = rows.map(|r| r.field.as_str()).unwrap_or(table);
    Plan {
        model: model.name.clone(),
        cuts,
        aggregates: Vec::new(),
        specials: Vec::new(),
        slots: Vec::new(),
        output,
        order: Vec::new(),
        limit: spec.limit.is_some(),
        offset: spec.offset.is_some(),
        join_path: vec![table.to_owned()],
        rows: Some(RowsNode {
            table: table.to_owned(),
            columns,
            order,
            all_variants: spec.conversion_filter.is_none(),
            description: format!(
                "the rows of {table} ({field}): the request's filter, sorted, one page"
            ),
        }),
    }
}
