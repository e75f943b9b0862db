//! The `web` model: the dbt "greenery" plant shop — addresses, users, products, promos,
//! orders with items, and session events.
//!
//! A session is a run of `page_view`s of product pages (popular plants more often), some
//! `add_to_cart`s, and for about 15% of sessions a `checkout` that places an order of the cart
//! (a promo on some), followed, as in greenery's event log, by a `package_shipped` event in the
//! same session once the order has shipped. Orders are `preparing` in their first day,
//! `shipped` until delivered, then `delivered` (status as of the end of the calendar).

use super::cal::{self, DAY, END, HOUR, MINUTE, START};
use super::rng::{Rng, uuid as uuid_of};
use super::{DemoOptions, Record, TableSource, count, opt, per_entity, rec, table};

const MODEL: &str = "web";
const SITE: &str = "https://greenery.example";

/// (name, price in cents).
const PRODUCTS: &[(&str, i64)] = &[
    ("Monstera", 5_150),
    ("Pothos", 3_025),
    ("Snake Plant", 3_370),
    ("ZZ Plant", 3_425),
    ("Fiddle Leaf Fig", 8_900),
    ("String of pearls", 2_355),
    ("Calathea Makoyana", 2_750),
    ("Peace Lily", 1_690),
    ("Spider Plant", 1_275),
    ("Aloe Vera", 1_025),
    ("Bird of Paradise", 6_075),
    ("Rubber Plant", 3_850),
    ("Pilea Peperomioides", 1_520),
    ("Philodendron", 2_690),
    ("Boston Fern", 1_975),
    ("Majesty Palm", 4_800),
    ("Jade Plant", 1_140),
    ("Ponytail Palm", 3_180),
    ("Alocasia Polly", 2_260),
    ("Birds Nest Fern", 2_120),
    ("Cactus", 1_015),
    ("Orchid", 3_220),
    ("Arrow Head", 1_890),
    ("Angel Wings Begonia", 2_470),
    ("Devil's Ivy", 1_350),
    ("Dragon Tree", 4_120),
    ("Ficus", 2_975),
    ("Money Tree", 5_480),
    ("Bamboo", 1_560),
    ("Echeveria", 990),
];

/// (id, discount in whole dollars, status).
const PROMOS: &[(&str, i64, &str)] = &[
    ("task-force", 10, "inactive"),
    ("instruction-set", 5, "active"),
    ("leadership", 15, "inactive"),
    ("digitized", 12, "active"),
    ("mandatory", 8, "active"),
    ("optional", 3, "inactive"),
    ("spring-sale", 20, "active"),
];

/// (city, state, zip prefix) for addresses.
const PLACES: &[(&str, &str, &str)] = &[
    ("Sacramento", "California", "958"),
    ("San Diego", "California", "921"),
    ("Austin", "Texas", "787"),
    ("Houston", "Texas", "770"),
    ("Brooklyn", "New York", "112"),
    ("Buffalo", "New York", "142"),
    ("Miami", "Florida", "331"),
    ("Orlando", "Florida", "328"),
    ("Seattle", "Washington", "981"),
    ("Portland", "Oregon", "972"),
    ("Denver", "Colorado", "802"),
    ("Chicago", "Illinois", "606"),
    ("Atlanta", "Georgia", "303"),
    ("Boston", "Massachusetts", "021"),
    ("Phoenix", "Arizona", "850"),
    ("Nashville", "Tennessee", "372"),
];

const SERVICES: &[&str] = &["ups", "fedex", "usps", "dhl"];

fn product_id(seed: u64, p: usize) -> String {
    uuid_of(Rng::entity(seed, MODEL, "product", p as u64).uuid_bits())
}

struct Address {
    id: (u64, u64),
    street: String,
    zipcode: String,
    state: &'static str,
}

struct Order {
    id: (u64, u64),
    address: usize,
    promo: Option<usize>,
    created: i64,
    items: Vec<(usize, i64)>,
    cost: i64,
    shipping: i64,
    total: i64,
    tracking: Option<(u64, u64)>,
    service: Option<&'static str>,
    estimated: Option<i64>,
    delivered: Option<i64>,
    status: &'static str,
}

struct Event {
    id: (u64, u64),
    session: (u64, u64),
    time: i64,
    kind: &'static str,
    order: Option<usize>,
    product: Option<usize>,
}

struct User {
    id: (u64, u64),
    first: &'static str,
    last: &'static str,
    email: String,
    phone: Option<String>,
    created: i64,
    updated: Option<i64>,
    addresses: Vec<Address>,
    orders: Vec<Order>,
    events: Vec<Event>,
}

