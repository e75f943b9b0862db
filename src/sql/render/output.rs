//! The final SELECT: the response columns over the nodes joined on the slot values, its
//! order (metrics by their rounded value, text in byte order, nulls last), limit and offset.

use super::super::{Sql, quote};
use super::Renderer;
use crate::plan::{OutType, OutputValue, Param, PlanError};

impl Renderer<'_> {
    pub(super) fn select(&self) -> Result<Sql, PlanError> {
        let out = &self.plan.output;
        let mut inner = Sql::raw("SELECT ");
        for (i, c) in out.columns.iter().enumerate() {
            if i > 0 {
                inner.push(",\n    ");
            }
            let v = match &c.value {
                OutputValue::Column(i) => {
                    return Err(PlanError::new(format!(
                        "row column #{i} in a metrics select"
                    )));
                }
                OutputValue::Slot(s) => {
                    let r = self.slot_text(*s)?;
                    match c.ty {
                        OutType::Float(_) => self.d.float(r),
                        OutType::Bool => self.d.bool_int(r),
                        _ => r,
                    }
                }
                OutputValue::Metric(m) => {
                    // Unrounded: exec rounds every backend's double the same way.
                    let v = self.metric(m)?;
                    match c.ty {
                        OutType::Int => self.d.int(v),
                        _ => self.d.float(v),
                    }
                }
                OutputValue::Complete(slots) if slots.is_empty() => self.d.int(Sql::raw("1")),
                OutputValue::Complete(slots) => {
                    let mut s = Sql::raw("CASE WHEN ");
                    for (k, (i, g)) in slots.iter().enumerate() {
                        if k > 0 {
                            s.push(" AND ");
                        }
                        s.append(self.ended(*i, *g, 1)?);
                    }
                    s.push(" THEN 1 ELSE 0 END");
                    self.d.int(s)
                }
            };
            inner.append(v);
            inner.push(&format!(" AS \"c{i}\""));
        }
        // FROM: the keys and every node by its row of each group, or the one node; without
        // slots, every node's one row
        match (&self.plan.keys, self.bucket_join()) {
            (Some(k), Some(x)) => {
                // each node joined on the buckets of the nodes before it (their first value)
                for (n, cte) in k.sources.iter().enumerate() {
                    if n == 0 {
                        inner.push(&format!("\n  FROM {}", quote(cte)));
                        continue;
                    }
                    inner.push(&format!("\n  FULL JOIN {} ON ", quote(cte)));
                    for i in 0..self.plan.slots.len() {
                        let before = Self::coalesced(&k.sources[..n], i);
                        let this = format!("{}.\"d{i}\"", quote(cte));
                        if i > 0 {
                            inner.push(" AND ");
                        }
                        inner.push(&format!(
                            "COALESCE({before}, {x}) = COALESCE({this}, {x}) AND ({before} IS NULL) = ({this} IS NULL)"
                        ));
                    }
                }
            }
            (Some(k), None) => {
                inner.push(&format!("\n  FROM {}", quote(&out.from)));
                for (i, cte) in k.sources.iter().enumerate() {
                    inner.push(&format!(
                        "\n  LEFT JOIN {} AS {} ON {}.\"tally_rid\" = {}.\"r{i}\"",
                        quote(&crate::plan::KeysNode::keyed(cte)),
                        quote(cte),
                        quote(cte),
                        quote(&k.cte)
                    ));
                }
            }
            (None, _) if !out.joined.is_empty() && !self.plan.slots.is_empty() => {
                return Err(PlanError::new(
                    "nodes grouped by dimensions are joined without keys",
                ));
            }
            (None, _) => {
                inner.push(&format!("\n  FROM {}", quote(&out.from)));
                for cte in &out.joined {
                    inner.push(&format!("\n  CROSS JOIN {}", quote(cte)));
                }
            }
        }
        // offsets: the request's aggregate again, its group of the bucket `n` periods earlier
        // (the key moved on the probing side, so the earlier groups' keys are plain columns)
        for l in &out.by_time {
            inner.push(&format!(
                "\n  LEFT JOIN {} AS {} ON {}.\"d{}\" = ",
                quote(&l.source),
                quote(&l.cte),
                quote(&l.cte),
                l.slot
            ));
            inner.append(self.d.key_add(
                self.slot_ref(l.slot),
                l.grain,
                -l.periods,
                self.slot(l.slot)?.z,
            ));
        }
        // ORDER BY on the result's columns.
        let collate = |i: usize| -> String {
            match (out.columns.get(i).map(|c| c.ty), self.d.byte_collation()) {
                (Some(OutType::String), Some(c)) => format!(" COLLATE {c}"),
                _ => String::new(),
            }
        };
        let key = |i: usize| -> String {
            let col = Sql::raw(&format!("\"c{i}\""));
            match out.columns.get(i).map(|c| (c.ty.decimals(), &c.value)) {
                // metrics sort by their rounded value, as returned
                Some((Some(n), OutputValue::Metric(_))) => self.d.round(col, n).text,
                _ => format!("{}{}", col.text, collate(i)),
            }
        };
        let mut order: Vec<String> = Vec::new();
        for (i, desc) in &out.order {
            order.push(format!(
                "{} {}",
                key(*i),
                if *desc {
                    "DESC NULLS LAST"
                } else {
                    "ASC NULLS LAST"
                }
            ));
        }
        for (i, c) in out.columns.iter().enumerate() {
            if matches!(c.value, OutputValue::Slot(_)) && !out.order.iter().any(|(x, _)| *x == i) {
                order.push(format!("\"c{i}\"{} ASC NULLS LAST", collate(i)));
            }
        }
        let mut s = Sql::raw("SELECT * FROM (\n  ");
        s.append(inner);
        s.push("\n) AS \"tally_result\"");
        if !order.is_empty() {
            s.push("\nORDER BY ");
            s.push(&order.join(", "));
        }
        self.page(&mut s);
        Ok(s)
    }

    /// `LIMIT` and `OFFSET` of the response, bound per request, where it has them.
    pub(super) fn page(&self, s: &mut Sql) {
        let out = &self.plan.output;
        if out.limit {
            s.push("\nLIMIT ");
            s.param(Param::Limit);
        } else if out.offset {
            s.push("\n");
            s.push(self.d.limit_all());
        }
        if out.offset {
            s.push(" OFFSET ");
            s.param(Param::Offset);
        }
    }
}
