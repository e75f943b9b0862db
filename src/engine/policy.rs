//! Row policies at run time: whether a session's statements read a model's tables through
//! their policies (a caller with tenant attributes, a model with policies), and the
//! `FORBIDDEN` error when the caller lacks an attribute a policy needs.

use super::Session;
use crate::error::ApiError;
use crate::plan::{Attributes, Param};
use crate::semantic::Model;

/// The caller's attributes when `model`'s row policies apply to `session`: it has a caller
/// (an unscoped role or an open server has none) and the model has policies.
pub fn scope<'a>(session: &'a Session, model: &Model) -> Option<&'a Attributes> {
    if model.policies.is_empty() {
        return None;
    }
    session.caller().map(|c| &c.attributes)
}

/// `FORBIDDEN` naming the model, the table and the attribute when `attributes` cannot bind
/// every caller parameter of `params`.
pub fn check(model: &Model, params: &[Param], attributes: &Attributes) -> Result<(), ApiError> {
    crate::plan::check_caller(params, attributes).map_err(|d| {
        ApiError::Forbidden(format!(
            "model {}, table {}: {}",
            model.name, d.table, d.message
        ))
    })
}

impl Session {
    /// The statement of `sql` (every parameter a constant or a caller attribute) for the
    /// session's dialect, reading `model`'s tables through their row policies when the
    /// session's caller is scoped ([`scope`]); `what` names it in errors. A caller lacking
    /// an attribute a policy of a table it reads needs is `FORBIDDEN`.
    pub fn statement(
        &self,
        model: &str,
        sql: crate::sql::Sql,
        what: &str,
    ) -> Result<sea_orm::Statement, ApiError> {
        let backend = self.db().get_database_backend();
        let scoped = self
            .model(model)
            .and_then(|m| scope(self, m).map(|a| (m.clone(), a)));
        let Some((m, attributes)) = scoped else {
            return sql
                .to_statement(self.dialect(), backend)
                .map_err(|e| ApiError::internal(what, e));
        };
        let sql = crate::sql::policy::apply(sql, &m.policies, self.dialect());
        check(&m, sql.params(), attributes)?;
        sql.to_statement_for(self.dialect(), backend, Some(attributes))
            .map_err(|e| ApiError::internal(what, e))
    }
}