fn address(rng: &mut Rng) -> Address {
    let (_, state, zip) = *rng.pick(PLACES);
    Address {
        id: rng.uuid_bits(),
        street: format!(
            "{} {} {}",
            rng.range(1, 9_999),
            rng.pick(super::names::STREETS),
            rng.pick(super::names::STREET_KINDS)
        ),
        zipcode: format!("{zip}{:02}", rng.range(0, 99)),
        state,
    }
}

fn user(seed: u64, i: u64, n: u64) -> User {
    let mut rng = Rng::entity(seed, MODEL, "user", i);
    let created = cal::ordered_time(i, n, rng.f64(), START, END - DAY);
    let (first, last) = super::names::person(&mut rng);
    let email = super::names::email(first, last, i + 1, &mut rng);
    let phone = rng.chance(0.9).then(|| super::names::phone(&mut rng));
    let updated = rng
        .chance(0.7)
        .then(|| created + HOUR + rng.exp_secs(60.0 * DAY as f64))
        .filter(|t| *t <= END);
    let mut u = User {
        id: rng.uuid_bits(),
        first,
        last,
        email,
        phone,
        created,
        updated,
        addresses: vec![address(&mut rng)],
        orders: Vec::new(),
        events: Vec::new(),
    };
    if rng.chance(0.08) {
        u.addresses.push(address(&mut rng));
    }

    let mut start = if rng.chance(0.6) {
        created + rng.range(0, 30 * MINUTE)
    } else {
        created + rng.exp_secs(3.0 * DAY as f64)
    };
    while start < END - HOUR {
        let session = rng.uuid_bits();
        let mut t = start;
        let mut cart: Vec<usize> = Vec::new();
        for _ in 0..rng.weighted(&[0.25, 0.3, 0.2, 0.12, 0.08, 0.05]) + 1 {
            let x = rng.f64();
            let p = ((PRODUCTS.len() as f64 * x * x) as usize).min(PRODUCTS.len() - 1);
            u.events.push(Event {
                id: rng.uuid_bits(),
                session,
                time: t,
                kind: "page_view",
                order: None,
                product: Some(p),
            });
            t += 20 + rng.exp_secs(60.0);
            if rng.chance(0.16) && !cart.contains(&p) {
                u.events.push(Event {
                    id: rng.uuid_bits(),
                    session,
                    time: t,
                    kind: "add_to_cart",
                    order: None,
                    product: Some(p),
                });
                cart.push(p);
                t += 10 + rng.exp_secs(30.0);
            }
        }
        if !cart.is_empty() && rng.chance(0.5) && t <= END {
            let items: Vec<(usize, i64)> = cart
                .iter()
                .map(|p| (*p, rng.weighted(&[0.7, 0.2, 0.1]) as i64 + 1))
                .collect();
            let cost: i64 = items.iter().map(|(p, q)| PRODUCTS[*p].1 * q).sum();
            let shipping = if cost >= 5_000 {
                0
            } else {
                rng.range(5, 9) * 100
            };
            let promo = rng
                .chance(0.1)
                .then(|| rng.below(PROMOS.len() as u64) as usize);
            let discount = promo.map_or(0, |p| (PROMOS[p].1 * 100).min(cost));
            let ship_at = t + DAY + rng.range(0, DAY);
            let (tracking, service, estimated, delivered, status) = if ship_at > END {
                (None, None, None, None, "preparing")
            } else {
                let est = ship_at + rng.range(3, 7) * DAY;
                let del = ship_at + rng.range(2, 9) * DAY + rng.range(0, 8 * HOUR);
                let service = Some(*rng.pick(SERVICES));
                let tracking = Some(rng.uuid_bits());
                if del <= END {
                    (tracking, service, Some(est), Some(del), "delivered")
                } else {
                    (tracking, service, Some(est), None, "shipped")
                }
            };
            let address = if u.addresses.len() > 1 && rng.chance(0.5) {
                1
            } else {
                0
            };
            let k = u.orders.len();
            u.orders.push(Order {
                id: rng.uuid_bits(),
                address,
                promo,
                created: t,
                items,
                cost,
                shipping,
                total: cost + shipping - discount,
                tracking,
                service,
                estimated,
                delivered,
                status,
            });
            u.events.push(Event {
                id: rng.uuid_bits(),
                session,
                time: t,
                kind: "checkout",
                order: Some(k),
                product: None,
            });
            if status != "preparing" {
                let ts = (t + rng.range(MINUTE, 10 * MINUTE)).min(END);
                u.events.push(Event {
                    id: rng.uuid_bits(),
                    session,
                    time: ts,
                    kind: "package_shipped",
                    order: Some(k),
                    product: None,
                });
            }
        }
        if !rng.chance(0.6) {
            break;
        }
        start = t + 2 * HOUR + rng.exp_secs(40.0 * DAY as f64);
    }
    u
}

