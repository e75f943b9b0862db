//! The `shop` model: a category tree, type-2 products and customers, campaigns, orders of 1–5
//! lines in six stores (one online), and inventory.
//!
//! Products change price now and then (a new version with a new `updated_at`; `is_current`
//! only on the last); customers sometimes move city (a new version). Orders carry discounts
//! (larger under a campaign), tax by store and shipping online. Inventory is tracked for the
//! most popular products in every store: a `sale` event per order line, `return`s, `restock`s
//! when stock runs low and occasional `adjustment`s; daily snapshots (end of day on hand) are
//! kept for the five most popular products of each store, consistent with the events.

use std::sync::Arc;

use super::cal::{self, DAY, DAYS, END, HOUR, MINUTE, START};
use super::rng::Rng;
use super::{
    DemoOptions, Record, TableSource, boolean, count, deferred, opt, per_entity, rec, table,
};

const MODEL: &str = "shop";

/// (id, name, parent index).
const CATEGORIES: &[(&str, &str, Option<usize>)] = &[
    ("cat_01", "Apparel", None),
    ("cat_02", "Men's Clothing", Some(0)),
    ("cat_03", "Women's Clothing", Some(0)),
    ("cat_04", "Shoes", Some(0)),
    ("cat_05", "Running Shoes", Some(3)),
    ("cat_06", "Accessories", Some(0)),
    ("cat_07", "Electronics", None),
    ("cat_08", "Phones", Some(6)),
    ("cat_09", "Laptops", Some(6)),
    ("cat_10", "Audio", Some(6)),
    ("cat_11", "Headphones", Some(9)),
    ("cat_12", "Cameras", Some(6)),
    ("cat_13", "Home & Kitchen", None),
    ("cat_14", "Cookware", Some(12)),
    ("cat_15", "Furniture", Some(12)),
    ("cat_16", "Bedding", Some(12)),
    ("cat_17", "Beauty", None),
    ("cat_18", "Skincare", Some(16)),
    ("cat_19", "Makeup", Some(16)),
    ("cat_20", "Sports & Outdoors", None),
    ("cat_21", "Fitness", Some(19)),
    ("cat_22", "Camping", Some(19)),
    ("cat_23", "Cycling", Some(19)),
    ("cat_24", "Books", None),
    ("cat_25", "Fiction", Some(23)),
    ("cat_26", "Non-fiction", Some(23)),
];

