//! Who is asking: the caller of a request as authentication established it, and the tenant
//! attributes that row policies of the models bind into every statement run for it.

use std::collections::BTreeMap;

/// The caller of a request: its role's name and its tenant attributes.
///
/// The HTTP layer builds it from a verified API key (or leaves it out for an open server);
/// the engine reads the attributes when a table of a model has a row policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    /// The role's name (logs, explain, cache keys).
    pub role: String,
    /// Tenant attributes by name: one value for an equality, several for a list.
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl Caller {
    /// A caller of role `role` with `attributes`.
    pub fn new(role: impl Into<String>, attributes: BTreeMap<String, Vec<String>>) -> Caller {
        Caller {
            role: role.into(),
            attributes,
        }
    }

    /// The values of the attribute `name`, if the caller has it.
    pub fn attribute(&self, name: &str) -> Option<&[String]> {
        self.attributes.get(name).map(Vec::as_slice)
    }
}
