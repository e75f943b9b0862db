//! Row policies, the acceptance test: every answer for a tenant's caller over the whole
//! database equals the answer of an unscoped server over a database holding only that
//! tenant's rows (built here by deleting the other tenants' rows with SQL of this test,
//! independent of the policies' text), for 1,000 random queries across the gym, saas and
//! shop models — metrics of every kind, dimensions, granularities, filters, asOf, row queries
//! and the saas lifecycle fields — on SQLite and on PostgreSQL (`TEST_DATABASE_URL`; required
//! under `CI=true`). No row of another tenant appears, counts stay within the tenant, and a
//! caller without an attribute a policy needs is FORBIDDEN.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::dynamic::Schema;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;

use common::TestDb;
use tally::demo::DemoOptions;
use tally::engine::{Caller, RequestScope};
use tally::semantic::{DimType, MetricKind, Model};

/// Random queries per backend.
const QUERIES: usize = 1000;
const DEMO: DemoOptions = DemoOptions {
    scale: 0.02,
    seed: 11,
};
const MODELS: [&str; 3] = ["saas", "gym", "shop"];

/// SplitMix64: a small seeded generator (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// An instant from 2024-01-01 to 2026-03-01, on a whole hour.
    fn instant(&mut self) -> String {
        let start = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap();
        let hours = self.below(26 * 30 * 24) as i64;
        (start + chrono::Duration::hours(hours))
            .to_utc()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }
}

/// The tenant of each model, and another tenant's id to filter on.
#[derive(Debug, Clone)]
struct Tenant {
    branch: String,
    other_branch: String,
    users: Vec<String>,
    other_user: String,
    store: String,
    other_store: String,
}

impl Tenant {
    fn caller(&self) -> Arc<Caller> {
        let mut a = BTreeMap::new();
        a.insert("branch_id".to_owned(), vec![self.branch.clone()]);
        a.insert("user_ids".to_owned(), self.users.clone());
        a.insert("store_id".to_owned(), vec![self.store.clone()]);
        Arc::new(Caller::new("tenant", a))
    }
}