/// Categories products are filed under: (category index, price range in whole units,
/// brands, nouns).
type Leaf = (
    usize,
    i64,
    i64,
    &'static [&'static str],
    &'static [&'static str],
);
const LEAVES: &[Leaf] = &[
    (
        1,
        15,
        90,
        &["Northwind", "Urban Thread"],
        &["T-Shirt", "Oxford Shirt", "Chinos", "Hoodie", "Jacket"],
    ),
    (
        2,
        15,
        120,
        &["Lumen", "Urban Thread"],
        &["Dress", "Blouse", "Jeans", "Cardigan", "Skirt"],
    ),
    (
        3,
        40,
        160,
        &["Stride", "Northwind"],
        &["Sneakers", "Boots", "Loafers", "Sandals"],
    ),
    (
        4,
        60,
        180,
        &["Stride", "Pacer"],
        &["Road Runner", "Trail Runner", "Racing Flat"],
    ),
    (
        5,
        10,
        80,
        &["Lumen", "Carry Co"],
        &["Backpack", "Belt", "Wallet", "Scarf", "Cap"],
    ),
    (
        7,
        250,
        1200,
        &["Voltix", "Orbit"],
        &["Smartphone", "Phone Mini", "Phone Max"],
    ),
    (
        8,
        500,
        2400,
        &["Orbit", "Keystone"],
        &["Ultrabook", "Laptop 14", "Laptop 16"],
    ),
    (
        9,
        30,
        400,
        &["Sonora", "Voltix"],
        &["Speaker", "Soundbar", "Turntable"],
    ),
    (
        10,
        25,
        350,
        &["Sonora", "Pulse"],
        &["Earbuds", "Headphones", "Studio Monitor Headset"],
    ),
    (
        11,
        200,
        1800,
        &["Aperture", "Orbit"],
        &["Mirrorless Camera", "Action Camera", "Lens 50mm"],
    ),
    (
        13,
        20,
        250,
        &["Copperleaf", "Hearth"],
        &["Skillet", "Dutch Oven", "Knife Set", "Saucepan"],
    ),
    (
        14,
        80,
        1200,
        &["Oakline", "Hearth"],
        &["Desk", "Bookshelf", "Armchair", "Side Table"],
    ),
    (
        15,
        25,
        200,
        &["Cloudrest", "Hearth"],
        &["Duvet", "Pillow Set", "Sheet Set", "Throw"],
    ),
    (
        17,
        8,
        90,
        &["Glow Lab", "Petal"],
        &["Moisturiser", "Serum", "Cleanser", "Sunscreen"],
    ),
    (
        18,
        6,
        60,
        &["Petal", "Glow Lab"],
        &["Lipstick", "Mascara", "Foundation", "Palette"],
    ),
    (
        20,
        10,
        600,
        &["Ironside", "Pacer"],
        &["Dumbbells", "Yoga Mat", "Kettlebell", "Rowing Machine"],
    ),
    (
        21,
        20,
        500,
        &["Trailhead", "Summit"],
        &["Tent", "Sleeping Bag", "Camp Stove", "Headlamp"],
    ),
    (
        22,
        20,
        1500,
        &["Velo", "Summit"],
        &["Helmet", "Bike Light", "Road Bike", "Bike Lock"],
    ),
    (
        24,
        8,
        30,
        &["Inkwell Press", "Paperback House"],
        &["Novel", "Mystery", "Fantasy Saga"],
    ),
    (
        25,
        10,
        45,
        &["Inkwell Press", "Paperback House"],
        &["Cookbook", "Biography", "History", "Guide"],
    ),
];
const ADJECTIVES: &[&str] = &[
    "Classic",
    "Essential",
    "Pro",
    "Ultra",
    "Everyday",
    "Premium",
    "Compact",
    "Deluxe",
    "Eco",
    "Vintage",
    "Lite",
    "Max",
];

/// (id, campaign_name, start (y, m, d), end, percent off, description).
type Campaign = (
    &'static str,
    &'static str,
    (i64, u32, u32),
    Option<(i64, u32, u32)>,
    i64,
    Option<&'static str>,
);
const CAMPAIGNS: &[Campaign] = &[
    (
        "cmp_01",
        "New Year Sale 2024",
        (2024, 1, 1),
        Some((2024, 1, 15)),
        20,
        Some("Storewide new year markdowns"),
    ),
    (
        "cmp_02",
        "Valentine's Gifts",
        (2024, 2, 1),
        Some((2024, 2, 15)),
        10,
        None,
    ),
    (
        "cmp_03",
        "Spring Refresh 2024",
        (2024, 3, 15),
        Some((2024, 4, 15)),
        15,
        Some("Home and apparel refresh"),
    ),
    (
        "cmp_04",
        "Loyalty Program",
        (2024, 5, 1),
        None,
        5,
        Some("Always-on member discount"),
    ),
    (
        "cmp_05",
        "Summer Sale 2024",
        (2024, 6, 15),
        Some((2024, 7, 31)),
        20,
        Some("Mid-year clearance"),
    ),
    (
        "cmp_06",
        "Back to School 2024",
        (2024, 8, 10),
        Some((2024, 9, 10)),
        10,
        None,
    ),
    (
        "cmp_07",
        "Black Friday 2024",
        (2024, 11, 25),
        Some((2024, 12, 2)),
        25,
        Some("Biggest deals of the year"),
    ),
    (
        "cmp_08",
        "Holiday Gifts 2024",
        (2024, 12, 3),
        Some((2024, 12, 24)),
        15,
        None,
    ),
    (
        "cmp_09",
        "New Year Sale 2025",
        (2025, 1, 1),
        Some((2025, 1, 15)),
        20,
        Some("Storewide new year markdowns"),
    ),
    (
        "cmp_10",
        "Referral Bonus",
        (2025, 2, 1),
        None,
        10,
        Some("Friends of customers save on the first order"),
    ),
    (
        "cmp_11",
        "Spring Refresh 2025",
        (2025, 3, 15),
        Some((2025, 4, 15)),
        15,
        None,
    ),
    (
        "cmp_12",
        "Summer Sale 2025",
        (2025, 6, 15),
        Some((2025, 7, 31)),
        20,
        Some("Mid-year clearance"),
    ),
    (
        "cmp_13",
        "Back to School 2025",
        (2025, 8, 10),
        Some((2025, 9, 10)),
        10,
        None,
    ),
    (
        "cmp_14",
        "Black Friday 2025",
        (2025, 11, 24),
        Some((2025, 12, 1)),
        25,
        Some("Biggest deals of the year"),
    ),
    (
        "cmp_15",
        "Holiday Gifts 2025",
        (2025, 12, 2),
        Some((2025, 12, 24)),
        15,
        None,
    ),
];

