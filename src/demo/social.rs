//! The `social` model: type-2 users and content, devices, ad campaigns, content events and
//! the ad funnel.
//!
//! Users sign up (ids in signup order) and are active in some months: light, medium and heavy
//! users, who go dormant (churn) at different rates and sometimes come back. On an active day a
//! user views content (recent content more often) on one of their devices, sometimes likes,
//! comments or shares it, and sees ads: impression → click (about 6%) → conversion (about 12% of
//! clicks) with revenue on conversions and cost on impressions and clicks. The user dimension
//! gets a new version when its status changes: `inactive` 30 days after the last activity,
//! `churned` after 90, `active` again on return. About a fifth of users create content; some
//! content is edited (a new version).

use std::sync::Arc;

use super::cal::{self, DAY, END, HOUR, MINUTE, START};
use super::rng::{Rng, uuid as uuid_of};
use super::{DemoOptions, Record, TableSource, boolean, count, opt, per_entity, rec, table};

const MODEL: &str = "social";

const CONTENT_TYPES: &[&str] = &["post", "photo", "video", "story", "reel"];
const CONTENT_WEIGHTS: &[f64] = &[0.3, 0.3, 0.15, 0.15, 0.1];
const TOPICS: &[&str] = &[
    "Sunset",
    "Coffee",
    "Hiking",
    "Recipe",
    "Workout",
    "City",
    "Beach",
    "Puppy",
    "Garden",
    "Concert",
    "Road trip",
    "Book",
    "Gaming",
    "Fashion",
    "Street food",
    "Skyline",
];
const MOODS: &[&str] = &[
    "Morning", "Weekend", "Quick", "Cozy", "Epic", "Lazy", "Rainy", "Golden",
];

/// (device type, operating systems).
const DEVICES: &[(&str, &[&str])] = &[
    ("mobile", &["iOS", "Android"]),
    ("tablet", &["iPadOS", "Android"]),
    ("desktop", &["Windows", "macOS", "Linux"]),
    ("tv", &["tvOS", "Android TV", "webOS"]),
];
const DEVICE_WEIGHTS: &[f64] = &[0.62, 0.12, 0.2, 0.06];

/// (id, type, name, description, start (y, m, d), days to run or None for always-on).
type Campaign = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    (i64, u32, u32),
    Option<i64>,
);
const CAMPAIGNS: &[Campaign] = &[
    (
        "sc_01",
        "retargeting",
        "Always-on Retargeting",
        Some("Re-engage recent visitors"),
        (2024, 1, 1),
        None,
    ),
    (
        "sc_02",
        "awareness",
        "Brand Launch",
        Some("Launch of the new brand identity"),
        (2024, 1, 8),
        Some(45),
    ),
    (
        "sc_03",
        "engagement",
        "Spring Stories",
        None,
        (2024, 3, 20),
        Some(30),
    ),
    (
        "sc_04",
        "app_install",
        "Get the App",
        Some("Install campaign for mobile"),
        (2024, 4, 15),
        Some(90),
    ),
    (
        "sc_05",
        "conversion",
        "Summer Deals",
        Some("Promoted partner offers"),
        (2024, 6, 10),
        Some(60),
    ),
    (
        "sc_06",
        "awareness",
        "Creator Spotlight",
        None,
        (2024, 8, 1),
        Some(45),
    ),
    (
        "sc_07",
        "conversion",
        "Black Friday 2024",
        Some("Partner deals for Black Friday"),
        (2024, 11, 20),
        Some(14),
    ),
    (
        "sc_08",
        "engagement",
        "Holiday Challenge",
        Some("Share your holiday moments"),
        (2024, 12, 5),
        Some(30),
    ),
    (
        "sc_09",
        "app_install",
        "New Year New App",
        None,
        (2025, 1, 2),
        Some(40),
    ),
    (
        "sc_10",
        "conversion",
        "Always-on Shopping",
        Some("Shoppable posts"),
        (2025, 2, 1),
        None,
    ),
    (
        "sc_11",
        "awareness",
        "Spring Refresh",
        None,
        (2025, 3, 18),
        Some(35),
    ),
    (
        "sc_12",
        "engagement",
        "Summer Reels",
        Some("Short video push"),
        (2025, 6, 1),
        Some(60),
    ),
    (
        "sc_13",
        "conversion",
        "Back to School",
        None,
        (2025, 8, 5),
        Some(35),
    ),
    (
        "sc_14",
        "conversion",
        "Black Friday 2025",
        Some("Partner deals for Black Friday"),
        (2025, 11, 19),
        Some(14),
    ),
    (
        "sc_15",
        "engagement",
        "Year in Review",
        Some("Your 2025 highlights"),
        (2025, 12, 1),
        Some(30),
    ),
];

