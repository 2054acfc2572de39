//! The audit log of an establishment (admins only), newest first.

use super::access::{Actor, require_member};
use crate::app::App;
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::Result;
use crate::http::ListParams;
use crate::ids::{AuditId, EstablishmentId};
use crate::store::Page;
use crate::store::records::AuditRecord;
use crate::time::Timestamp;
use serde::Serialize;

/// What was acted on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// One audit entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub id: AuditId,
    pub establishment_id: EstablishmentId,
    /// The member who acted; null when a runtime acted (`actor_runtime_id`).
    pub actor: Option<Actor>,
    /// The runtime that acted through the tool proxy (a caller's opt-out, a handoff).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_runtime_id: Option<crate::ids::RuntimeId>,
    pub action: String,
    pub target: Target,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub at: Timestamp,
}

impl From<AuditRecord> for AuditView {
    fn from(a: AuditRecord) -> Self {
        Self {
            id: a.id,
            establishment_id: a.establishment_id,
            actor: a.actor_user_id.map(|user_id| Actor {
                user_id,
                email: a.actor_email.map(|e| e.to_string()).unwrap_or_default(),
            }),
            actor_runtime_id: a.actor_runtime_id,
            action: a.action,
            target: Target {
                kind: a.target_type,
                id: a.target_id,
            },
            before: a.before,
            after: a.after,
            at: a.at,
        }
    }
}

/// `GET /establishments/{id}/audit-log` (admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn list(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    params: ListParams,
) -> Result<Page<AuditView>> {
    let limit = params.limit()?;
    require_member(app, principal, est, Role::Admin, "establishment").await?;
    Ok(app
        .store
        .audit_log(est, limit, params.cursor.as_deref())
        .await?
        .map(AuditView::from))
}