/// (store id, tax rate in basis points).
const STORES: &[(&str, i64)] = &[
    ("store_nyc", 888),
    ("store_chi", 1025),
    ("store_sea", 1010),
    ("store_lon", 2000),
    ("store_tor", 1300),
    ("online", 700),
];
const ONLINE: usize = 5;

/// The physical store nearest to a city of [`super::names::CITIES`].
fn store_of_city(city: usize) -> usize {
    match super::names::CITIES[city].0 {
        "New York" | "Boston" | "Atlanta" | "Miami" => 0,
        "Chicago" | "Houston" | "Denver" | "Austin" | "Phoenix" => 1,
        "Seattle" | "Portland" | "Los Angeles" => 2,
        "London" | "Manchester" => 3,
        _ => 4,
    }
}

fn at(d: (i64, u32, u32)) -> i64 {
    cal::days_from_civil(d.0, d.1, d.2) * DAY
}

struct Product {
    title: String,
    brand: &'static str,
    category: usize,
    sku: String,
    created: i64,
    /// (updated_at, unit price in cents), oldest first.
    versions: Vec<(i64, i64)>,
}

impl Product {
    fn price_at(&self, t: i64) -> i64 {
        self.versions
            .iter()
            .take_while(|(u, _)| *u <= t)
            .last()
            .or(self.versions.first())
            .map_or(0, |v| v.1)
    }
}

fn product_id(p: usize) -> String {
    format!("prd_{:05}", p + 1)
}

fn products(seed: u64, n: usize) -> Vec<Product> {
    let launch = (n * 7).div_ceil(10).max(1);
    (0..n)
        .map(|p| {
            let mut rng = Rng::entity(seed, MODEL, "product", p as u64);
            let (category, lo, hi, brands, nouns) = *rng.pick(LEAVES);
            let brand = *rng.pick(brands);
            let title = format!("{brand} {} {}", rng.pick(ADJECTIVES), rng.pick(nouns));
            let created = if p < launch {
                START + (p as i64 % 60) * MINUTE
            } else {
                cal::ordered_time(
                    (p - launch) as u64,
                    (n - launch) as u64,
                    rng.f64(),
                    START + 30 * DAY,
                    END - 30 * DAY,
                )
            };
            let mut price = rng.range(lo, hi) * 100 - 1;
            let mut versions = vec![(created, price)];
            if rng.chance(0.35) {
                let mut t = created;
                for _ in 0..rng.range(1, 3) {
                    t += DAY + rng.exp_secs(150.0 * DAY as f64);
                    if t > END {
                        break;
                    }
                    let pct = if rng.chance(0.7) {
                        rng.range(3, 20)
                    } else {
                        -rng.range(5, 25)
                    };
                    price = ((price + 1) * (100 + pct) / 10_000).max(1) * 100 - 1;
                    versions.push((t, price));
                }
            }
            Product {
                title,
                brand,
                category,
                sku: format!(
                    "SKU-{}-{:06}",
                    CATEGORIES[category].0.trim_start_matches("cat_"),
                    p + 1
                ),
                created,
                versions,
            }
        })
        .collect()
}