async fn strings(db: &TestDb, sql: &str) -> Vec<String> {
    let rows = db
        .conn
        .query_all_raw(Statement::from_string(
            db.conn.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn exec(db: &TestDb, sql: &str) {
    db.conn
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn load(db: &TestDb) {
    for m in MODELS {
        tally::demo::load_demo(&db.conn, m, &DEMO, false)
            .await
            .unwrap_or_else(|e| panic!("demo {m}: {e}"));
    }
}

async fn pick_tenant(db: &TestDb) -> Tenant {
    let branches = strings(
        db,
        "SELECT DISTINCT branch_id FROM \"gym\".\"dim_user\" ORDER BY branch_id",
    )
    .await;
    let payers = strings(
        db,
        "SELECT DISTINCT user_id FROM \"saas\".\"payments\" ORDER BY user_id",
    )
    .await;
    let users = strings(
        db,
        "SELECT DISTINCT user_id FROM \"saas\".\"users\" ORDER BY user_id",
    )
    .await;
    let stores = strings(
        db,
        "SELECT DISTINCT store_id FROM \"shop\".\"order_line\" ORDER BY store_id",
    )
    .await;
    assert!(branches.len() >= 2 && stores.len() >= 2 && payers.len() >= 4 && users.len() > 10);
    let mut tenant_users: Vec<String> = payers.iter().take(3).cloned().collect();
    for u in users.iter().rev().take(3) {
        if !tenant_users.contains(u) {
            tenant_users.push(u.clone());
        }
    }
    let other_user = users
        .iter()
        .find(|u| !tenant_users.contains(u))
        .cloned()
        .unwrap();
    Tenant {
        branch: branches[0].clone(),
        other_branch: branches[1].clone(),
        users: tenant_users,
        other_user,
        store: stores[0].clone(),
        other_store: stores[1].clone(),
    }
}

/// Deletes every row of the other tenants (SQL of this test, not the policies').
async fn keep_only(db: &TestDb, t: &Tenant) {
    let b = &t.branch;
    let s = &t.store;
    let list = t
        .users
        .iter()
        .map(|u| format!("'{u}'"))
        .collect::<Vec<_>>()
        .join(", ");
    for sql in [
        format!(
            "DELETE FROM \"gym\".\"fct_membership_purchases\" WHERE user_id NOT IN \
             (SELECT user_id FROM \"gym\".\"dim_user\" WHERE branch_id = '{b}')"
        ),
        format!(
            "DELETE FROM \"gym\".\"fct_credit_pack_purchases\" WHERE user_id NOT IN \
             (SELECT user_id FROM \"gym\".\"dim_user\" WHERE branch_id = '{b}')"
        ),
        format!("DELETE FROM \"gym\".\"dim_user\" WHERE COALESCE(branch_id, '') <> '{b}'"),
        format!("DELETE FROM \"gym\".\"dim_branch\" WHERE branch_id <> '{b}'"),
        format!(
            "DELETE FROM \"saas\".\"global_events\" \
             WHERE COALESCE(metadata ->> 'user_id', '') NOT IN ({list})"
        ),
        format!("DELETE FROM \"saas\".\"users\" WHERE user_id NOT IN ({list})"),
        format!("DELETE FROM \"saas\".\"shops\" WHERE COALESCE(owner_user_id, '') NOT IN ({list})"),
        format!("DELETE FROM \"saas\".\"invoices\" WHERE COALESCE(user_id, '') NOT IN ({list})"),
        format!("DELETE FROM \"saas\".\"payments\" WHERE COALESCE(user_id, '') NOT IN ({list})"),
        format!("DELETE FROM \"shop\".\"order_line\" WHERE COALESCE(store_id, '') <> '{s}'"),
        "DELETE FROM \"shop\".\"customer\" WHERE customer_id NOT IN \
         (SELECT customer_id FROM \"shop\".\"order_line\")"
            .to_owned(),
        format!("DELETE FROM \"shop\".\"inventory_event\" WHERE COALESCE(store_id, '') <> '{s}'"),
        format!(
            "DELETE FROM \"shop\".\"inventory_snapshot\" WHERE COALESCE(store_id, '') <> '{s}'"
        ),
    ] {
        exec(db, &sql).await;
    }
}

/// A response as data and errors (message and code; locations left out).
async fn run(schema: &Schema, query: &str, caller: Option<Arc<Caller>>) -> Value {
    let scope = RequestScope::for_caller("policies".to_owned(), None, caller);
    let resp = schema
        .execute(async_graphql::Request::new(query).data(scope))
        .await;
    let errors: Vec<Value> = resp
        .errors
        .iter()
        .map(|e| {
            let code = e
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map(|v| v.clone().into_json().unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            assert_ne!(
                code,
                Value::from("INTERNAL"),
                "internal error for {query}: {}",
                e.message
            );
            serde_json::json!({ "message": e.message, "code": code })
        })
        .collect();
    serde_json::json!({ "data": resp.data.into_json().unwrap(), "errors": errors })
}

/// The SQL and the parameters of every statement in `extensions.explain` of a response.
async fn explain_sql(
    schema: &Schema,
    query: &str,
    caller: Option<Arc<Caller>>,
) -> (String, Vec<Value>) {
    let scope = RequestScope::for_caller("explain".to_owned(), None, caller);
    let resp = schema
        .execute(async_graphql::Request::new(query).data(scope))
        .await;
    assert!(resp.errors.is_empty(), "{query}: {:?}", resp.errors);
    let explain = resp
        .extensions
        .get("explain")
        .map(|v| v.clone().into_json().unwrap())
        .unwrap_or(Value::Null);
    let mut sql = String::new();
    let mut params = Vec::new();
    for e in explain.as_array().unwrap_or(&Vec::new()) {
        sql.push_str(e["sql"].as_str().unwrap_or(""));
        sql.push('\n');
        params.extend(e["params"].as_array().cloned().unwrap_or_default());
    }
    assert!(!sql.trim().is_empty(), "{query}: no explain");
    (sql, params)
}

/// Equal JSON, numbers within a relative 1e-9 (sums added in another order).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Every value under `key` anywhere in `v`.
fn values_of<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    out.push(x);
                }
                values_of(x, key, out);
            }
        }
        Value::Array(xs) => xs.iter().for_each(|x| values_of(x, key, out)),
        _ => {}
    }
}

