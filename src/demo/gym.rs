//! The `gym` model: twelve branches in eight IANA zones, leads, and their membership and
//! credit-pack purchases.
//!
//! Zones include half- and quarter-hour offsets (Asia/Kolkata +05:30, Asia/Kathmandu +05:45,
//! Australia/Adelaide +09:30/+10:30) and both hemispheres' daylight saving; users and purchases
//! are placed in local daytime, and a few users are created within hours of a DST transition.
//! About 60% of leads buy a membership and/or a credit pack (some both, some several); a few
//! buy at another branch, some purchase records are created late, a few purchase times tie
//! exactly (between and within types), and a few purchases precede the user's `created_at`.

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;

use super::cal::{self, DAY, END, HOUR, MINUTE, START};
use super::rng::Rng;
use super::{DemoOptions, TableSource, count, json_object, per_entity, rec, table};

const MODEL: &str = "gym";

struct Branch {
    id: &'static str,
    name: &'static str,
    email: &'static str,
    city: &'static str,
    country: &'static str,
    zone: &'static str,
    /// Opening day (y, m, d) and UTC hour of the record.
    opened: (i64, u32, u32, i64),
    weight: f64,
    /// DST transitions (UTC instants) in the calendar.
    dst: &'static [i64],
}

const EU: &[i64] = &[1_711_846_800, 1_729_990_800, 1_743_296_400, 1_761_440_400];
const NY: &[i64] = &[1_710_054_000, 1_730_613_600, 1_741_503_600, 1_762_063_200];
const LA: &[i64] = &[1_710_064_800, 1_730_624_400, 1_741_514_400, 1_762_074_000];
const SYD: &[i64] = &[1_712_419_200, 1_728_144_000, 1_743_868_800, 1_759_593_600];
const ADL: &[i64] = &[1_712_421_000, 1_728_145_800, 1_743_870_600, 1_759_595_400];

const BRANCHES: &[Branch] = &[
    Branch {
        id: "br_01",
        name: "Tally Fitness Soho",
        email: "soho@tallyfit.example",
        city: "London",
        country: "United Kingdom",
        zone: "Europe/London",
        opened: (2024, 1, 1, 0),
        weight: 1.3,
        dst: EU,
    },
    Branch {
        id: "br_02",
        name: "Tally Fitness Manchester",
        email: "manchester@tallyfit.example",
        city: "Manchester",
        country: "United Kingdom",
        zone: "Europe/London",
        opened: (2024, 1, 1, 0),
        weight: 0.9,
        dst: EU,
    },
    Branch {
        id: "br_03",
        name: "Tally Fitness Midtown",
        email: "midtown@tallyfit.example",
        city: "New York",
        country: "United States",
        zone: "America/New_York",
        opened: (2024, 1, 1, 0),
        weight: 1.4,
        dst: NY,
    },
    Branch {
        id: "br_04",
        name: "Tally Fitness Brooklyn",
        email: "brooklyn@tallyfit.example",
        city: "New York",
        country: "United States",
        zone: "America/New_York",
        opened: (2024, 5, 6, 13),
        weight: 1.0,
        dst: NY,
    },
    Branch {
        id: "br_05",
        name: "Tally Fitness Venice Beach",
        email: "venice@tallyfit.example",
        city: "Los Angeles",
        country: "United States",
        zone: "America/Los_Angeles",
        opened: (2024, 1, 1, 0),
        weight: 1.0,
        dst: LA,
    },
    Branch {
        id: "br_06",
        name: "Tally Fitness Sydney CBD",
        email: "sydney@tallyfit.example",
        city: "Sydney",
        country: "Australia",
        zone: "Australia/Sydney",
        opened: (2024, 1, 1, 0),
        weight: 1.1,
        dst: SYD,
    },
    Branch {
        id: "br_07",
        name: "Tally Fitness Melbourne",
        email: "melbourne@tallyfit.example",
        city: "Melbourne",
        country: "Australia",
        zone: "Australia/Melbourne",
        opened: (2024, 9, 2, 0),
        weight: 0.9,
        dst: SYD,
    },
    Branch {
        id: "br_08",
        name: "Tally Fitness Adelaide",
        email: "adelaide@tallyfit.example",
        city: "Adelaide",
        country: "Australia",
        zone: "Australia/Adelaide",
        opened: (2024, 1, 1, 0),
        weight: 0.7,
        dst: ADL,
    },
    Branch {
        id: "br_09",
        name: "Tally Fitness Bandra",
        email: "bandra@tallyfit.example",
        city: "Mumbai",
        country: "India",
        zone: "Asia/Kolkata",
        opened: (2024, 1, 1, 0),
        weight: 1.2,
        dst: &[],
    },
    Branch {
        id: "br_10",
        name: "Tally Fitness Indiranagar",
        email: "indiranagar@tallyfit.example",
        city: "Bengaluru",
        country: "India",
        zone: "Asia/Kolkata",
        opened: (2025, 2, 3, 4),
        weight: 1.0,
        dst: &[],
    },
    Branch {
        id: "br_11",
        name: "Tally Fitness Thamel",
        email: "thamel@tallyfit.example",
        city: "Kathmandu",
        country: "Nepal",
        zone: "Asia/Kathmandu",
        opened: (2024, 3, 1, 3),
        weight: 0.6,
        dst: &[],
    },
    Branch {
        id: "br_12",
        name: "Tally Fitness Mitte",
        email: "mitte@tallyfit.example",
        city: "Berlin",
        country: "Germany",
        zone: "Europe/Berlin",
        opened: (2025, 6, 2, 7),
        weight: 1.0,
        dst: EU,
    },
];

