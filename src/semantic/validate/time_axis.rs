//! `[[time_axis]]`: one time dimension over several tables, each on a time column of its own
//! (`metricTime`), so that metrics of different tables group by one bucket; and the names
//! the API derives from metric names (`<metric>Growth`), which no dimension or metric may
//! take.

use super::{Loc, Parsed, Report, col_types, is_field_name, parse_expr};
use crate::semantic::expr::ExprType;
use crate::semantic::{DimType, Dimension, Granularity, Model, TimeStorage};

/// Adds every `[[time_axis]]` of the model as a time dimension whose expression depends on
/// the table it is read on ([`Dimension::axis`]); then checks that no dimension or metric
/// takes the name of a metric's growth field.
pub(super) fn build(parsed: &[Parsed<'_>], model: &mut Model, r: &mut Report) {
    for p in parsed {
        for sa in &p.raw.time_axis {
            let a = sa.get_ref();
            let loc = Loc::of(p, sa);
            let name = a.name.get_ref().clone();
            if !is_field_name(&name) {
                Loc::of(p, &a.name).report(
                    r,
                    format!("time axis name {name:?} is not a camelCase GraphQL field name"),
                );
                continue;
            }
            if model.dimension(&name).is_some()
                || model.metric(&name).is_some()
                || super::RESERVED_FIELDS.contains(&name.as_str())
            {
                Loc::of(p, &a.name).report(
                    r,
                    format!("time axis {name:?}: a dimension or metric has that name already"),
                );
                continue;
            }
            if a.description.trim().is_empty() {
                loc.report(r, format!("time axis {name:?} needs a description"));
            }
            let mut axis = Vec::new();
            for (table_name, column) in a.tables.get_ref() {
                let Some(table) = model.table(table_name) else {
                    Loc::of(p, &a.tables).report(
                        r,
                        format!("time axis {name:?}: unknown table {table_name:?}"),
                    );
                    continue;
                };
                let text = toml::Spanned::new(0..0, column.clone());
                let Some(expr) = parse_expr(
                    &text,
                    Loc::of(p, &a.tables),
                    r,
                    &format!("time axis {name:?} on table {table_name:?}"),
                ) else {
                    continue;
                };
                match expr.infer(&col_types(table)) {
                    Ok(ExprType::Time) => axis.push((table.name.clone(), expr)),
                    Ok(other) => Loc::of(p, &a.tables).report(
                        r,
                        format!(
                            "time axis {name:?} on table {table_name:?}: {column:?} is a {other:?}, not an instant (a time column)"
                        ),
                    ),
                    Err(e) => Loc::of(p, &a.tables).report(
                        r,
                        format!("time axis {name:?} on table {table_name:?}: {e}"),
                    ),
                }
            }
            let Some((first, expr)) = axis.first().cloned() else {
                loc.report(r, format!("time axis {name:?} maps no table"));
                continue;
            };
            model.dimensions.push(Dimension {
                name,
                table: first,
                expr,
                dim_type: DimType::Time,
                granularities: Granularity::ALL.to_vec(),
                time_storage: TimeStorage::Instant,
                description: a.description.clone(),
                axis,
            });
        }
    }
    // `<metric>Growth` is a field of every metrics row
    for p in parsed {
        let names = p
            .raw
            .dimension
            .iter()
            .map(|d| &d.get_ref().name)
            .chain(p.raw.metric.iter().map(|m| &m.get_ref().name))
            .chain(p.raw.time_axis.iter().map(|a| &a.get_ref().name));
        for n in names {
            if let Some(base) = n.get_ref().strip_suffix("Growth")
                && model.metric(base).is_some()
            {
                Loc::of(p, n).report(
                    r,
                    format!(
                        "{:?} is the growth field of metric {base:?} (its value over an earlier bucket's): choose another name",
                        n.get_ref()
                    ),
                );
            }
        }
    }
}