/// No value of another tenant under the tenant keys of `v`.
fn assert_no_other_tenant(v: &Value, t: &Tenant, query: &str) {
    // user ids are the saas model's tenants (gym users are a branch's)
    for (key, allowed, within) in [
        ("branchId", vec![t.branch.clone()], &v["data"]),
        ("storeId", vec![t.store.clone()], &v["data"]),
        ("userId", t.users.clone(), &v["data"]["saas"]),
    ] {
        let mut found = Vec::new();
        values_of(within, key, &mut found);
        for x in found {
            if let Some(s) = x.as_str() {
                assert!(
                    allowed.iter().any(|a| a == s),
                    "{key} {s} of another tenant in the answer to {query}"
                );
            }
        }
    }
}

fn gran(g: &tally::semantic::Granularity) -> String {
    g.as_str().to_uppercase()
}

/// A filter input for a field of `ty`.
fn filter(rng: &mut Rng, name: &str, ty: DimType, t: &Tenant) -> String {
    let own = match name {
        "branchId" => Some((&t.branch, &t.other_branch)),
        "storeId" => Some((&t.store, &t.other_store)),
        "userId" => Some((&t.users[0], &t.other_user)),
        _ => None,
    };
    let cond = match (ty, own) {
        (DimType::String, Some((mine, other))) => match rng.below(3) {
            0 => format!("{{ equals: \"{mine}\" }}"),
            1 => format!("{{ equals: \"{other}\" }}"),
            _ => format!("{{ notIn: [\"{other}\"] }}"),
        },
        (DimType::String, None) => match rng.below(5) {
            0 => "{ isNull: false }".to_owned(),
            1 => "{ gt: \"M\" }".to_owned(),
            2 => "{ notIn: [\"x\"] }".to_owned(),
            3 => "{ isNull: true }".to_owned(),
            _ => "{ lt: \"C\" }".to_owned(),
        },
        (DimType::Number, _) => match rng.below(3) {
            0 => "{ gt: 0 }".to_owned(),
            1 => "{ lte: 40 }".to_owned(),
            _ => "{ isNull: false }".to_owned(),
        },
        (DimType::Boolean, _) => format!("{{ equals: {} }}", rng.chance(0.5)),
        (DimType::Time, _) => {
            if rng.chance(0.5) {
                format!("{{ gte: \"{}\" }}", rng.instant())
            } else {
                format!("{{ lt: \"{}\" }}", rng.instant())
            }
        }
    };
    format!("{name}: {cond}")
}

/// The time dimension and granularity a metric needs selected, if any.
fn needs_time(model: &Model, metric: &str) -> Option<(String, String)> {
    let m = model.metric(metric)?;
    match &m.kind {
        MetricKind::Cumulative {
            time_dimension,
            window_seconds,
            ..
        } => Some((
            time_dimension.clone(),
            if window_seconds.is_some() {
                "DAY"
            } else {
                "MONTH"
            }
            .to_owned(),
        )),
        MetricKind::Retention { time_dimension, .. }
        | MetricKind::PeriodAverage { time_dimension, .. } => {
            Some((time_dimension.clone(), "MONTH".to_owned()))
        }
        _ => None,
    }
}