const MEMBERSHIPS: &[&str] = &[
    "Monthly Unlimited",
    "Annual Unlimited",
    "Off-Peak Monthly",
    "Student Monthly",
    "Intro Month",
];
const MEMBERSHIP_WEIGHTS: &[f64] = &[0.35, 0.12, 0.18, 0.15, 0.2];
const CREDIT_PACKS: &[&str] = &[
    "Single Class",
    "5 Class Pack",
    "10 Class Pack",
    "20 Class Pack",
    "Intro 3 Pack",
];
const CREDIT_WEIGHTS: &[f64] = &[0.2, 0.3, 0.25, 0.1, 0.15];
const SOURCES: &[&str] = &["web", "app", "front_desk", "referral"];
const SOURCE_WEIGHTS: &[f64] = &[0.35, 0.3, 0.25, 0.1];

/// Relative busyness of the local hours of a gym day (06:00–21:59).
const LOCAL_HOURS: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.2, 2.0, 1.6, 1.0, 0.9, 1.0, 1.4, 1.1, 0.9, 1.0, 1.3, 2.0, 2.4,
    2.0, 1.4, 0.8, 0.0, 0.0,
];

fn opened(b: &Branch) -> i64 {
    let (y, m, d, h) = b.opened;
    cal::days_from_civil(y, m, d) * DAY + h * HOUR
}

/// UTC offset (seconds) of a zone at instant `t`.
fn offset_at(tz: Tz, t: i64) -> i64 {
    match DateTime::from_timestamp(t, 0) {
        Some(dt) => i64::from(
            tz.offset_from_utc_datetime(&dt.naive_utc())
                .fix()
                .local_minus_utc(),
        ),
        None => 0,
    }
}

/// An instant in local daytime on the local day that contains `t`.
fn local_daytime(rng: &mut Rng, tz: Tz, t: i64) -> i64 {
    let local_day = (t + offset_at(tz, t)).div_euclid(DAY);
    let hour = rng.weighted(&LOCAL_HOURS) as i64;
    let local = local_day * DAY + hour * HOUR + rng.range(0, HOUR - 1);
    // Offset of the (approximate) instant, then of the corrected one.
    let guess = local - offset_at(tz, local - offset_at(tz, t));
    local - offset_at(tz, guess)
}

struct Purchase {
    branch: usize,
    at: i64,
    created: i64,
    name: &'static str,
    source: &'static str,
}

