//! A row query: the rows of one table as of `asOf` — its `asOf` cut, the request's filter
//! over its columns (each column is a dimension of its table, so the conditions are those of
//! metrics), a total order (the request's sort keys, then the table's default order and
//! key) and a page.

use super::cut::{self, CutCondition};
use super::{OutType, OutputColumn, OutputNode, OutputValue, Plan, PlanError, Planner, filter};
use crate::query::{Item, QuerySpec};
use crate::semantic::{ColType, RowColumn};

/// The rows of one table, filtered, sorted and paged.
#[derive(Debug, Clone)]
pub struct RowsNode {
    /// The logical table.
    pub table: String,
    /// The CTE of its cut.
    pub cte: String,
    /// The selected columns, in response order.
    pub columns: Vec<RowColumn>,
    /// Sort keys: the request's first, then the table's default order and key.
    pub order: Vec<RowOrder>,
    /// What the node returns.
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
pub(super) fn plan(p: &mut Planner<'_>, spec: &QuerySpec, table: &str) -> Result<Plan, PlanError> {
    let model = p.model;
    let t = p.table(table)?;
    let rows = t
        .rows
        .as_ref()
        .ok_or_else(|| PlanError::new(format!("table {table} lists no rows")))?;
    p.row_columns = rows.columns.iter().map(|c| c.dimension.clone()).collect();
    let column = |field: &str| {
        rows.column(field)
            .cloned()
            .ok_or_else(|| PlanError::new(format!("unknown column {field:?} of {table}")))
    };
    let mut columns = Vec::new();
    let mut output = Vec::new();
    for f in &spec.fields {
        let Item::Column { name } = &f.item else {
            return Err(PlanError::new(format!("{} selected in a row query", f.key)));
        };
        let c = column(name)?;
        output.push(OutputColumn {
            key: f.key.clone(),
            value: OutputValue::Column(columns.len()),
            ty: out_type(c.ty),
        });
        columns.push(c);
    }
    let variants = |c: &RowColumn| {
        t.conversion_filter
            .as_ref()
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
        push(column(&o.target)?, o.descending);
    }
    for name in &rows.order {
        let c = rows
            .columns
            .iter()
            .find(|c| c.column == *name)
            .ok_or_else(|| PlanError::new(format!("order column {name:?} of {table}")))?;
        push(c.clone(), false);
    }
    let filter = spec
        .filter
        .as_ref()
        .map(|f| filter::plan(p, f, spec.values.len()))
        .transpose()?;
    p.touch(table);
    let mut cut = cut::plan(p, table)?;
    if spec.conversion_filter.is_none() {
        // every variant's rows (metrics keep the default variant's instead)
        let cf = t.conversion_filter.as_ref().map(|cf| cf.column.as_str());
        cut.conditions
            .retain(|c| !matches!(c, CutCondition::Equals(col, _) if Some(col.as_str()) == cf));
    }
    let description = format!(
        "the rows of {table} ({}): the request's filter, sorted, one page",
        rows.field
    );
    Ok(Plan {
        model: model.name.clone(),
        slots: Vec::new(),
        rows: Some(RowsNode {
            table: table.to_owned(),
            cte: cut.cte.clone(),
            columns,
            order,
            description: description.clone(),
        }),
        cuts: vec![cut],
        aggregates: Vec::new(),
        specials: Vec::new(),
        keys: None,
        filter,
        output: OutputNode {
            columns: output,
            from: cut::cte_name(table),
            joined: Vec::new(),
            by_time: Vec::new(),
            order: Vec::new(),
            limit: spec.limit.is_some(),
            offset: spec.offset.is_some(),
            description,
        },
        join_path: vec![table.to_owned()],
        funnel: None,
    })
}
