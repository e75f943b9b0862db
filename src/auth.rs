//! API keys and roles: who may ask what (docs/CONFIGURATION.md, "Keys and roles").
//!
//! A key is a random secret the server never stores: the configuration holds its SHA-256
//! (`sha256:<64 hex digits>`), its role and its tenant attributes. A request presents the key
//! as `Authorization: Bearer KEY` (or `x-api-key: KEY`); its hash is compared with every
//! configured hash in constant time. A role says which models, metrics, dimensions and model
//! fields it may read (allow lists, all by default), whether it may introspect the schema,
//! whether `extensions.explain` shows it SQL and parameters, its own time budget, and whether
//! the models' row policies apply to it (`unscoped = true`: they do not, as for an
//! administrator).
//!
//! With no key configured the server is open: every request is answered, with no role.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::engine::Caller;
use crate::error::{ApiError, Error};

/// The prefix of a stored key hash.
pub const HASH_PREFIX: &str = "sha256:";

/// The prefix of the keys `tally key new` makes (so a leaked one is recognisable).
pub const KEY_PREFIX: &str = "tally_";

/// What one role may read, per model (`[auth.roles.NAME.allow.MODEL]`); a list left out
/// allows everything of its kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAccess {
    /// Metrics of the model the role may select (`metrics` fields); default all.
    pub metrics: Option<BTreeSet<String>>,
    /// Dimensions the role may group, filter or sort by; default all.
    pub dimensions: Option<BTreeSet<String>>,
    /// Fields of the model's object the role may use (`metrics`, the row fields such as
    /// `leadConversions`, the saas lifecycle fields); default all.
    pub fields: Option<BTreeSet<String>>,
}

/// A role (`[auth.roles.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Its name.
    pub name: String,
    /// The models it may read; `None`: all.
    pub models: Option<BTreeSet<String>>,
    /// Per model, what of it the role may read.
    pub allow: BTreeMap<String, ModelAccess>,
    /// Whether it may ask for `__schema` and `__type` (default true).
    pub introspection: bool,
    /// Whether `extensions.explain` shows it SQL and parameters (default false: timings only).
    pub explain_sql: bool,
    /// Its own time budget per request, instead of `guardrails.statement_timeout`.
    pub statement_timeout: Option<Duration>,
    /// Whether the models' row policies are lifted for it (default false).
    pub unscoped: bool,
}

impl Role {
    /// Whether the role reads every model whole (no allow list narrows it).
    pub fn reads_everything(&self) -> bool {
        self.models.is_none()
            && self
                .allow
                .values()
                .all(|a| a.metrics.is_none() && a.dimensions.is_none() && a.fields.is_none())
    }

    /// Whether the role may read the model `model`.
    pub fn may_read_model(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(model))
    }

    fn allowed(list: Option<&BTreeSet<String>>, name: &str) -> bool {
        list.is_none_or(|l| l.contains(name))
    }

    /// Whether the role may select the metric `metric` of `model`.
    pub fn may_use_metric(&self, model: &str, metric: &str) -> bool {
        Self::allowed(
            self.allow.get(model).and_then(|a| a.metrics.as_ref()),
            metric,
        )
    }

    /// Whether the role may group, filter or sort by the dimension `dimension` of `model`.
    pub fn may_use_dimension(&self, model: &str, dimension: &str) -> bool {
        Self::allowed(
            self.allow.get(model).and_then(|a| a.dimensions.as_ref()),
            dimension,
        )
    }

    /// Whether the role may use the field `field` of `model`'s object.
    pub fn may_use_field(&self, model: &str, field: &str) -> bool {
        Self::allowed(self.allow.get(model).and_then(|a| a.fields.as_ref()), field)
    }
}

/// A configured API key (`[[auth.keys]]`): the hash of its secret, its role, its tenant
/// attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// A label for logs (default: the first 8 hex digits of the hash).
    pub name: String,
    /// SHA-256 of the secret.
    pub hash: [u8; 32],
    /// The role's name.
    pub role: String,
    /// Tenant attributes (bound by row policies).
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// Who a verified key says is asking: the role, and the caller the engine sees (`None` for
/// an unscoped role: no row policy applies).
#[derive(Debug, Clone)]
pub struct Identity {
    /// The key's label.
    pub key: String,
    /// The key's role.
    pub role: Arc<Role>,
    /// The caller handed to the engine.
    pub caller: Option<Arc<Caller>>,
}