struct User {
    index: u64,
    branch: usize,
    name: String,
    email: String,
    created: i64,
    memberships: Vec<Purchase>,
    credit_packs: Vec<Purchase>,
}

fn zones() -> Vec<Tz> {
    BRANCHES
        .iter()
        .map(|b| b.zone.parse::<Tz>().unwrap_or(chrono_tz::UTC))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn purchases(
    rng: &mut Rng,
    zones: &[Tz],
    u: &User,
    n: usize,
    first: i64,
    names: &'static [&'static str],
    weights: &[f64],
    open: &[usize],
) -> Vec<Purchase> {
    let tz = zones[u.branch];
    let mut out: Vec<Purchase> = Vec::new();
    let mut day = first;
    for k in 0..n {
        let tie = k > 0 && rng.chance(0.06);
        let at = if tie {
            out[k - 1].at
        } else if k == 0 && rng.chance(0.03) {
            // Bought at the desk before the account was set up.
            (u.created - rng.range(10 * MINUTE, 3 * DAY)).max(START)
        } else {
            let t = local_daytime(rng, tz, day);
            if t < u.created + 5 * MINUTE {
                u.created + 5 * MINUTE + rng.range(0, 2 * HOUR)
            } else {
                t
            }
        };
        if at > END {
            break;
        }
        let created = if tie && rng.chance(0.4) {
            out[k - 1].created
        } else if rng.chance(0.06) {
            at + HOUR + rng.exp_secs(2.0 * DAY as f64)
        } else {
            at + rng.range(0, 90)
        };
        let branch = if rng.chance(0.03) {
            *rng.pick(open)
        } else {
            u.branch
        };
        out.push(Purchase {
            branch,
            at,
            created: created.min(END),
            name: names[rng.weighted(weights)],
            source: SOURCES[rng.weighted(SOURCE_WEIGHTS)],
        });
        day = at + DAY + rng.exp_secs(60.0 * DAY as f64);
    }
    out
}

fn user(seed: u64, i: u64, n: u64, zones: &[Tz]) -> User {
    let mut rng = Rng::entity(seed, MODEL, "user", i);
    let base = cal::ordered_time(i, n, rng.f64(), START + 2 * HOUR, END - DAY);
    let open: Vec<usize> = (0..BRANCHES.len())
        .filter(|b| opened(&BRANCHES[*b]) <= base)
        .collect();
    let open = if open.is_empty() { vec![0] } else { open };
    let weights: Vec<f64> = open.iter().map(|b| BRANCHES[*b].weight).collect();
    let branch = open[rng.weighted(&weights)];
    let b = &BRANCHES[branch];
    let tz = zones[branch];
    let created = if !b.dst.is_empty() && rng.chance(0.015) {
        // Around a daylight-saving transition of the branch's zone.
        let tr = *rng.pick(b.dst);
        tr + rng.range(-3 * HOUR, 3 * HOUR)
    } else {
        local_daytime(&mut rng, tz, base)
    };
    let created = if created < opened(b) || created > END - HOUR {
        base.max(opened(b))
    } else {
        created
    };
    let (first, last) = super::names::person(&mut rng);
    let email = super::names::email(first, last, i + 1, &mut rng);
    let mut u = User {
        index: i,
        branch,
        name: format!("{first} {last}"),
        email,
        created,
        memberships: Vec::new(),
        credit_packs: Vec::new(),
    };
    if rng.chance(0.6) {
        let kind = rng.weighted(&[0.45, 0.3, 0.25]);
        let n_m = if kind != 1 {
            rng.weighted(&[0.72, 0.2, 0.08]) + 1
        } else {
            0
        };
        let n_c = if kind != 0 {
            rng.weighted(&[0.6, 0.25, 0.15]) + 1
        } else {
            0
        };
        let first_m = created + rng.exp_secs(12.0 * DAY as f64);
        let first_c = created + rng.exp_secs(20.0 * DAY as f64);
        u.memberships = purchases(
            &mut rng,
            zones,
            &u,
            n_m,
            first_m,
            MEMBERSHIPS,
            MEMBERSHIP_WEIGHTS,
            &open,
        );
        let mut packs = purchases(
            &mut rng,
            zones,
            &u,
            n_c,
            first_c,
            CREDIT_PACKS,
            CREDIT_WEIGHTS,
            &open,
        );
        // A few exact ties between a membership and a credit pack.
        if let (Some(m), Some(c)) = (u.memberships.first(), packs.first_mut())
            && rng.chance(0.05)
        {
            c.at = m.at;
            c.created = c.created.max(c.at);
        }
        packs.sort_by_key(|p| p.at);
        u.credit_packs = packs;
    }
    u
}

