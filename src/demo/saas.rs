//! The `saas` model: signups, shops on plans, monthly invoices and their payments.
//!
//! A user's story: the account is created (an event with the email); about 55% create 1–3
//! shops on one of four plans; every live shop is invoiced every 30 days; payers are prompt
//! (most), late (some pay after the 30-day grace and so are delinquent for a while, then
//! resurrected), flaky (stop paying at some point, some come back) or never pay. Shops and
//! accounts are sometimes deleted (some accounts before any shop). About 2% of events arrive
//! late (their `ts` partition hours or days after `event_time`); `users` and `shops` rows sit
//! in the partition of their creation hour and a few are re-stated in a later partition.

use super::cal::{self, DAY, END, HOUR, MINUTE, START};
use super::rng::{Rng, uuid as uuid_of};
use super::{DemoOptions, Record, TableSource, count, json_object, per_entity, rec, table};

const MODEL: &str = "saas";

/// The plans: id, amount in cents before and after the price change.
const PLANS: &[(&str, i64, i64)] = &[
    ("plan_starter", 900, 1200),
    ("plan_basic", 2900, 2900),
    ("plan_pro", 7900, 8900),
    ("plan_enterprise", 29900, 29900),
];
/// How often each plan is chosen.
const PLAN_WEIGHTS: &[f64] = &[0.35, 0.35, 0.22, 0.08];
/// When the new prices apply (and the `plans` partition that states them): 2025-01-01.
const PRICE_CHANGE: i64 = 1_735_689_600;

/// Days between invoices of a shop.
const CYCLE: i64 = 30 * DAY;

#[derive(Clone, Copy, PartialEq)]
enum Payer {
    Prompt,
    Late,
    Flaky,
    Never,
}

#[derive(Clone, Copy)]
enum Kind {
    AccountCreation,
    AccountDeletion,
    ShopCreate(usize),
    ShopDelete(usize),
}

struct Event {
    time: i64,
    ts: i64,
    id: (u64, u64),
    kind: Kind,
}

struct Shop {
    created: i64,
    plan: usize,
    deleted: Option<i64>,
    restated: Option<i64>,
}

struct Invoice {
    id: (u64, u64),
    shop: usize,
    time: i64,
    ds: i64,
    amount: i64,
    payments: Vec<((u64, u64), i64)>,
}

struct User {
    index: u64,
    created: i64,
    email: String,
    restated: Option<i64>,
    shops: Vec<Shop>,
    events: Vec<Event>,
    invoices: Vec<Invoice>,
}

impl User {
    fn id(&self) -> String {
        user_id(self.index)
    }
    fn shop_id(&self, k: usize) -> String {
        format!("shp_{:07}_{}", self.index + 1, k + 1)
    }
}

fn user_id(i: u64) -> String {
    format!("usr_{:07}", i + 1)
}

/// The amount of a plan's invoice at time `t`.
fn price(plan: usize, t: i64) -> i64 {
    let (_, before, after) = PLANS[plan];
    if t >= PRICE_CHANGE { after } else { before }
}

/// The `ts` partition of an event: its hour, or (2%) an hour to ten days later.
fn partition(rng: &mut Rng, t: i64) -> i64 {
    let hour = cal::hour_start(t);
    let late = if rng.chance(0.02) {
        if rng.chance(0.75) {
            rng.range(1, 12) * HOUR
        } else {
            rng.range(1, 10) * DAY + rng.range(0, 23) * HOUR
        }
    } else {
        0
    };
    (hour + late).min(cal::hour_start(END))
}

