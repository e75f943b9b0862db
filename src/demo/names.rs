//! Word lists for names, emails and places (plain ASCII, no commas or quotes).

/// Given names.
pub(super) const FIRST: &[&str] = &[
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Oliver",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Mia",
    "William",
    "Amelia",
    "Benjamin",
    "Harper",
    "Lucas",
    "Evelyn",
    "Henry",
    "Abigail",
    "Alexander",
    "Emily",
    "Daniel",
    "Ella",
    "Matthew",
    "Grace",
    "Aarav",
    "Priya",
    "Rohan",
    "Ananya",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Sofia",
    "Mateo",
    "Lucia",
    "Diego",
    "Fatima",
    "Omar",
    "Amara",
    "Kwame",
    "Nia",
    "Chloe",
    "Jack",
    "Ruby",
    "Leo",
    "Zara",
    "Arjun",
    "Sita",
    "Bikash",
];

/// Family names.
pub(super) const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Patel",
    "Sharma",
    "Singh",
    "Gupta",
    "Shrestha",
    "Chen",
    "Wang",
    "Tanaka",
    "Sato",
    "Kim",
    "Nguyen",
    "Okafor",
    "Mensah",
    "Silva",
    "Costa",
    "Rossi",
    "Muller",
    "Schmidt",
    "Dubois",
    "Murphy",
    "OBrien",
    "Kelly",
    "Evans",
    "Hughes",
    "Wright",
];

/// Email domains (reserved example domains).
pub(super) const DOMAINS: &[&str] = &["example.com", "example.org", "example.net", "mail.example"];

/// (city, state, country) triples for customers and addresses.
pub(super) const CITIES: &[(&str, &str, &str)] = &[
    ("New York", "NY", "US"),
    ("Los Angeles", "CA", "US"),
    ("Chicago", "IL", "US"),
    ("Houston", "TX", "US"),
    ("Phoenix", "AZ", "US"),
    ("Seattle", "WA", "US"),
    ("Denver", "CO", "US"),
    ("Boston", "MA", "US"),
    ("Atlanta", "GA", "US"),
    ("Miami", "FL", "US"),
    ("Portland", "OR", "US"),
    ("Austin", "TX", "US"),
    ("Toronto", "ON", "CA"),
    ("Vancouver", "BC", "CA"),
    ("London", "", "GB"),
    ("Manchester", "", "GB"),
];

/// Street names for addresses.
pub(super) const STREETS: &[&str] = &[
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Birch", "Walnut", "Willow", "Lake", "Hill", "Park",
    "Sunset", "River", "Meadow", "Forest", "Spring",
];

/// Street suffixes.
pub(super) const STREET_KINDS: &[&str] = &["St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Way", "Ct"];

/// A person's name of entity `i`, drawn from the lists.
pub(super) fn person(rng: &mut super::rng::Rng) -> (&'static str, &'static str) {
    (*rng.pick(FIRST), *rng.pick(LAST))
}

/// An email unique to entity `tag` (e.g. a user id number): `olivia.smith.123@example.com`.
pub(super) fn email(first: &str, last: &str, tag: u64, rng: &mut super::rng::Rng) -> String {
    format!(
        "{}.{}.{tag}@{}",
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase(),
        rng.pick(DOMAINS)
    )
}

/// A phone number in the reserved 555-01xx range.
pub(super) fn phone(rng: &mut super::rng::Rng) -> String {
    format!("+1-{}-555-01{:02}", rng.range(200, 989), rng.range(0, 99))
}