/// A random metrics query of `model` (`first`: a metric every query of the sweep covers).
fn metrics_query(rng: &mut Rng, model: &Model, t: &Tenant, first: Option<&str>) -> String {
    let mut metrics: Vec<String> = Vec::new();
    if let Some(f) = first {
        metrics.push(f.to_owned());
    }
    for _ in 0..rng.below(3) {
        let m = &rng.pick(&model.metrics).name;
        if !metrics.contains(m) {
            metrics.push(m.clone());
        }
    }
    if metrics.is_empty() {
        metrics.push(rng.pick(&model.metrics).name.clone());
    }
    // the dimensions every selected metric reaches
    let reach: Vec<&tally::semantic::Dimension> = model
        .reachable_dimensions(&metrics[0])
        .into_iter()
        .filter(|d| {
            metrics[1..].iter().all(|m| {
                model
                    .reachable_dimensions(m)
                    .iter()
                    .any(|x| x.name == d.name)
            })
        })
        .collect();
    let mut fields: Vec<String> = Vec::new();
    let mut time: Option<(String, String)> = metrics.iter().find_map(|m| needs_time(model, m));
    let times: Vec<_> = reach
        .iter()
        .filter(|d| d.dim_type == DimType::Time)
        .collect();
    if time.is_none() && !times.is_empty() && rng.chance(0.6) {
        let d = rng.pick(&times);
        time = Some((d.name.clone(), gran(rng.pick(&d.granularities))));
    }
    if let Some((d, g)) = &time {
        fields.push(format!("{d}(granularity: {g})"));
    }
    let plain: Vec<_> = reach
        .iter()
        .filter(|d| d.dim_type != DimType::Time)
        .collect();
    for _ in 0..rng.below(3) {
        if plain.is_empty() {
            break;
        }
        let d = &rng.pick(&plain).name;
        if !fields.contains(d) {
            fields.push(d.clone());
        }
    }
    let mut args = vec![format!("asOf: \"{}\"", rng.instant())];
    if rng.chance(0.5) && !reach.is_empty() {
        let mut conds = Vec::new();
        for _ in 0..1 + rng.below(2) {
            let d = rng.pick(&reach);
            let c = filter(rng, &d.name, d.dim_type, t);
            if !conds
                .iter()
                .any(|x: &String| x.split(':').next() == c.split(':').next())
            {
                conds.push(c);
            }
        }
        args.push(format!("where: {{ {} }}", conds.join(", ")));
    }
    if rng.chance(0.3) {
        let key = rng.pick(&metrics).clone();
        let dir = if rng.chance(0.5) { "DESC" } else { "ASC" };
        args.push(format!("orderBy: [{{ {key}: {dir} }}]"));
    }
    if rng.chance(0.3) {
        args.push(format!("limit: {}", 1 + rng.below(20)));
        if rng.chance(0.5) {
            args.push(format!("offset: {}", rng.below(5)));
        }
    }
    if rng.chance(0.2) {
        args.push("timezone: \"Europe/London\"".to_owned());
    }
    if !model.conversion_variants.is_empty() && rng.chance(0.4) {
        args.push(format!(
            "conversionFilter: {}",
            rng.pick(&model.conversion_variants)
        ));
    }
    fields.extend(metrics);
    fields.push("isComplete".to_owned());
    format!(
        "{{ {} {{ metrics({}) {{ {} }} }} }}",
        model.name,
        args.join(", "),
        fields.join(" ")
    )
}