/// A user's whole story, a function of (seed, index) only.
fn user(seed: u64, i: u64, n: u64) -> User {
    let mut rng = Rng::entity(seed, MODEL, "user", i);
    let created = cal::ordered_time(i, n, rng.f64(), START, END - 2 * HOUR);
    let (first, last) = super::names::person(&mut rng);
    let email = super::names::email(first, last, i + 1, &mut rng);
    let restated = if rng.chance(0.06) {
        let t = cal::hour_start(created) + rng.range(1, 24 * 60) * HOUR;
        (t <= END).then_some(t)
    } else {
        None
    };
    let mut events = vec![Event {
        time: created,
        ts: partition(&mut rng, created),
        id: rng.uuid_bits(),
        kind: Kind::AccountCreation,
    }];
    let mut u = User {
        index: i,
        created,
        email,
        restated,
        shops: Vec::new(),
        events: Vec::new(),
        invoices: Vec::new(),
    };

    let makes_shops = rng.chance(0.55);
    let payer = match rng.weighted(&[0.55, 0.12, 0.2, 0.13]) {
        0 => Payer::Prompt,
        1 => Payer::Late,
        2 => Payer::Flaky,
        _ => Payer::Never,
    };
    let mut account_deleted: Option<i64> = None;
    if !makes_shops {
        if rng.chance(0.08) {
            let t = created + 10 * MINUTE + rng.exp_secs(20.0 * DAY as f64);
            account_deleted = (t <= END).then_some(t);
        }
    } else {
        let n_shops = rng.weighted(&[0.72, 0.2, 0.08]) + 1;
        let mut t = created + 5 * MINUTE + rng.exp_secs(4.0 * DAY as f64);
        for _ in 0..n_shops {
            if t > END - HOUR {
                break;
            }
            let plan = rng.weighted(PLAN_WEIGHTS);
            let deleted = if rng.chance(0.18) {
                let d = t + DAY + rng.exp_secs(150.0 * DAY as f64);
                (d <= END).then_some(d)
            } else {
                None
            };
            let restated = if rng.chance(0.05) {
                let r = cal::hour_start(t) + rng.range(1, 24 * 45) * HOUR;
                (r <= END).then_some(r)
            } else {
                None
            };
            u.shops.push(Shop {
                created: t,
                plan,
                deleted,
                restated,
            });
            t += HOUR + rng.exp_secs(45.0 * DAY as f64);
        }
        if !u.shops.is_empty() && rng.chance(0.06) {
            let last_shop = u.shops.iter().map(|s| s.created).max().unwrap_or(created);
            let d = last_shop + DAY + rng.exp_secs(120.0 * DAY as f64);
            account_deleted = (d <= END).then_some(d);
        }
    }
    // A shop deleted after the account is not deleted on its own.
    if let Some(a) = account_deleted {
        for s in &mut u.shops {
            if s.deleted.is_some_and(|d| d >= a) {
                s.deleted = None;
            }
        }
        u.shops.retain(|s| s.created < a);
    }

    // When the user stops paying (flaky and never payers), and whether and when they come
    // back to pay everything owed.
    let first_shop = u.shops.first().map(|s| s.created).unwrap_or(created);
    let stop = match payer {
        Payer::Flaky => Some(first_shop + DAY + rng.exp_secs(75.0 * DAY as f64)),
        Payer::Never => Some(first_shop),
        _ => None,
    };
    let comeback_p = if payer == Payer::Flaky { 0.35 } else { 0.15 };
    let comeback = stop.and_then(|s| {
        rng.chance(comeback_p)
            .then(|| s + 35 * DAY + rng.exp_secs(60.0 * DAY as f64))
    });

    // Invoices, shop by shop on its 30-day cycle.
    for (k, shop) in u.shops.iter().enumerate() {
        let end = [shop.deleted, account_deleted, Some(END)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(END);
        let mut unpaid_in_stop = 0;
        let mut cycle = 0i64;
        loop {
            let t = shop.created + HOUR + cycle * CYCLE + rng.range(0, 600);
            cycle += 1;
            if t >= end {
                break;
            }
            let in_stop = stop.is_some_and(|s| t >= s) && comeback.is_none_or(|c| t < c);
            if in_stop && unpaid_in_stop >= 6 {
                // Suspended until the comeback (if any): no invoice this cycle.
                continue;
            }
            let ds = (t.div_euclid(DAY) + i64::from(rng.chance(0.03))).min(END.div_euclid(DAY));
            let mut inv = Invoice {
                id: rng.uuid_bits(),
                shop: k,
                time: t,
                ds,
                amount: price(shop.plan, t),
                payments: Vec::new(),
            };
            let paid_at = if in_stop {
                unpaid_in_stop += 1;
                comeback.map(|c| c + rng.range(0, 2 * HOUR))
            } else {
                match payer {
                    Payer::Late => Some(t + 3 * DAY + rng.exp_secs(20.0 * DAY as f64)),
                    // A missed invoice: usually paid much later, sometimes never.
                    _ if rng.chance(0.02) => rng
                        .chance(0.7)
                        .then(|| t + 40 * DAY + rng.exp_secs(30.0 * DAY as f64)),
                    _ => Some(t + MINUTE + rng.exp_secs(1.5 * DAY as f64)),
                }
            };
            if let Some(p) = paid_at.filter(|p| *p <= END) {
                let day = p.div_euclid(DAY).max(ds);
                inv.payments.push((rng.uuid_bits(), day));
                if rng.chance(0.01) {
                    // A duplicate payment (a retried charge) the same or the next day.
                    let d2 = (day + rng.range(0, 1)).min(END.div_euclid(DAY));
                    inv.payments.push((rng.uuid_bits(), d2));
                }
            }
            u.invoices.push(inv);
        }
    }

    // Events: shop creations and deletions, the account deletion.
    for (k, shop) in u.shops.iter().enumerate() {
        events.push(Event {
            time: shop.created,
            ts: partition(&mut rng, shop.created),
            id: rng.uuid_bits(),
            kind: Kind::ShopCreate(k),
        });
        if let Some(d) = shop.deleted {
            events.push(Event {
                time: d,
                ts: partition(&mut rng, d),
                id: rng.uuid_bits(),
                kind: Kind::ShopDelete(k),
            });
        }
    }
    if let Some(a) = account_deleted {
        events.push(Event {
            time: a,
            ts: partition(&mut rng, a),
            id: rng.uuid_bits(),
            kind: Kind::AccountDeletion,
        });
    }
    events.sort_by_key(|e| e.time);
    u.events = events;
    u
}

/// The `saas` tables.
pub(super) fn sources(opts: &DemoOptions) -> Vec<TableSource> {
    let seed = opts.seed;
    let n = count(10_000.0, opts.scale, 1);

    let plans = {
        let mut rows: Vec<Record> = Vec::new();
        for (id, before, _) in PLANS {
            rows.push(rec![cal::hour_partition(START), id, cal::money(*before)]);
        }
        for (id, _, after) in PLANS {
            rows.push(rec![
                cal::hour_partition(PRICE_CHANGE),
                id,
                cal::money(*after)
            ]);
        }
        rows
    };

    vec![
        table(
            MODEL,
            "plans",
            &["ts", "plan_id", "invoice_amount"],
            plans.into_iter(),
        ),
        table(
            MODEL,
            "users",
            &["ts", "user_id", "creation_timestamp"],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                let created = cal::ts(u.created);
                out.push(rec![cal::hour_partition(u.created), u.id(), created]);
                if let Some(r) = u.restated {
                    out.push(rec![cal::hour_partition(r), u.id(), created]);
                }
            }),
        ),
        table(
            MODEL,
            "shops",
            &["ts", "shop_id", "creation_timestamp", "owner_user_id"],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                for (k, s) in u.shops.iter().enumerate() {
                    let created = cal::ts(s.created);
                    out.push(rec![
                        cal::hour_partition(s.created),
                        u.shop_id(k),
                        created,
                        u.id()
                    ]);
                    if let Some(r) = s.restated {
                        out.push(rec![cal::hour_partition(r), u.shop_id(k), created, u.id()]);
                    }
                }
            }),
        ),
        table(
            MODEL,
            "global_events",
            &["ts", "event_id", "event_time", "event_type", "metadata"],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                let uid = u.id();
                for e in &u.events {
                    let (kind, meta) = match e.kind {
                        Kind::AccountCreation => (
                            "user_account_creation",
                            json_object(&[("user_id", &uid), ("email", &u.email)]),
                        ),
                        Kind::AccountDeletion => {
                            ("user_delete_account", json_object(&[("user_id", &uid)]))
                        }
                        Kind::ShopCreate(k) => (
                            "user_shop_create",
                            json_object(&[
                                ("user_id", &uid),
                                ("shop_id", &u.shop_id(k)),
                                ("plan_id", PLANS[u.shops[k].plan].0),
                            ]),
                        ),
                        Kind::ShopDelete(k) => (
                            "user_shop_delete",
                            json_object(&[("user_id", &uid), ("shop_id", &u.shop_id(k))]),
                        ),
                    };
                    out.push(rec![
                        cal::hour_partition(e.ts),
                        uuid_of(e.id),
                        cal::ts(e.time),
                        kind,
                        meta
                    ]);
                }
            }),
        ),
        table(
            MODEL,
            "invoices",
            &[
                "ds",
                "invoice_id",
                "user_id",
                "shop_id",
                "invoice_timestamp",
                "invoice_amount",
            ],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                for inv in &u.invoices {
                    out.push(rec![
                        cal::date(inv.ds * DAY),
                        uuid_of(inv.id),
                        u.id(),
                        u.shop_id(inv.shop),
                        cal::ts(inv.time),
                        cal::money(inv.amount)
                    ]);
                }
            }),
        ),
        table(
            MODEL,
            "payments",
            &["ds", "payment_id", "invoice_id", "user_id"],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                for inv in &u.invoices {
                    for (pid, day) in &inv.payments {
                        out.push(rec![
                            cal::date(day * DAY),
                            uuid_of(*pid),
                            uuid_of(inv.id),
                            u.id()
                        ]);
                    }
                }
            }),
        ),
    ]
}
