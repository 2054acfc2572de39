//! Who may touch what, in one place: the caller must be a member of the establishment a
//! resource belongs to, with a role that allows the action. A non-member gets `404` (the
//! resource does not exist for them), a member with a lower role `403`. The checks read the
//! caller's session (`store::Session`) on every request, so a role change or removal takes
//! effect on the very next one.

use crate::app::App;
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::ids::{EstablishmentId, UserId};
use crate::store::records::{AgentRecord, CallRecord, PhoneRecord, RuntimeRecord, UserRecord};
use serde::Serialize;

/// Who did something, as audit entries and deployments show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Actor {
    pub user_id: UserId,
    pub email: String,
}

/// The caller's account, if they are a member of `est` whose role allows `role`; a
/// non-member sees `404 {what}` (the resource does not exist for them).
pub(crate) async fn require_member(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    role: Role,
    what: &'static str,
) -> Result<UserRecord> {
    let session = app.store.session(principal, Some(est)).await?;
    if session.member.is_none() {
        return Err(Error::NotFound(what));
    }
    session.require(role)?;
    Ok(session.user)
}

/// A record that belongs to one establishment.
pub(crate) trait Owned {
    /// What the API calls it in a `404` (`"agent"`, `"call"`, …).
    const WHAT: &'static str;
    /// The establishment it belongs to.
    fn establishment(&self) -> &EstablishmentId;
}

/// A resource just loaded (`None`: it does not exist), if the caller's role in its
/// establishment allows `role`: the "load, then require membership" step of every route on
/// one resource. Missing and foreign resources are the same `404`.
pub(crate) async fn member_of<T: Owned>(
    app: &App,
    principal: &Principal,
    found: Option<T>,
    role: Role,
) -> Result<(UserRecord, T)> {
    let resource = found.ok_or(Error::NotFound(T::WHAT))?;
    let user = require_member(app, principal, resource.establishment(), role, T::WHAT).await?;
    Ok((user, resource))
}

impl Owned for AgentRecord {
    const WHAT: &'static str = "agent";
    fn establishment(&self) -> &EstablishmentId {
        &self.establishment_id
    }
}

impl Owned for PhoneRecord {
    const WHAT: &'static str = "phone number";
    fn establishment(&self) -> &EstablishmentId {
        &self.establishment_id
    }
}

impl Owned for RuntimeRecord {
    const WHAT: &'static str = "runtime";
    fn establishment(&self) -> &EstablishmentId {
        &self.establishment_id
    }
}

impl Owned for CallRecord {
    const WHAT: &'static str = "call";
    fn establishment(&self) -> &EstablishmentId {
        &self.establishment_id
    }
}