/// A product for an order at `t`, popular ones (low indices) far more often, among those
/// created by then.
fn pick_product(rng: &mut Rng, products: &[Product], t: i64) -> usize {
    let n = products.len();
    let u = rng.f64();
    let p = ((n as f64 * u * u * u) as usize).min(n - 1);
    if products[p].created <= t {
        return p;
    }
    let launch = (n * 7).div_ceil(10).max(1);
    let u = rng.f64();
    let p = ((launch as f64 * u * u * u) as usize).min(launch - 1);
    if products[p].created <= t { p } else { 0 }
}

struct CustomerVersion {
    updated: i64,
    city: usize,
    phone: Option<String>,
}

struct Line {
    product: usize,
    count: i64,
    unit: i64,
    amt: i64,
    discount: i64,
    tax: i64,
    shipping: i64,
    /// When the line's items came back, if they did.
    returned: Option<i64>,
}

struct Order {
    time: i64,
    store: usize,
    campaign: Option<usize>,
    lines: Vec<Line>,
}

struct Customer {
    index: u64,
    first: &'static str,
    last: &'static str,
    email: String,
    age: Option<i64>,
    versions: Vec<CustomerVersion>,
    orders: Vec<Order>,
}

impl Customer {
    fn order_id(&self, k: usize) -> String {
        format!("ord_{:07}_{:02}", self.index + 1, k + 1)
    }
}

struct Shared {
    seed: u64,
    n_customers: u64,
    products: Vec<Product>,
    /// Products whose inventory is tracked (the most popular ones, indices below this).
    tracked: usize,
    /// Products per store with daily snapshots (indices below this).
    snapshotted: usize,
}

fn customer(sh: &Shared, i: u64) -> Customer {
    let mut rng = Rng::entity(sh.seed, MODEL, "customer", i);
    let signup = cal::ordered_time(i, sh.n_customers, rng.f64(), START + HOUR, END - DAY);
    let (first, last) = super::names::person(&mut rng);
    let email = super::names::email(first, last, i + 1, &mut rng);
    let age = rng.chance(0.85).then(|| rng.range(18, 75));
    let n_cities = super::names::CITIES.len() as u64;
    let mut city = rng.below(n_cities) as usize;
    let phone = rng.chance(0.8).then(|| super::names::phone(&mut rng));
    let mut versions = vec![CustomerVersion {
        updated: signup,
        city,
        phone: phone.clone(),
    }];
    if rng.chance(0.12) {
        let mut t = signup;
        for _ in 0..rng.weighted(&[0.8, 0.2]) + 1 {
            t += DAY + rng.exp_secs(200.0 * DAY as f64);
            if t > END {
                break;
            }
            city = (city + 1 + rng.below(n_cities - 1) as usize) % n_cities as usize;
            let phone = if rng.chance(0.3) {
                rng.chance(0.8).then(|| super::names::phone(&mut rng))
            } else {
                phone.clone()
            };
            versions.push(CustomerVersion {
                updated: t,
                city,
                phone,
            });
        }
    }
    let online_pref = rng.chance(0.45);
    let mut orders = Vec::new();
    if rng.chance(0.78) {
        let mut t = signup + 10 * MINUTE + rng.exp_secs(5.0 * DAY as f64);
        while t <= END && orders.len() < 40 {
            let city_now = versions
                .iter()
                .take_while(|v| v.updated <= t)
                .last()
                .map_or(city, |v| v.city);
            let home = if online_pref {
                ONLINE
            } else {
                store_of_city(city_now)
            };
            let store = if rng.chance(0.85) {
                home
            } else if home == ONLINE {
                store_of_city(city_now)
            } else {
                ONLINE
            };
            let active: Vec<usize> = (0..CAMPAIGNS.len())
                .filter(|c| {
                    let (_, _, s, e, _, _) = CAMPAIGNS[*c];
                    at(s) <= t && e.is_none_or(|e| t < at(e) + DAY)
                })
                .collect();
            let campaign = if active.is_empty() {
                None
            } else {
                let c = *rng.pick(&active);
                let p = if CAMPAIGNS[c].3.is_none() { 0.08 } else { 0.45 };
                rng.chance(p).then_some(c)
            };
            let coupon = campaign.is_none() && rng.chance(0.05);
            let n_lines = rng.weighted(&[0.45, 0.25, 0.15, 0.1, 0.05]) + 1;
            let mut lines: Vec<Line> = Vec::new();
            for _ in 0..n_lines {
                let p = pick_product(&mut rng, &sh.products, t);
                if lines.iter().any(|l| l.product == p) {
                    continue;
                }
                let count = rng.weighted(&[0.75, 0.17, 0.05, 0.03]) as i64 + 1;
                let unit = sh.products[p].price_at(t);
                let amt = unit * count;
                let pct = match campaign {
                    Some(c) => CAMPAIGNS[c].4,
                    None if coupon => 5,
                    None => 0,
                };
                let discount = (amt * pct + 50) / 100;
                let tax = ((amt - discount) * STORES[store].1 + 5_000) / 10_000;
                let returned = if rng.chance(0.04) {
                    let r = t + rng.range(3 * DAY, 30 * DAY);
                    (r <= END).then_some(r)
                } else {
                    None
                };
                lines.push(Line {
                    product: p,
                    count,
                    unit,
                    amt,
                    discount,
                    tax,
                    shipping: 0,
                    returned,
                });
            }
            if store == ONLINE {
                let net: i64 = lines.iter().map(|l| l.amt - l.discount).sum();
                if net < 5_000
                    && let Some(first) = lines.first_mut()
                {
                    first.shipping = 599;
                }
            }
            orders.push(Order {
                time: t,
                store,
                campaign,
                lines,
            });
            if !rng.chance(0.58) {
                break;
            }
            t += 2 * HOUR + rng.exp_secs(70.0 * DAY as f64);
        }
    }
    Customer {
        index: i,
        first,
        last,
        email,
        age,
        versions,
        orders,
    }
}

