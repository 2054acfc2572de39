//! An establishment's do-not-call list (seed 003's DNC): numbers it never calls and whose
//! calls it refuses. Viewers read it, operators add to it (an opt-out must be quick to record),
//! admins take numbers off it. Every change is audited.

use super::access::require_member;
use crate::app::App;
use crate::auth::Principal;
use crate::domain::{E164, Role};
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{EstablishmentId, UserId};
use crate::store::Page;
use crate::store::records::DoNotCallRecord;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// `POST /establishments/{id}/do-not-call` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDoNotCall {
    pub e164: E164,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A do-not-call entry as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DoNotCallView {
    pub e164: E164,
    pub reason: Option<String>,
    /// The member who added it; null when the caller opted out during a call (`call_id`).
    pub added_by: Option<UserId>,
    pub added_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<crate::ids::CallId>,
}

impl From<DoNotCallRecord> for DoNotCallView {
    fn from(r: DoNotCallRecord) -> Self {
        Self {
            e164: r.e164,
            reason: r.reason,
            added_by: r.added_by,
            added_at: r.added_at,
            call_id: r.call_id,
        }
    }
}

/// Adds a number; `(view, true)` when it was new, `(view, false)` when it was there already.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn add(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    req: AddDoNotCall,
) -> Result<(DoNotCallView, bool)> {
    let reason = req
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(Error::invalid("reason", "must be at most 200 characters"));
    }
    let user = require_member(app, principal, est, Role::Operator, "establishment").await?;
    let entry = DoNotCallRecord {
        e164: req.e164,
        reason,
        added_by: Some(user.id.clone()),
        added_at: Timestamp::now(),
        call_id: None,
    };
    let created = app
        .store
        .add_do_not_call(est, &entry, (&user).into())
        .await?;
    // The number's lead, if it has one, shows it from now on.
    app.store.mark_lead_do_not_call(est, &entry.e164).await?;
    Ok((entry.into(), created))
}

/// The list, by number (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn list(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    params: ListParams,
) -> Result<Page<DoNotCallView>> {
    let limit = params.limit()?;
    require_member(app, principal, est, Role::Viewer, "establishment").await?;
    Ok(app
        .store
        .do_not_call_page(est, limit, params.cursor.as_deref())
        .await?
        .map(DoNotCallView::from))
}

/// Takes a number off the list (admins); 404 when it is not on it.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn remove(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    raw: &str,
) -> Result<()> {
    let e164 = E164::parse(raw).map_err(|why| Error::invalid("e164", why))?;
    let user = require_member(app, principal, est, Role::Admin, "establishment").await?;
    if app.store.remove_do_not_call(est, &e164, &user).await? {
        Ok(())
    } else {
        Err(Error::NotFound("do-not-call entry"))
    }
}