fn campaign_start(c: &Campaign) -> i64 {
    let (y, m, d) = c.4;
    cal::days_from_civil(y, m, d) * DAY + 9 * HOUR
}

fn campaign_end(c: &Campaign) -> Option<i64> {
    c.5.map(|days| (campaign_start(c) + days * DAY).min(END))
}

/// Content, precomputed: when it was created and by whom (ordered by time).
struct ContentInfo {
    created: i64,
    creator: u64,
}

struct Shared {
    seed: u64,
    n_users: u64,
    content: Vec<ContentInfo>,
}

fn signup(seed: u64, i: u64, n: u64) -> i64 {
    let j = Rng::entity(seed, MODEL, "signup", i).f64();
    cal::ordered_time(i, n, j, START, END - DAY)
}

fn is_creator(seed: u64, i: u64) -> bool {
    Rng::entity(seed, MODEL, "creator", i).chance(0.2)
}

fn user_id(i: u64) -> String {
    format!("su_{:07}", i + 1)
}

fn content_id(j: usize) -> String {
    format!("cnt_{:07}", j + 1)
}

fn precompute_content(seed: u64, n_users: u64, n_content: u64) -> Vec<ContentInfo> {
    let first_signup = signup(seed, 0, n_users);
    let mut out: Vec<ContentInfo> = Vec::with_capacity(n_content as usize);
    for j in 0..n_content {
        let mut rng = Rng::entity(seed, MODEL, "content-owner", j);
        let t = cal::ordered_time(j, n_content, rng.f64(), START + DAY, END - HOUR)
            .max(first_signup + HOUR);
        // The users signed up by t are a prefix of the ids.
        let (mut lo, mut hi) = (0u64, n_users);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if signup(seed, mid, n_users) <= t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let signed_up = lo.max(1);
        let candidate = rng.below(signed_up);
        let creator = (0..200)
            .map(|k| candidate.saturating_sub(k))
            .find(|c| is_creator(seed, *c))
            .unwrap_or(candidate);
        out.push(ContentInfo {
            created: t,
            creator,
        });
    }
    out
}

struct ContentVersion {
    updated: i64,
    name: String,
    desc: Option<String>,
}

fn content_versions(seed: u64, j: usize, created: i64) -> (&'static str, Vec<ContentVersion>) {
    let mut rng = Rng::entity(seed, MODEL, "content", j as u64);
    let kind = CONTENT_TYPES[rng.weighted(CONTENT_WEIGHTS)];
    let name = format!(
        "{} {} {kind} #{}",
        rng.pick(MOODS),
        rng.pick(TOPICS).to_lowercase(),
        j + 1
    );
    let desc = rng.chance(0.7).then(|| {
        format!(
            "A {} {kind} about {}",
            rng.pick(MOODS).to_lowercase(),
            rng.pick(TOPICS).to_lowercase()
        )
    });
    let mut versions = vec![ContentVersion {
        updated: created,
        name,
        desc,
    }];
    if rng.chance(0.15) {
        let mut t = created;
        for _ in 0..rng.range(1, 2) {
            t += HOUR + rng.exp_secs(20.0 * DAY as f64);
            if t > END {
                break;
            }
            let prev = versions.last().map(|v| (v.name.clone(), v.desc.clone()));
            let (name, desc) = prev.unwrap_or_default();
            let (name, desc) = if rng.chance(0.5) {
                (format!("{name} (edited)"), desc)
            } else {
                (
                    name,
                    Some(format!(
                        "Updated: a {kind} about {}",
                        rng.pick(TOPICS).to_lowercase()
                    )),
                )
            };
            versions.push(ContentVersion {
                updated: t,
                name,
                desc,
            });
        }
    }
    (kind, versions)
}

