//! The drill-down below a user: shops, plans, invoices and payments as of T, each fetched for
//! many keys in ONE statement (the GraphQL dataloaders batch their keys into these calls).
//!
//! SQL files (per dialect, `.sqlite.sql` for SQLite) under `sql/saas/`: `drill_shops`
//! (`$1` = T, `$2` = user ids as a JSON array), `drill_plans` (plan ids), `drill_invoices`
//! (shop ids, `$3` = grace in seconds), `drill_payments` (invoice ids). Keys travel as one
//! JSON array parameter, so a batch of any size is one statement with three or four
//! parameters. Results are grouped by key and sorted in Rust (byte order of ids).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::Value;

use super::{SaasConfig, get_int, get_money, get_text, get_time, query};
use crate::engine::Raw;
use crate::engine::Session;
use crate::error::{ApiError, Error};
use crate::sql::Dialect;
use crate::sql::Sql;

/// A shop of a user as of T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shop {
    /// The shop.
    pub shop_id: String,
    /// Its owner (the user of its earliest counting creation event).
    pub owner_user_id: String,
    /// `event_time` of that creation.
    pub created_at: DateTime<Utc>,
    /// A `user_shop_delete` of the shop counts at T.
    pub deleted: bool,
    /// The plan of the creation event's metadata.
    pub plan_id: Option<String>,
}

/// A plan as of T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The plan.
    pub plan_id: String,
    /// Its invoice amount from the latest partition `ts <= T` (2-place decimal string).
    pub invoice_amount: Option<String>,
}

/// An invoice of a shop as of T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// The invoice.
    pub invoice_id: String,
    /// Its shop.
    pub shop_id: String,
    /// When it was issued.
    pub invoice_timestamp: DateTime<Utc>,
    /// Its amount (2-place decimal string).
    pub invoice_amount: Option<String>,
    /// Its daily partition (`YYYY-MM-DD`, the latest counting one).
    pub ds: String,
    /// Delinquent at T: `invoice_timestamp + grace <= T` and no counting payment.
    pub delinquent: bool,
}

/// A payment of an invoice as of T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The payment.
    pub payment_id: String,
    /// The invoice it pays.
    pub invoice_id: String,
    /// Its daily partition (`YYYY-MM-DD`): it counts from 00:00 UTC of that day.
    pub ds: String,
}

/// The SQL file of a drill-down query for `dialect`.
fn file(name: &str, dialect: &dyn Dialect) -> &'static str {
    let (postgres, sqlite) = match name {
        "shops" => (
            include_str!("../../sql/saas/drill_shops.sql"),
            include_str!("../../sql/saas/drill_shops.sqlite.sql"),
        ),
        "plans" => (
            include_str!("../../sql/saas/drill_plans.sql"),
            include_str!("../../sql/saas/drill_plans.sqlite.sql"),
        ),
        "invoices" => (
            include_str!("../../sql/saas/drill_invoices.sql"),
            include_str!("../../sql/saas/drill_invoices.sqlite.sql"),
        ),
        _ => (
            include_str!("../../sql/saas/drill_payments.sql"),
            include_str!("../../sql/saas/drill_payments.sqlite.sql"),
        ),
    };
    dialect.sql_text(postgres, sqlite)
}

/// The statement of drill-down `name` for `keys`: `$1` = T, `$2` = keys (in byte order),
/// then `extra`.
fn statement(
    session: &Session,
    name: &str,
    as_of: DateTime<Utc>,
    keys: &[String],
    extra: Vec<Value>,
) -> Result<Sql, ApiError> {
    // in byte order, so that a batch is one statement (and one cached answer) whatever
    // order its keys came in
    let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    let keys = serde_json::to_string(&keys)
        .map_err(|e| Error::Database(format!("encoding saas {name} keys: {e}")))?;
    let mut values: Vec<Value> = vec![as_of.into(), keys.into()];
    values.extend(extra);
    crate::sql::file(
        &super::located(session, file(name, session.dialect())),
        values,
    )
    .map_err(|e| ApiError::internal("saas drill-down", e))
}

