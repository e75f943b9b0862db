//! The request's `where`, resolved: each condition holds its dimension and the parameters
//! of its values (bound as the dimension is stored).

use std::sync::Arc;

use super::{BindAs, Param, PlanError, Planner};
use crate::query::{Filter, FilterOp};
use crate::semantic::{DimType, Dimension, Table, TimeStorage};

/// A filter over dimensions (their raw values: time dimensions are compared unbucketed),
/// applied to the rows of every node.
#[derive(Debug, Clone)]
pub enum PlannedFilter {
    /// All hold (none: true).
    And(Vec<PlannedFilter>),
    /// One holds (none: false).
    Or(Vec<PlannedFilter>),
    /// Does not hold.
    Not(Box<PlannedFilter>),
    /// A comparison of one dimension.
    Cond {
        /// The dimension.
        dimension: Dimension,
        /// Its table.
        table: Arc<Table>,
        /// The comparison.
        op: FilterOp,
        /// Its values, in order (one per value of `in`, two for `between`).
        args: Vec<Param>,
    },
}

/// How many values `op` compares with (`None`: any number).
fn arity(op: FilterOp) -> Option<usize> {
    match op {
        FilterOp::IsNull | FilterOp::IsNotNull => Some(0),
        FilterOp::In | FilterOp::NotIn => None,
        FilterOp::Between => Some(2),
        FilterOp::Equals
        | FilterOp::NotEquals
        | FilterOp::Contains
        | FilterOp::StartsWith
        | FilterOp::Gt
        | FilterOp::Gte
        | FilterOp::Lt
        | FilterOp::Lte => Some(1),
    }
}

/// Resolves a filter of a request with `n_values` values.
pub(super) fn plan(
    p: &mut Planner<'_>,
    f: &Filter,
    n_values: usize,
) -> Result<PlannedFilter, PlanError> {
    Ok(match f {
        Filter::And(xs) => PlannedFilter::And(
            xs.iter()
                .map(|x| plan(p, x, n_values))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Or(xs) => PlannedFilter::Or(
            xs.iter()
                .map(|x| plan(p, x, n_values))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Not(x) => PlannedFilter::Not(Box::new(plan(p, x, n_values)?)),
        Filter::Cond {
            dimension,
            op,
            args,
        } => {
            let dim = p.dimension(dimension)?.clone();
            let table = p.table(&dim.table)?;
            let how = match (dim.dim_type, dim.time_storage) {
                (DimType::Time, TimeStorage::Instant) => BindAs::Instant,
                (DimType::Time, TimeStorage::Date) => BindAs::Date,
                (DimType::Time, TimeStorage::Local) => BindAs::Local,
                _ => BindAs::Plain,
            };
            let used = arity(*op).unwrap_or(args.len());
            if args.len() < used {
                return Err(PlanError::new(format!(
                    "where {dimension}: {op:?} takes {used} value(s), not {}",
                    args.len()
                )));
            }
            if let Some(i) = args.iter().find(|i| **i >= n_values) {
                return Err(PlanError::new(format!(
                    "where {dimension}: value #{i} of {n_values}"
                )));
            }
            PlannedFilter::Cond {
                dimension: dim,
                table,
                op: *op,
                args: args[..used]
                    .iter()
                    .map(|i| Param::Request(*i, how))
                    .collect(),
            }
        }
    })
}