struct ContentEvent {
    id: (u64, u64),
    time: i64,
    kind: &'static str,
    content: usize,
    device: usize,
    ip: Option<String>,
}

struct AdEvent {
    id: (u64, u64),
    time: i64,
    kind: &'static str,
    campaign: usize,
    device: usize,
    ip: Option<String>,
    revenue: i64,
    cost: i64,
}

struct Version {
    updated: i64,
    status: &'static str,
    last_active: Option<i64>,
    churned: Option<i64>,
}

struct User {
    index: u64,
    created: i64,
    name: String,
    email: String,
    phone: Option<String>,
    devices: Vec<(&'static str, &'static str)>,
    content_events: Vec<ContentEvent>,
    ad_events: Vec<AdEvent>,
    versions: Vec<Version>,
}

/// The first day (number from 1970-01-01) of calendar month `m` (0 = January 2024).
fn month_start_day(m: i64) -> i64 {
    cal::days_from_civil(2024 + m / 12, (m % 12) as u32 + 1, 1)
}

fn user(sh: &Shared, i: u64) -> User {
    let seed = sh.seed;
    let created = signup(seed, i, sh.n_users);
    let mut rng = Rng::entity(seed, MODEL, "user", i);
    let (first, last) = super::names::person(&mut rng);
    let email = super::names::email(first, last, i + 1, &mut rng);
    let phone = rng.chance(0.6).then(|| super::names::phone(&mut rng));
    let n_devices = rng.weighted(&[0.65, 0.28, 0.07]) + 1;
    let devices: Vec<(&str, &str)> = (0..n_devices)
        .map(|_| {
            let (kind, oses) = DEVICES[rng.weighted(DEVICE_WEIGHTS)];
            (kind, *rng.pick(oses))
        })
        .collect();
    let home_ip = format!(
        "{}.{}",
        rng.pick(&["198.51.100", "203.0.113", "192.0.2"]),
        rng.range(1, 254)
    );
    // Engagement: (active days per active month, monthly churn, monthly return).
    let (days_lo, days_hi, churn, comeback) = match rng.weighted(&[0.6, 0.3, 0.1]) {
        0 => (1, 1, 0.45, 0.05),
        1 => (1, 2, 0.25, 0.07),
        _ => (2, 4, 0.1, 0.1),
    };

    let mut u = User {
        index: i,
        created,
        name: format!("{first} {last}"),
        email,
        phone,
        devices,
        content_events: Vec::new(),
        ad_events: Vec::new(),
        versions: Vec::new(),
    };
    let created_day = created.div_euclid(DAY);
    let end_day = END.div_euclid(DAY);
    let mut active_days: Vec<i64> = Vec::new();
    let first_month = {
        let (y, m, _) = cal::civil_from_days(created_day);
        (y - 2024) * 12 + i64::from(m) - 1
    };
    let mut engaged = true;
    for m in first_month..24 {
        let active = if m == first_month {
            true
        } else if engaged {
            rng.chance(0.9)
        } else if rng.chance(comeback) {
            engaged = true;
            true
        } else {
            false
        };
        if active {
            let lo = month_start_day(m).max(created_day);
            let hi = (month_start_day(m + 1) - 1).min(end_day);
            let mut days: Vec<i64> = (0..rng.range(days_lo, days_hi))
                .map(|_| rng.range(lo, hi))
                .collect();
            days.sort_unstable();
            days.dedup();
            active_days.extend(days);
        }
        if engaged && rng.chance(churn) {
            engaged = false;
        }
    }

    let mut day_starts: Vec<i64> = Vec::new();
    for day in active_days {
        let mut t = day * DAY + cal::time_of_day(&mut rng);
        if t < created {
            t = created + MINUTE + rng.range(0, 30 * MINUTE);
        }
        if t > END - HOUR {
            continue;
        }
        day_starts.push(t);
        let device = if u.devices.len() > 1 && rng.chance(0.3) {
            rng.range(1, u.devices.len() as i64 - 1) as usize
        } else {
            0
        };
        let ip = if rng.chance(0.03) {
            None
        } else if rng.chance(0.6) {
            Some(home_ip.clone())
        } else {
            Some(format!(
                "100.{}.{}.{}",
                rng.range(64, 127),
                rng.range(0, 255),
                rng.range(1, 254)
            ))
        };
        // Content: 1–2 views, each maybe followed by a like, a comment, a share.
        let available = sh.content.partition_point(|c| c.created <= t);
        for _ in 0..rng.range(1, 2) {
            if available == 0 {
                break;
            }
            let back = rng.exp(available.min(400) as f64 / 4.0) as usize;
            let content = available - 1 - back.min(available - 1);
            if sh.content[content].creator == i {
                continue;
            }
            u.content_events.push(ContentEvent {
                id: (rng.next_u64(), rng.next_u64()),
                time: t,
                kind: "view",
                content,
                device,
                ip: ip.clone(),
            });
            for (kind, p) in [("like", 0.28), ("comment", 0.08), ("share", 0.05)] {
                if rng.chance(p) {
                    u.content_events.push(ContentEvent {
                        id: (rng.next_u64(), rng.next_u64()),
                        time: t + rng.range(5, 120),
                        kind,
                        content,
                        device,
                        ip: ip.clone(),
                    });
                }
            }
            t += 10 + rng.exp_secs(120.0);
        }
        // Ads: 0–2 impressions of running campaigns.
        let running: Vec<usize> = (0..CAMPAIGNS.len())
            .filter(|c| {
                campaign_start(&CAMPAIGNS[*c]) <= t
                    && campaign_end(&CAMPAIGNS[*c]).is_none_or(|e| t < e)
            })
            .collect();
        let impressions = rng.weighted(&[0.5, 0.4, 0.1]);
        for _ in 0..impressions {
            if running.is_empty() {
                break;
            }
            let campaign = *rng.pick(&running);
            let ad =
                |rng: &mut Rng, time: i64, kind: &'static str, revenue: i64, cost: i64| AdEvent {
                    id: (rng.next_u64(), rng.next_u64()),
                    time: time.min(END),
                    kind,
                    campaign,
                    device,
                    ip: ip.clone(),
                    revenue,
                    cost,
                };
            let cost = rng.range(1, 5);
            u.ad_events.push(ad(&mut rng, t, "impression", 0, cost));
            if rng.chance(0.06) {
                let tc = t + rng.range(2, 60);
                let cost = rng.range(20, 150);
                u.ad_events.push(ad(&mut rng, tc, "click", 0, cost));
                if rng.chance(0.12) {
                    let tv = tc + rng.range(MINUTE, 30 * MINUTE);
                    let revenue = rng.range(500, 15_000);
                    u.ad_events.push(ad(&mut rng, tv, "conversion", revenue, 0));
                }
            }
            t += 5 + rng.exp_secs(60.0);
        }
    }

    // Status history: active at signup, inactive 30 days after the last activity, churned
    // after 90, active again on return.
    let mut versions = vec![Version {
        updated: created,
        status: "active",
        last_active: None,
        churned: None,
    }];
    let mut last: Option<i64> = None;
    let lapse = |versions: &mut Vec<Version>, last_day: i64, until: i64| {
        for (after, status) in [(30, "inactive"), (90, "churned")] {
            let t = (last_day + after) * DAY + 3 * HOUR;
            let current = versions.last().map_or("active", |v| v.status);
            let due = match status {
                "inactive" => current == "active",
                _ => current == "inactive",
            };
            if due && t < until && t <= END {
                versions.push(Version {
                    updated: t,
                    status,
                    last_active: Some(last_day),
                    churned: (status == "churned").then_some(t.div_euclid(DAY)),
                });
            }
        }
    };
    for t in &day_starts {
        let day = t.div_euclid(DAY);
        if let Some(l) = last {
            lapse(&mut versions, l, *t);
        }
        if versions.last().is_some_and(|v| v.status != "active") {
            versions.push(Version {
                updated: *t,
                status: "active",
                last_active: Some(day),
                churned: None,
            });
        }
        last = Some(day);
    }
    if let Some(l) = last {
        lapse(&mut versions, l, END + 1);
    }
    u.versions = versions;
    u
}