/// A random row query of one of `model`'s row fields.
fn rows_query(rng: &mut Rng, model: &Model, t: &Tenant) -> Option<String> {
    let tables: Vec<_> = model.tables.iter().filter(|x| x.rows.is_some()).collect();
    if tables.is_empty() {
        return None;
    }
    let table = rng.pick(&tables);
    let rows = table.rows.as_ref()?;
    let cols: Vec<_> = rows
        .columns
        .iter()
        .filter(|c| c.ty != tally::semantic::ColType::Json)
        .collect();
    let mut fields: Vec<String> = cols
        .iter()
        .filter(|c| c.key || c.field == "branchId" || rng.chance(0.3))
        .map(|c| c.field.clone())
        .collect();
    fields.dedup();
    let mut args = vec![format!("asOf: \"{}\"", rng.instant())];
    if rng.chance(0.6) {
        let c = rng.pick(&cols);
        args.push(format!(
            "where: {{ {} }}",
            filter(rng, &c.field, c.dimension.dim_type, t)
        ));
    }
    if rng.chance(0.5) {
        let c = rng.pick(&cols);
        let dir = if rng.chance(0.5) { "DESC" } else { "ASC" };
        args.push(format!("orderBy: [{{ {}: {dir} }}]", c.field));
    }
    args.push(format!("limit: {}", 1 + rng.below(60)));
    if rng.chance(0.3) {
        args.push(format!("offset: {}", rng.below(20)));
    }
    if table.conversion_filter.is_some() && rng.chance(0.3) {
        args.push(format!(
            "conversionFilter: {}",
            rng.pick(&model.conversion_variants)
        ));
    }
    Some(format!(
        "{{ {} {{ {}({}) {{ {} }} }} }}",
        model.name,
        rows.field,
        args.join(", "),
        fields.join(" ")
    ))
}

/// A random saas lifecycle query.
fn lifecycle_query(rng: &mut Rng) -> String {
    let cohort = if rng.chance(0.4) {
        let (a, b) = (rng.instant(), rng.instant());
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        format!(", cohort: {{ from: \"{a}\", to: \"{b}\" }}")
    } else {
        String::new()
    };
    let flow = "{ nodes { id count level } links { source target count } }";
    match rng.below(4) {
        0 => format!(
            "{{ saas {{ stageCounts(asOf: \"{}\"{cohort}) {{ stage count }} }} }}",
            rng.instant()
        ),
        1 => format!(
            "{{ saas {{ journey(asOf: \"{}\"{cohort}) {flow} }} }}",
            rng.instant()
        ),
        2 => {
            let (a, b) = (rng.instant(), rng.instant());
            // from later than to now and then: the same error on both sides
            format!("{{ saas {{ transitions(from: \"{a}\", to: \"{b}\"{cohort}) {flow} }} }}")
        }
        _ => {
            let stage = if rng.chance(0.5) {
                format!(
                    ", stage: {}",
                    rng.pick(&["LEAD", "PROSPECT", "CUSTOMER", "CHURNED"])
                )
            } else {
                String::new()
            };
            format!(
                "{{ saas {{ users(asOf: \"{}\"{stage}{cohort}, limit: {}, offset: {}) {{ totalCount \
                 pageInfo {{ hasNextPage }} edges {{ node {{ userId email signupTime stage churnReason \
                 paymentCount planId shops {{ shopId createdAt deleted plan {{ planId }} \
                 invoices {{ invoiceId }} }} }} }} }} }} }}",
                rng.instant(),
                1 + rng.below(5),
                rng.below(3)
            )
        }
    }
}