/// Sold and returned quantities of the tracked (store, product) pairs per day.
struct Flows {
    sold: Vec<i32>,
    returned: Vec<i32>,
}

fn slot(sh: &Shared, store: usize, product: usize, day: i64) -> usize {
    (store * sh.tracked + product) * DAYS as usize + day as usize
}

fn day_of(t: i64) -> i64 {
    ((t - START).div_euclid(DAY)).clamp(0, DAYS - 1)
}

/// One pass over every customer's orders, adding up the tracked flows.
fn flows(sh: &Shared) -> Flows {
    let size = STORES.len() * sh.tracked * DAYS as usize;
    let mut f = Flows {
        sold: vec![0; size],
        returned: vec![0; size],
    };
    for i in 0..sh.n_customers {
        let c = customer(sh, i);
        for o in &c.orders {
            for l in o.lines.iter().filter(|l| l.product < sh.tracked) {
                f.sold[slot(sh, o.store, l.product, day_of(o.time))] += l.count as i32;
                if let Some(r) = l.returned {
                    f.returned[slot(sh, o.store, l.product, day_of(r))] += l.count as i32;
                }
            }
        }
    }
    f
}

/// An inventory event: (id, type, time, store, product, change, order).
type InvEvent = (String, &'static str, i64, usize, usize, i64, Option<String>);

/// The stock of one tracked pair, day by day: its restock and adjustment events and its end
/// of day quantities.
fn simulate(
    sh: &Shared,
    f: &Flows,
    store: usize,
    product: usize,
) -> (Vec<InvEvent>, Vec<(i64, i64)>) {
    let mut rng = Rng::entity(
        sh.seed,
        MODEL,
        "stock",
        (store * sh.tracked + product) as u64,
    );
    let created = sh.products[product].created;
    let day0 = day_of(created.max(START));
    let base = slot(sh, store, product, 0);
    let total: i64 = (day0..DAYS)
        .map(|d| i64::from(f.sold[base + d as usize]))
        .sum();
    let avg = total as f64 / (DAYS - day0).max(1) as f64;
    let target = round_up_12(((avg * 14.0).ceil() as i64).max(24));
    let reorder = ((avg * 4.0).ceil() as i64).max(6);
    let (sid, pid) = (STORES[store].0, product_id(product));
    let mut on_hand = 0i64;
    let mut events = Vec::new();
    let mut days = Vec::new();
    for d in day0..DAYS {
        let start = START + d * DAY;
        let sold = i64::from(f.sold[base + d as usize]);
        let ret = i64::from(f.returned[base + d as usize]);
        if on_hand - sold < reorder {
            let qty = round_up_12((target - (on_hand - sold)).max(12));
            let t = (start + 5 * MINUTE + rng.range(0, 300)).max(created);
            events.push((
                format!("inv_rs_{sid}_{pid}_{}", d + 1),
                "restock",
                t,
                store,
                product,
                qty,
                None,
            ));
            on_hand += qty;
        }
        on_hand += ret - sold;
        if rng.chance(0.003) {
            let delta = if on_hand >= 3 && rng.chance(0.8) {
                -rng.range(1, 2)
            } else {
                rng.range(1, 2)
            };
            let t = start + 22 * HOUR + rng.range(0, HOUR - 1);
            events.push((
                format!("inv_adj_{sid}_{pid}_{}", d + 1),
                "adjustment",
                t,
                store,
                product,
                delta,
                None,
            ));
            on_hand += delta;
        }
        days.push((start, on_hand));
    }
    (events, days)
}

/// Rounds a positive quantity up to whole cases of 12.
fn round_up_12(q: i64) -> i64 {
    (q + 11) / 12 * 12
}

fn inv_record(e: InvEvent) -> Record {
    let (id, kind, t, store, product, change, order) = e;
    rec![
        id,
        kind,
        cal::ts(t),
        STORES[store].0,
        product_id(product),
        change,
        opt(order)
    ]
}

/// The `shop` tables.
pub(super) fn sources(opts: &DemoOptions) -> Vec<TableSource> {
    let seed = opts.seed;
    let n_products = count(400.0, opts.scale, 30) as usize;
    let products = products(seed, n_products);
    // Inventory is tracked for the most popular products (up to 40 at scale 1, fewer below),
    // with daily snapshots for up to five of them per store.
    let tracked = n_products.min(((40.0 * opts.scale).ceil() as usize).clamp(1, 40));
    let snapshotted = tracked.min(((5.0 * opts.scale).ceil() as usize).clamp(1, 5));
    let sh = Arc::new(Shared {
        seed,
        n_customers: count(10_000.0, opts.scale, 1),
        products,
        tracked,
        snapshotted,
    });
    let n = sh.n_customers;

    let categories: Vec<Record> = CATEGORIES
        .iter()
        .map(|(id, name, parent)| rec![id, name, opt(parent.map(|p| CATEGORIES[p].0))])
        .collect();
    let mut product_rows: Vec<Record> = Vec::new();
    for (p, pr) in sh.products.iter().enumerate() {
        for (k, (updated, price)) in pr.versions.iter().enumerate() {
            product_rows.push(rec![
                product_id(p),
                pr.title,
                pr.brand,
                CATEGORIES[pr.category].0,
                cal::money(*price),
                pr.sku,
                cal::ts(pr.created),
                cal::ts(*updated),
                boolean(k + 1 == pr.versions.len())
            ]);
        }
    }
    let campaigns: Vec<Record> = CAMPAIGNS
        .iter()
        .map(|(id, name, s, e, _, desc)| {
            rec![
                id,
                name,
                cal::ts(at(*s)),
                opt(e.map(|e| cal::ts(at(e) + DAY - 1))),
                opt(*desc)
            ]
        })
        .collect();

    let (s1, s2, s3, s4) = (sh.clone(), sh.clone(), sh.clone(), sh.clone());
    vec![
        table(
            MODEL,
            "product_category",
            &["product_category_id", "category_name", "parent_category_id"],
            categories.into_iter(),
        ),
        table(
            MODEL,
            "product",
            &[
                "product_id",
                "product_title",
                "product_brand",
                "product_category_id",
                "unit_price",
                "sku",
                "created_at",
                "updated_at",
                "is_current",
            ],
            product_rows.into_iter(),
        ),
        table(
            MODEL,
            "customer",
            &[
                "customer_id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "city",
                "state",
                "country",
                "customer_age",
                "updated_at",
                "is_current",
            ],
            per_entity(n, move |i, out| {
                let c = customer(&s1, i);
                let last = c.versions.len();
                for (k, v) in c.versions.iter().enumerate() {
                    let (city, state, country) = super::names::CITIES[v.city];
                    out.push(rec![
                        format!("cus_{:07}", c.index + 1),
                        c.first,
                        c.last,
                        c.email,
                        opt(v.phone.as_ref()),
                        city,
                        state,
                        country,
                        opt(c.age),
                        cal::ts(v.updated),
                        boolean(k + 1 == last)
                    ]);
                }
            }),
        ),
        table(
            MODEL,
            "campaign",
            &[
                "campaign_id",
                "campaign_name",
                "campaign_start_time",
                "campaign_end_time",
                "campaign_description",
            ],
            campaigns.into_iter(),
        ),
        table(
            MODEL,
            "order_line",
            &[
                "line_item_id",
                "order_id",
                "order_time",
                "customer_id",
                "campaign_id",
                "store_id",
                "product_id",
                "product_category_id",
                "count",
                "amt",
                "discount",
                "unit_price_at_purchase",
                "tax_amt",
                "shipping_amt",
                "line_number",
            ],
            per_entity(n, move |i, out| {
                let c = customer(&s2, i);
                let cid = format!("cus_{:07}", c.index + 1);
                for (k, o) in c.orders.iter().enumerate() {
                    let oid = c.order_id(k);
                    for (j, l) in o.lines.iter().enumerate() {
                        out.push(rec![
                            format!("{oid}_{}", j + 1),
                            oid,
                            cal::ts(o.time),
                            cid,
                            opt(o.campaign.map(|c| CAMPAIGNS[c].0)),
                            STORES[o.store].0,
                            product_id(l.product),
                            CATEGORIES[s2.products[l.product].category].0,
                            l.count,
                            cal::money(l.amt),
                            cal::money(l.discount),
                            cal::money(l.unit),
                            cal::money(l.tax),
                            cal::money(l.shipping),
                            j + 1
                        ]);
                    }
                }
            }),
        ),
        table(
            MODEL,
            "inventory_event",
            &[
                "inventory_event_id",
                "event_type",
                "event_time",
                "store_id",
                "product_id",
                "quantity_change",
                "reference_order_id",
            ],
            per_entity(n, move |i, out| {
                let c = customer(&s3, i);
                for (k, o) in c.orders.iter().enumerate() {
                    let oid = c.order_id(k);
                    for (j, l) in o
                        .lines
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| l.product < s3.tracked)
                    {
                        out.push(inv_record((
                            format!("inv_{oid}_{}_s", j + 1),
                            "sale",
                            o.time,
                            o.store,
                            l.product,
                            -l.count,
                            Some(oid.clone()),
                        )));
                        if let Some(r) = l.returned {
                            out.push(inv_record((
                                format!("inv_{oid}_{}_r", j + 1),
                                "return",
                                r,
                                o.store,
                                l.product,
                                l.count,
                                Some(oid.clone()),
                            )));
                        }
                    }
                }
            })
            .chain(deferred(move || {
                let f = flows(&s4);
                let mut rows = Vec::new();
                for store in 0..STORES.len() {
                    for p in 0..s4.tracked {
                        rows.extend(simulate(&s4, &f, store, p).0.into_iter().map(inv_record));
                    }
                }
                rows.into_iter()
            })),
        ),
        table(
            MODEL,
            "inventory_snapshot",
            &[
                "snapshot_date",
                "store_id",
                "product_id",
                "quantity_on_hand",
            ],
            deferred(move || {
                let f = flows(&sh);
                let mut rows = Vec::new();
                for (store, (sid, _)) in STORES.iter().enumerate() {
                    for p in 0..sh.snapshotted {
                        for (day, q) in simulate(&sh, &f, store, p).1 {
                            rows.push(rec![cal::date(day), sid, product_id(p), q]);
                        }
                    }
                }
                rows.into_iter()
            }),
        ),
    ]
}