/// The engine's view of a request of `identity` (`None`: an open server) with id `id`: its
/// budget (the role's `statement_timeout`, else `budget`) from now, and its caller (the
/// key's role and attributes; none for an unscoped role or an open server).
pub fn request_scope(
    identity: Option<&Identity>,
    id: String,
    budget: Duration,
) -> Arc<crate::engine::RequestScope> {
    let budget = identity
        .and_then(|i| i.role.statement_timeout)
        .unwrap_or(budget);
    let caller = identity.and_then(|i| i.caller.clone());
    crate::engine::RequestScope::for_caller(id, Some(std::time::Instant::now() + budget), caller)
}

/// The keys and roles of a server; empty: the server is open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Auth {
    /// Roles by name.
    pub roles: BTreeMap<String, Arc<Role>>,
    /// The keys.
    pub keys: Vec<ApiKey>,
    /// Serve with no key on an address other than loopback (`--allow-open`,
    /// `auth.allow_open`).
    pub allow_open: bool,
    /// Whether `/metrics` needs no key; `None`: public when the server listens on loopback
    /// only (`auth.metrics_public`).
    pub metrics_public: Option<bool>,
}

/// Why a request was refused before it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No key was presented.
    Missing,
    /// The key presented is not configured.
    Unknown,
}

impl Refusal {
    /// The API error (`UNAUTHENTICATED`).
    pub fn error(&self) -> ApiError {
        ApiError::Unauthenticated(match self {
            Refusal::Missing => "this server needs an API key: send it as `Authorization: Bearer KEY` (or `x-api-key: KEY`)".to_owned(),
            Refusal::Unknown => "the API key is not known to this server (it was mistyped, or it was removed from the configuration)".to_owned(),
        })
    }
}