async fn check_backend(full: TestDb, only: TestDb, seed: u64) {
    load(&full).await;
    load(&only).await;
    let tenant = pick_tenant(&full).await;
    keep_only(&only, &tenant).await;
    let models = tally::semantic::load_embedded().unwrap();
    let scoped = tally::graphql::build_with(Some(full.conn.clone()), models.clone()).unwrap();
    let open = tally::graphql::build_with(Some(only.conn.clone()), models.clone()).unwrap();
    let caller = tenant.caller();
    let by_name = |n: &str| models.iter().find(|m| m.name == n).unwrap();

    let mut rng = Rng(seed);
    // a sweep over every metric of every model first, then random queries
    let mut sweep: Vec<(&str, String)> = Vec::new();
    for m in MODELS {
        for metric in &by_name(m).metrics {
            sweep.push((m, metric.name.clone()));
        }
    }
    let mut kinds = [0usize; 4];
    let (mut failed, mut with_rows) = (0usize, 0usize);
    for i in 0..QUERIES {
        let query = if let Some((m, metric)) = sweep.get(i) {
            kinds[0] += 1;
            metrics_query(&mut rng, by_name(m), &tenant, Some(metric))
        } else {
            let model = by_name(MODELS[rng.below(MODELS.len())]);
            match rng.below(10) {
                0..=4 => {
                    kinds[0] += 1;
                    metrics_query(&mut rng, model, &tenant, None)
                }
                // the row fields of the model, else of gym (which has some)
                5..=7 => match rows_query(&mut rng, model, &tenant)
                    .or_else(|| rows_query(&mut rng, by_name("gym"), &tenant))
                {
                    Some(q) => {
                        kinds[1] += 1;
                        q
                    }
                    None => continue,
                },
                8 => {
                    kinds[2] += 1;
                    lifecycle_query(&mut rng)
                }
                _ => {
                    kinds[3] += 1;
                    format!(
                        "{{ sources(model: \"{}\") {{ name tables {{ name rowCount }} }} }}",
                        model.name
                    )
                }
            }
        };
        let got = run(&scoped, &query, Some(caller.clone())).await;
        let want = run(&open, &query, None).await;
        assert!(
            same(&got, &want),
            "seed {seed}, query #{i} on {}:\n{query}\nscoped over every tenant: {got}\nunscoped over the tenant's rows: {want}",
            full.backend
        );
        assert_no_other_tenant(&got, &tenant, &query);
        if got["errors"].as_array().is_some_and(|e| !e.is_empty()) {
            failed += 1;
            if std::env::var_os("POLICY_DEBUG").is_some() {
                eprintln!("ERR {} <- {query}", got["errors"][0]["message"]);
            }
        } else if got.to_string().len() > 120 {
            with_rows += 1;
        }
    }
    // most queries answer, most answers have rows: the comparison compares numbers
    assert!(
        failed * 5 < QUERIES && with_rows * 2 > QUERIES,
        "{failed} queries failed, {with_rows} answered with rows"
    );
    eprintln!(
        "{}: {QUERIES} queries (metrics {}, rows {}, lifecycle {}, sources {}; {failed} errors, \
         {with_rows} with rows), seed {seed}",
        full.backend, kinds[0], kinds[1], kinds[2], kinds[3]
    );

    // counts that would reveal other tenants stay within the tenant
    let one = |q: &str| {
        let q = q.to_owned();
        let scoped = &scoped;
        let caller = caller.clone();
        async move { run(scoped, &q, Some(caller)).await }
    };
    let gym = one("{ gym { metrics { branchId leads } } }").await;
    let rows = gym["data"]["gym"]["metrics"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{gym}");
    assert_eq!(rows[0]["branchId"], Value::from(tenant.branch.clone()));
    let shop = one("{ shop { metrics { storeId orders } } }").await;
    let rows = shop["data"]["shop"]["metrics"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{shop}");
    assert_eq!(rows[0]["storeId"], Value::from(tenant.store.clone()));
    let saas = one("{ saas { users(limit: 100) { totalCount } stageCounts { count } } }").await;
    let total = saas["data"]["saas"]["users"]["totalCount"]
        .as_u64()
        .unwrap();
    assert!(
        total > 0 && total as usize <= tenant.users.len(),
        "{total} users for a tenant of {}",
        tenant.users.len()
    );
    let counted: u64 = saas["data"]["saas"]["stageCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, total);
    // another tenant's caller gets the same cached statement with its own values
    let mut attrs = BTreeMap::new();
    attrs.insert("branch_id".to_owned(), vec![tenant.other_branch.clone()]);
    let other = Arc::new(Caller::new("tenant", attrs));
    let theirs = run(
        &scoped,
        "{ gym { metrics { branchId leads } } }",
        Some(other),
    )
    .await;
    let rows = theirs["data"]["gym"]["metrics"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{theirs}");
    assert_eq!(
        rows[0]["branchId"],
        Value::from(tenant.other_branch.clone())
    );
    // and the unscoped server over the same database sees more
    let everyone = run(&scoped, "{ gym { metrics { branchId leads } } }", None).await;
    assert!(
        everyone["data"]["gym"]["metrics"].as_array().unwrap().len() > 1,
        "{everyone}"
    );

    // explain shows the policies and their bound attributes; the plan cache never serves
    // the statement of an unscoped caller to a scoped one (the shape asked unscoped first)
    let q = "{ gym { metrics { branchCity leads } } }";
    let open_sql = explain_sql(&scoped, q, None).await;
    assert!(!open_sql.0.contains("tally_policy_"), "{}", open_sql.0);
    let (sql, params) = explain_sql(&scoped, q, Some(caller.clone())).await;
    assert!(
        sql.contains("-- row policy of gym.dim_user: branch_id IN caller.branch_id")
            && sql.contains("\"tally_policy_dim_user\" AS (")
            && sql.contains("FROM \"tally_policy_dim_user\" AS u"),
        "{sql}"
    );
    let branches = serde_json::to_string(&[&tenant.branch]).unwrap();
    assert!(params.contains(&Value::from(branches)), "{params:?}");
    let (sql, params) = explain_sql(
        &scoped,
        "{ saas { users(limit: 2) { totalCount } } }",
        Some(caller.clone()),
    )
    .await;
    assert!(sql.contains("tally_policy_"), "{sql}");
    let list = serde_json::to_string(&tenant.users).unwrap();
    assert!(params.contains(&Value::from(list)), "{params:?}");

    // a caller without an attribute a policy needs is FORBIDDEN, naming model, table, attribute
    let mut attrs = BTreeMap::new();
    attrs.insert("store_id".to_owned(), vec![tenant.store.clone()]);
    let store_only = Arc::new(Caller::new("store", attrs));
    for (q, model, attribute) in [
        ("{ gym { metrics { leads } } }", "gym", "branch_id"),
        (
            "{ gym { leadConversions(limit: 1) { userId } } }",
            "gym",
            "branch_id",
        ),
        ("{ saas { stageCounts { count } } }", "saas", "user_ids"),
        (
            "{ saas { users(limit: 1) { totalCount } } }",
            "saas",
            "user_ids",
        ),
        (
            "{ sources(model: \"saas\") { tables { rowCount } } }",
            "saas",
            "user_ids",
        ),
    ] {
        let r = run(&scoped, q, Some(store_only.clone())).await;
        let e = &r["errors"][0];
        assert_eq!(e["code"], Value::from("FORBIDDEN"), "{q}: {r}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("model {model}")) && msg.contains(attribute),
            "{q}: {msg}"
        );
    }
    // the store's caller still reads its own model
    let r = run(&scoped, "{ shop { metrics { orders } } }", Some(store_only)).await;
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    // a list attribute of several values: the rows of each of them
    let mut attrs = BTreeMap::new();
    attrs.insert(
        "branch_id".to_owned(),
        vec![tenant.branch.clone(), tenant.other_branch.clone()],
    );
    let two = Arc::new(Caller::new("two", attrs));
    let r = run(&scoped, "{ gym { metrics { branchId leads } } }", Some(two)).await;
    let mut got: Vec<&str> = r["data"]["gym"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["branchId"].as_str().unwrap())
        .collect();
    got.sort();
    let mut want = vec![tenant.branch.as_str(), tenant.other_branch.as_str()];
    want.sort();
    assert_eq!(got, want, "{r}");

    full.cleanup().await;
    only.cleanup().await;
}

fn seed() -> u64 {
    std::env::var("POLICY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_130)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_answers_equal_a_tenant_only_database_sqlite() {
    check_backend(TestDb::sqlite().await, TestDb::sqlite().await, seed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_answers_equal_a_tenant_only_database_postgres() {
    let Some(full) = TestDb::postgres_unless_skipped().await else {
        return;
    };
    let Some(only) = TestDb::postgres_unless_skipped().await else {
        return;
    };
    check_backend(full, only, seed()).await;
}

#[test]
fn bad_policies_are_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unqualified.sql"),
        "SELECT store_id FROM order_line WHERE order_time <= $1",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("unquoted.sql"),
        "SELECT store_id FROM shop.order_line WHERE order_time <= $1",
    )
    .unwrap();
    let text = r#"[model]
name = "shop"
description = "d"

[[table]]
name = "order_line"
key = ["line_item_id"]
as_of = { kind = "event", time = "order_time" }
description = "d"

[[table]]
name = "by_store"
sql = { postgres = "unqualified.sql", sqlite = "unquoted.sql" }
columns = { store_id = "string" }
description = "d"

[[policy]]
table = "no_such_table"
condition = "store_id = caller.store_id"

[[policy]]
table = "order_line"
condition = "store_id = caller.store_id"

[[policy]]
table = "product_category"
condition = "store_id = caller"

[[policy]]
table = "inventory_event"
condition = "store_id = $1"

[[policy]]
table = "customer"
condition = "customer_id = 'x"

[[policy]]
table = "product"
condition = "product_id IS NOT NULL"

[[policy]]
table = "inventory_snapshot"
condition = "store_id = caller.store_id"

[[policy]]
table = "inventory_snapshot"
condition = "store_id = caller.store_id"

[[policy]]
table = "campaign"
condition = "campaign_id = caller.c; DELETE FROM x"
"#;
    let src = tally::semantic::ModelSource {
        folder: "shop".into(),
        files: vec![tally::semantic::SourceFile {
            path: "models/shop/model.toml".into(),
            text: text.into(),
        }],
        sql_roots: vec![dir.path().to_path_buf()],
    };
    let err = tally::semantic::load_sources(&[src])
        .unwrap_err()
        .to_string();
    let line = |needle: &str, nth: usize| {
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .nth(nth)
            .map(|(i, _)| i + 1)
            .unwrap()
    };
    for (wanted, at) in [
        ("unknown table shop.no_such_table", line("no_such_table", 0)),
        ("must be followed by `.NAME`", line("= caller\"", 0)),
        ("$1 is not allowed", line("store_id = $1", 0)),
        ("unterminated string", line("'x", 0)),
        ("reads no caller attribute", line("IS NOT NULL", 0)),
        ("second policy", line("\"inventory_snapshot\"", 1)),
        ("`;` is not allowed", line("DELETE FROM x", 0)),
        (
            "reads order_line without its namespace",
            line("name = \"by_store\"", 0) - 1,
        ),
        (
            "names shop.order_line without quotes",
            line("name = \"by_store\"", 0) - 1,
        ),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(wanted) && l.contains(&format!("model.toml:{at}:"))),
            "{wanted} at line {at} in:\n{err}"
        );
    }
}

#[tokio::test]
async fn the_live_check_runs_every_policy() {
    let mut dbs = vec![TestDb::sqlite().await];
    dbs.extend(TestDb::postgres_unless_skipped().await);
    for db in dbs {
        let shipped = tally::semantic::load_embedded().unwrap();
        tally::engine::check_live(&shipped, &db.conn)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", db.backend));
        let text = "[model]\nname = \"shop\"\ndescription = \"d\"\n\n[[table]]\nname = \"order_line\"\n\
                    key = [\"line_item_id\"]\nas_of = { kind = \"event\", time = \"order_time\" }\n\
                    description = \"d\"\n\n[[policy]]\ntable = \"order_line\"\n\
                    condition = \"no_such_column = caller.store_id\"\n";
        let models = tally::semantic::load_sources(&[tally::semantic::ModelSource {
            folder: "shop".into(),
            files: vec![tally::semantic::SourceFile {
                path: "models/shop/model.toml".into(),
                text: text.into(),
            }],
            sql_roots: vec![],
        }])
        .unwrap();
        let err = tally::engine::check_live(&models, &db.conn)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("models/shop/model.toml:11: policy of shop.order_line does not run"),
            "{}: {err}",
            db.backend
        );
        db.cleanup().await;
    }
}
