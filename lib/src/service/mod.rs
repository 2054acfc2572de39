//! What the API does, one function per route: each takes the state, the verified caller and
//! typed input, checks access, and returns the response body. Handlers call exactly one of these.

pub mod access;
pub mod agents;
pub mod analysis;
pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod calls;
pub mod campaigns;
pub mod dialer;
pub mod do_not_call;
pub mod establishments;
pub mod health;
pub mod hosts;
pub mod ingest;
pub mod integrations;
pub mod lead_import;
pub mod leads;
pub mod members;
pub mod phone_numbers;
pub mod readiness;
pub mod recordings;
pub mod reports;
pub mod routing;
pub mod runtimes;
pub mod sweeper;
pub mod tool_proxy;
pub mod webhooks;
pub mod whatsapp;

use crate::ids::EstablishmentId;
use crate::store::records::EstablishmentRecord;
use crate::time::Timestamp;
use serde::Serialize;

/// An establishment as the API shows it (Appendix A.2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EstablishmentView {
    pub id: EstablishmentId,
    pub name: String,
    pub timezone: String,
    pub locale: String,
    pub created_at: Timestamp,
}

impl From<&EstablishmentRecord> for EstablishmentView {
    fn from(e: &EstablishmentRecord) -> Self {
        Self {
            id: e.id.clone(),
            name: e.name.to_string(),
            timezone: e.timezone.as_str().to_owned(),
            locale: e.locale.as_str().to_owned(),
            created_at: e.created_at,
        }
    }
}