/// The shops of `user_ids` as of `as_of`, by owner, each list by creation time then shop id.
pub async fn shops_of_users(
    session: &Session,
    as_of: DateTime<Utc>,
    user_ids: &[String],
) -> Result<HashMap<String, Vec<Shop>>, ApiError> {
    let sql = statement(session, "shops", as_of, user_ids, Vec::new())?;
    let columns = [Raw::Text, Raw::Text, Raw::Instant, Raw::Int, Raw::Text];
    let rows = query(session, sql, "shops", as_of, &columns).await?;
    let mut out: HashMap<String, Vec<Shop>> = HashMap::new();
    for r in &rows.rows {
        let shop = Shop {
            owner_user_id: get_text(r, 0)?.unwrap_or_default(),
            shop_id: get_text(r, 1)?.unwrap_or_default(),
            created_at: get_time(r, 2)?
                .ok_or_else(|| Error::Database("drill_shops gave no created_at".to_owned()))?,
            deleted: get_int(r, 3)? != 0,
            plan_id: get_text(r, 4)?,
        };
        out.entry(shop.owner_user_id.clone())
            .or_default()
            .push(shop);
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| {
            (a.created_at, a.shop_id.as_bytes()).cmp(&(b.created_at, b.shop_id.as_bytes()))
        });
    }
    Ok(out)
}

/// The plans `plan_ids` as of `as_of` (plans without a row as of T are absent).
pub async fn plans(
    session: &Session,
    as_of: DateTime<Utc>,
    plan_ids: &[String],
) -> Result<HashMap<String, Plan>, ApiError> {
    let sql = statement(session, "plans", as_of, plan_ids, Vec::new())?;
    let rows = query(session, sql, "plans", as_of, &[Raw::Text, Raw::Money]).await?;
    let mut out = HashMap::new();
    for r in &rows.rows {
        let plan = Plan {
            plan_id: get_text(r, 0)?.unwrap_or_default(),
            invoice_amount: get_money(r, 1)?,
        };
        out.insert(plan.plan_id.clone(), plan);
    }
    Ok(out)
}

/// The invoices of `shop_ids` as of `as_of`, by shop, each list by invoice time then id.
pub async fn invoices_of_shops(
    session: &Session,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
    shop_ids: &[String],
) -> Result<HashMap<String, Vec<Invoice>>, ApiError> {
    let sql = statement(
        session,
        "invoices",
        as_of,
        shop_ids,
        vec![config.grace_seconds().into()],
    )?;
    let columns = [
        Raw::Text,
        Raw::Text,
        Raw::Instant,
        Raw::Money,
        Raw::Text,
        Raw::Int,
    ];
    let rows = query(session, sql, "invoices", as_of, &columns).await?;
    let mut out: HashMap<String, Vec<Invoice>> = HashMap::new();
    for r in &rows.rows {
        let invoice = Invoice {
            shop_id: get_text(r, 0)?.unwrap_or_default(),
            invoice_id: get_text(r, 1)?.unwrap_or_default(),
            invoice_timestamp: get_time(r, 2)?.ok_or_else(|| {
                Error::Database("drill_invoices gave no invoice_timestamp".to_owned())
            })?,
            invoice_amount: get_money(r, 3)?,
            ds: get_text(r, 4)?.unwrap_or_default(),
            delinquent: get_int(r, 5)? != 0,
        };
        out.entry(invoice.shop_id.clone())
            .or_default()
            .push(invoice);
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| {
            (a.invoice_timestamp, a.invoice_id.as_bytes())
                .cmp(&(b.invoice_timestamp, b.invoice_id.as_bytes()))
        });
    }
    Ok(out)
}

/// The payments of `invoice_ids` as of `as_of`, by invoice, each list by ds then id.
pub async fn payments_of_invoices(
    session: &Session,
    as_of: DateTime<Utc>,
    invoice_ids: &[String],
) -> Result<HashMap<String, Vec<Payment>>, ApiError> {
    let sql = statement(session, "payments", as_of, invoice_ids, Vec::new())?;
    let columns = [Raw::Text, Raw::Text, Raw::Text];
    let rows = query(session, sql, "payments", as_of, &columns).await?;
    let mut out: HashMap<String, Vec<Payment>> = HashMap::new();
    for r in &rows.rows {
        let payment = Payment {
            invoice_id: get_text(r, 0)?.unwrap_or_default(),
            payment_id: get_text(r, 1)?.unwrap_or_default(),
            ds: get_text(r, 2)?.unwrap_or_default(),
        };
        out.entry(payment.invoice_id.clone())
            .or_default()
            .push(payment);
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| {
            (a.ds.as_str(), a.payment_id.as_bytes()).cmp(&(b.ds.as_str(), b.payment_id.as_bytes()))
        });
    }
    Ok(out)
}