/// The `social` tables.
pub(super) fn sources(opts: &DemoOptions) -> Vec<TableSource> {
    let seed = opts.seed;
    let n_users = count(10_000.0, opts.scale, 2);
    let n_content = count(2_500.0, opts.scale, 20);
    let sh = Arc::new(Shared {
        seed,
        n_users,
        content: precompute_content(seed, n_users, n_content),
    });
    let campaigns: Vec<Record> = CAMPAIGNS
        .iter()
        .map(|c| {
            let start = campaign_start(c);
            rec![
                c.0,
                c.1,
                c.2,
                opt(c.3),
                cal::ts((start - 6 * DAY).max(START)),
                cal::ts(start),
                opt(campaign_end(c).map(cal::ts))
            ]
        })
        .collect();
    let (s1, s2, s3, s4) = (sh.clone(), sh.clone(), sh.clone(), sh.clone());
    vec![
        table(
            MODEL,
            "user",
            &[
                "user_id",
                "status",
                "name",
                "email",
                "phone",
                "created_at",
                "updated_at",
                "is_current",
                "last_active_date",
                "churned_date",
            ],
            per_entity(n_users, move |i, out| {
                let u = user(&s1, i);
                let last = u.versions.len();
                for (k, v) in u.versions.iter().enumerate() {
                    out.push(rec![
                        user_id(u.index),
                        v.status,
                        u.name,
                        u.email,
                        opt(u.phone.as_ref()),
                        cal::ts(u.created),
                        cal::ts(v.updated),
                        boolean(k + 1 == last),
                        opt(v.last_active.map(|d| cal::date(d * DAY))),
                        opt(v.churned.map(|d| cal::date(d * DAY)))
                    ]);
                }
            }),
        ),
        table(
            MODEL,
            "device",
            &["device_id", "device_type", "os"],
            per_entity(n_users, move |i, out| {
                let u = user(&s2, i);
                for (k, (kind, os)) in u.devices.iter().enumerate() {
                    out.push(rec![device_id(i, k), kind, os]);
                }
            }),
        ),
        table(
            MODEL,
            "content",
            &[
                "content_id",
                "content_type",
                "content_name",
                "content_desc",
                "creator_id",
                "created_at",
                "updated_at",
                "is_current",
            ],
            per_entity(sh.content.len() as u64, move |j, out| {
                let j = j as usize;
                let info = &sh.content[j];
                let (kind, versions) = content_versions(sh.seed, j, info.created);
                let last = versions.len();
                for (k, v) in versions.iter().enumerate() {
                    out.push(rec![
                        content_id(j),
                        kind,
                        v.name,
                        opt(v.desc.as_ref()),
                        user_id(info.creator),
                        cal::ts(info.created),
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
                "campaign_type",
                "campaign_name",
                "campaign_desc",
                "created_at",
                "starttime",
                "endtime",
            ],
            campaigns.into_iter(),
        ),
        table(
            MODEL,
            "content_event",
            &[
                "event_id",
                "event_time",
                "event_type",
                "content_id",
                "creator_id",
                "viewer_id",
                "device_id",
                "ip_address",
            ],
            per_entity(n_users, move |i, out| {
                let u = user(&s3, i);
                for e in &u.content_events {
                    out.push(rec![
                        uuid_of(e.id),
                        cal::ts(e.time),
                        e.kind,
                        content_id(e.content),
                        user_id(s3.content[e.content].creator),
                        user_id(i),
                        device_id(i, e.device),
                        opt(e.ip.as_ref())
                    ]);
                }
            }),
        ),
        table(
            MODEL,
            "ad_event",
            &[
                "event_id",
                "event_time",
                "event_type",
                "campaign_id",
                "user_id",
                "device_id",
                "ip_address",
                "revenue",
                "cost",
            ],
            per_entity(n_users, move |i, out| {
                let u = user(&s4, i);
                for e in &u.ad_events {
                    out.push(rec![
                        uuid_of(e.id),
                        cal::ts(e.time),
                        e.kind,
                        CAMPAIGNS[e.campaign].0,
                        user_id(i),
                        device_id(i, e.device),
                        opt(e.ip.as_ref()),
                        cal::money(e.revenue),
                        cal::money(e.cost)
                    ]);
                }
            }),
        ),
    ]
}

fn device_id(user: u64, k: usize) -> String {
    format!("dev_{:07}_{}", user + 1, k + 1)
}