fn details(p: &Purchase) -> String {
    json_object(&[("name", p.name), ("source", p.source)])
}

/// The `gym` tables.
pub(super) fn sources(opts: &DemoOptions) -> Vec<TableSource> {
    let seed = opts.seed;
    let n = count(10_000.0, opts.scale, 1);
    let branches = BRANCHES
        .iter()
        .map(|b| {
            rec![
                b.id,
                b.name,
                b.email,
                b.city,
                b.country,
                b.zone,
                cal::ts(opened(b))
            ]
        })
        .collect::<Vec<_>>();
    vec![
        table(
            MODEL,
            "dim_branch",
            &[
                "branch_id",
                "name",
                "email",
                "city",
                "country",
                "timezone_id",
                "created_at",
            ],
            branches.into_iter(),
        ),
        table(
            MODEL,
            "dim_user",
            &["user_id", "branch_id", "name", "email", "created_at"],
            per_entity(n, {
                let zones = zones();
                move |i, out| {
                    let u = user(seed, i, n, &zones);
                    out.push(rec![
                        user_id(u.index),
                        BRANCHES[u.branch].id,
                        u.name,
                        u.email,
                        cal::ts(u.created)
                    ]);
                }
            }),
        ),
        table(
            MODEL,
            "fct_credit_pack_purchases",
            &[
                "user_id",
                "branch_id",
                "credit_pack_id",
                "credit_pack_purchased_at",
                "created_at",
                "credit_pack_purchase_details",
            ],
            per_entity(n, {
                let zones = zones();
                move |i, out| {
                    let u = user(seed, i, n, &zones);
                    for (k, p) in u.credit_packs.iter().enumerate() {
                        out.push(rec![
                            user_id(u.index),
                            BRANCHES[p.branch].id,
                            format!("cp_{:07}_{}", u.index + 1, k + 1),
                            cal::ts(p.at),
                            cal::ts(p.created),
                            details(p)
                        ]);
                    }
                }
            }),
        ),
        table(
            MODEL,
            "fct_membership_purchases",
            &[
                "user_id",
                "branch_id",
                "user_membership_id",
                "membership_purchased_at",
                "created_at",
                "membership_purchase_details",
            ],
            per_entity(n, {
                let zones = zones();
                move |i, out| {
                    let u = user(seed, i, n, &zones);
                    for (k, p) in u.memberships.iter().enumerate() {
                        out.push(rec![
                            user_id(u.index),
                            BRANCHES[p.branch].id,
                            format!("um_{:07}_{}", u.index + 1, k + 1),
                            cal::ts(p.at),
                            cal::ts(p.created),
                            details(p)
                        ]);
                    }
                }
            }),
        ),
    ]
}

fn user_id(i: u64) -> String {
    format!("gu_{:07}", i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_parse_and_transitions_are_real() {
        let zones = zones();
        for (b, tz) in BRANCHES.iter().zip(&zones) {
            assert_eq!(tz.name(), b.zone);
            for t in b.dst {
                assert_ne!(offset_at(*tz, t - 1), offset_at(*tz, *t), "{} {t}", b.zone);
            }
        }
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap_or(chrono_tz::UTC);
        assert_eq!(offset_at(kolkata, START), 19_800);
        let kathmandu: Tz = "Asia/Kathmandu".parse().unwrap_or(chrono_tz::UTC);
        assert_eq!(offset_at(kathmandu, START), 20_700);
    }
}