/// The `web` tables.
pub(super) fn sources(opts: &DemoOptions) -> Vec<TableSource> {
    let seed = opts.seed;
    let n = count(10_000.0, opts.scale, 1);
    let products: Vec<Record> = PRODUCTS
        .iter()
        .enumerate()
        .map(|(p, (name, price))| {
            let inventory = Rng::entity(seed, MODEL, "inventory", p as u64).range(0, 90);
            rec![product_id(seed, p), name, cal::money(*price), inventory]
        })
        .collect();
    let promos: Vec<Record> = PROMOS
        .iter()
        .map(|(id, discount, status)| rec![id, discount, status])
        .collect();
    let product_ids: Vec<String> = (0..PRODUCTS.len()).map(|p| product_id(seed, p)).collect();
    let product_ids = std::sync::Arc::new(product_ids);
    let (p1, p2) = (product_ids.clone(), product_ids);
    vec![
        table(
            MODEL,
            "addresses",
            &["address_id", "address", "zipcode", "state", "country"],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                for a in &u.addresses {
                    out.push(rec![
                        uuid_of(a.id),
                        a.street,
                        a.zipcode,
                        a.state,
                        "United States"
                    ]);
                }
            }),
        ),
        table(
            MODEL,
            "users",
            &[
                "user_id",
                "first_name",
                "last_name",
                "email",
                "phone_number",
                "created_at",
                "updated_at",
                "address_id",
            ],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                out.push(rec![
                    uuid_of(u.id),
                    u.first,
                    u.last,
                    u.email,
                    opt(u.phone.as_ref()),
                    cal::ts(u.created),
                    opt(u.updated.map(cal::ts)),
                    uuid_of(u.addresses[0].id)
                ]);
            }),
        ),
        table(
            MODEL,
            "products",
            &["product_id", "name", "price", "inventory"],
            products.into_iter(),
        ),
        table(
            MODEL,
            "promos",
            &["promo_id", "discount", "status"],
            promos.into_iter(),
        ),
        table(
            MODEL,
            "orders",
            &[
                "order_id",
                "user_id",
                "promo_id",
                "address_id",
                "created_at",
                "order_cost",
                "shipping_cost",
                "order_total",
                "tracking_id",
                "shipping_service",
                "estimated_delivery_at",
                "delivered_at",
                "status",
            ],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                for o in &u.orders {
                    out.push(rec![
                        uuid_of(o.id),
                        uuid_of(u.id),
                        opt(o.promo.map(|p| PROMOS[p].0)),
                        uuid_of(u.addresses[o.address].id),
                        cal::ts(o.created),
                        cal::money(o.cost),
                        cal::money(o.shipping),
                        cal::money(o.total),
                        opt(o.tracking.map(uuid_of)),
                        opt(o.service),
                        opt(o.estimated.map(cal::ts)),
                        opt(o.delivered.map(cal::ts)),
                        o.status
                    ]);
                }
            }),
        ),
        table(
            MODEL,
            "order_items",
            &["order_id", "product_id", "quantity"],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                for o in &u.orders {
                    for (p, q) in &o.items {
                        out.push(rec![uuid_of(o.id), p1[*p], q]);
                    }
                }
            }),
        ),
        table(
            MODEL,
            "events",
            &[
                "event_id",
                "session_id",
                "user_id",
                "page_url",
                "created_at",
                "event_type",
                "order_id",
                "product_id",
            ],
            per_entity(n, move |i, out| {
                let u = user(seed, i, n);
                for e in &u.events {
                    let order = e.order.map(|k| uuid_of(u.orders[k].id));
                    let product = e.product.map(|p| p2[p].clone());
                    let url = match (e.kind, &order, &product) {
                        ("checkout", _, _) => format!("{SITE}/checkout"),
                        (_, Some(o), _) => format!("{SITE}/orders/{o}"),
                        (_, _, Some(p)) => format!("{SITE}/product/{p}"),
                        _ => SITE.to_owned(),
                    };
                    out.push(rec![
                        uuid_of(e.id),
                        uuid_of(e.session),
                        uuid_of(u.id),
                        url,
                        cal::ts(e.time),
                        e.kind,
                        opt(order),
                        opt(product)
                    ]);
                }
            }),
        ),
    ]
}