impl Auth {
    /// Whether no key is configured (every request is answered, with no role).
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The identity of the key a request presents in `headers` (`Authorization: Bearer`
    /// or `x-api-key`); `Ok(None)` when the server is open.
    pub fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<Option<Identity>, Refusal> {
        if self.is_open() {
            return Ok(None);
        }
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .or_else(|| {
                headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
            })
            .filter(|k| !k.is_empty())
            .ok_or(Refusal::Missing)?;
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // every key is compared, each in constant time: the time taken says nothing of
        // which key (or how much of one) matched
        let mut found = None;
        for (i, key) in self.keys.iter().enumerate() {
            if constant_time_eq(&key.hash, &hash) {
                found = Some(i);
            }
        }
        let key = found.map(|i| &self.keys[i]).ok_or(Refusal::Unknown)?;
        let role = self.roles.get(&key.role).cloned().ok_or(Refusal::Unknown)?;
        let caller = (!role.unscoped)
            .then(|| Arc::new(Caller::new(key.role.clone(), key.attributes.clone())));
        Ok(Some(Identity {
            key: key.name.clone(),
            role,
            caller,
        }))
    }

    /// Checks the roles' allow lists against the served models: an unknown metric or
    /// dimension of a served model is a configuration error naming the role; a model that is
    /// not served is only logged (`--only` may leave it out).
    pub fn check_against(&self, models: &[crate::semantic::Model]) -> Result<(), Error> {
        for role in self.roles.values() {
            let named = role.models.iter().flatten().chain(role.allow.keys());
            for m in named {
                if !models.iter().any(|x| &x.name == m) {
                    tracing::warn!(role = %role.name, model = %m, "a role names a model that is not served");
                }
            }
            for (m, access) in &role.allow {
                let Some(model) = models.iter().find(|x| &x.name == m) else {
                    continue;
                };
                for metric in access.metrics.iter().flatten() {
                    if model.metric(metric).is_none() {
                        return Err(Error::Config(format!(
                            "auth.roles.{}.allow.{m}.metrics: the model {m} has no metric {metric:?}",
                            role.name
                        )));
                    }
                }
                for dim in access.dimensions.iter().flatten() {
                    if model.dimension(dim).is_none() {
                        return Err(Error::Config(format!(
                            "auth.roles.{}.allow.{m}.dimensions: the model {m} has no dimension {dim:?}",
                            role.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether `a` and `b` are equal, looking at every byte whatever differs.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// The stored form of `key`: `sha256:` and the hex SHA-256 of its text.
pub fn hash_key(key: &str) -> String {
    format!("{HASH_PREFIX}{}", hex(&Sha256::digest(key.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 32 bytes of a stored hash (`sha256:` and 64 hex digits).
pub fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let digits = text.strip_prefix(HASH_PREFIX).ok_or_else(|| {
        format!(
            "{text:?} is not a key hash: it must start with {HASH_PREFIX} (tally key new prints it)"
        )
    })?;
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{text:?} is not a key hash: {HASH_PREFIX} must be followed by 64 hex digits"
        ));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16)
            .map_err(|e| format!("{text:?}: {e}"))?;
    }
    Ok(out)
}

/// A fresh random key: [`KEY_PREFIX`] and 32 random bytes in hex.
pub fn new_key() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Config(format!("no randomness: {e}")))?;
    Ok(format!("{KEY_PREFIX}{}", hex(&bytes)))
}

/// The TOML lines that configure `key` for `role` with `attributes` and an optional label
/// `name` (`tally key new`).
pub fn key_toml(
    key: &str,
    role: &str,
    attributes: &BTreeMap<String, Vec<String>>,
    name: Option<&str>,
) -> String {
    let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let mut out = "[[auth.keys]]\n".to_owned();
    if let Some(n) = name {
        out.push_str(&format!("name = {}\n", quote(n)));
    }
    out.push_str(&format!(
        "hash = {}\nrole = {}\n",
        quote(&hash_key(key)),
        quote(role)
    ));
    if !attributes.is_empty() {
        let items: Vec<String> = attributes
            .iter()
            .map(|(k, vs)| {
                let vs: Vec<String> = vs.iter().map(|v| quote(v)).collect();
                format!("{k} = [{}]", vs.join(", "))
            })
            .collect();
        out.push_str(&format!("attributes = {{ {} }}\n", items.join(", ")));
    }
    out
}

/// Parses `NAME=VALUE` attributes (`--attr`); a name given twice collects its values.
pub fn parse_attributes(items: &[String]) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in items {
        let Some((name, value)) = item.split_once('=') else {
            return Err(Error::Input(format!(
                "--attr {item:?} is not NAME=VALUE (e.g. branch_id=b1)"
            )));
        };
        let name = name.trim();
        if !is_name(name) {
            return Err(Error::Input(format!(
                "--attr {item:?}: the name must be letters, digits and _"
            )));
        }
        out.entry(name.to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    Ok(out)
}

/// Whether `s` is a name of letters, digits and `_`, not starting with a digit.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_round_trips_and_keys_differ() {
        let key = new_key().expect("randomness");
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 64);
        assert_ne!(key, new_key().expect("randomness"));
        let hash = hash_key(&key);
        let bytes = parse_hash(&hash).expect("a hash");
        assert_eq!(hash, format!("{HASH_PREFIX}{}", hex(&bytes)));
        assert!(
            parse_hash("sha256:zz")
                .expect_err("too short")
                .contains("64 hex digits")
        );
        assert!(
            parse_hash(&key)
                .expect_err("no prefix")
                .contains("must start with")
        );
        // the known value of SHA-256("abc")
        assert_eq!(
            hash_key("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_compares_every_byte() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] = 8;
        assert!(!constant_time_eq(&a, &b));
    }

    #[test]
    fn attributes_collect_repeated_names() {
        let a =
            parse_attributes(&["branch_id=b1".into(), "branch_id=b2".into()]).expect("attributes");
        assert_eq!(a["branch_id"], vec!["b1".to_owned(), "b2".to_owned()]);
        assert!(parse_attributes(&["nope".into()]).is_err());
        let toml = key_toml("k", "analyst", &a, Some("alice"));
        assert!(
            toml.contains("attributes = { branch_id = [\"b1\", \"b2\"] }"),
            "{toml}"
        );
        assert!(
            toml.starts_with("[[auth.keys]]\nname = \"alice\"\n"),
            "{toml}"
        );
    }
}
