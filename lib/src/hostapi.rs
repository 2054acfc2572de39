//! The wire contract between the control plane and the runtime host agents: the command
//! message on a host's SQS queue, the runtime spec a host converges to, and what hosts report
//! back (command outcomes, health). Both sides use these types, so they cannot drift.

use crate::domain::{DesiredState, RuntimeAction};
use crate::ids::{CommandId, EstablishmentId, RuntimeId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The port a runtime listens on inside its container (the host port maps to it).
pub const CONTAINER_PORT: u16 = 8080;
/// Label carrying the runtime id on every container a host agent manages.
pub const LABEL_RUNTIME_ID: &str = "callplane.runtime_id";
/// Label carrying the id of the host whose agent manages the container (several agents may
/// share one engine in tests and during a host migration; each touches only its own).
pub const LABEL_HOST_ID: &str = "callplane.host_id";
/// Label carrying the establishment id.
pub const LABEL_ESTABLISHMENT_ID: &str = "callplane.establishment_id";

/// Variables the platform injects into every runtime container.
pub const ENV_RUNTIME_ID: &str = "CALLPLANE_RUNTIME_ID";
/// The establishment the runtime serves.
pub const ENV_ESTABLISHMENT_ID: &str = "CALLPLANE_ESTABLISHMENT_ID";
/// Where the runtime posts call events (Appendix B.1).
pub const ENV_INGEST_URL: &str = "CALLPLANE_INGEST_URL";
/// The tool proxy's base URL (`…/tool-proxy`): business tools go through it (PRD §9.4).
pub const ENV_TOOL_PROXY_URL: &str = "CALLPLANE_TOOL_PROXY_URL";
/// The runtime's bearer token for the ingest endpoint (and the tool proxy).
pub const ENV_INGEST_TOKEN: &str = "CALLPLANE_INGEST_TOKEN";
/// The port to listen on inside the container.
pub const ENV_PORT: &str = "PORT";

/// The container name of an establishment's runtime (PRD D.5).
pub fn container_name(est: &EstablishmentId) -> String {
    format!("agent_rt_{est}")
}

/// One message on a host's command queue. The host converges the runtime to its current
/// desired state (fetched from the control plane), so redelivered, duplicated or reordered
/// messages all end in the same place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMessage {
    pub command_id: CommandId,
    pub runtime_id: RuntimeId,
    pub action: RuntimeAction,
}

/// What a host needs to run a runtime (`GET /hosts/{host}/runtimes[/{id}]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuntimeSpec {
    pub runtime_id: RuntimeId,
    pub establishment_id: EstablishmentId,
    pub container_name: String,
    pub image: String,
    /// The complete environment, platform variables included.
    pub env: BTreeMap<String, String>,
    pub host_port: u16,
    /// The runtime's public HTTPS address, which the host's TLS front routes to `host_port`
    /// (`runtime-host-agent tls-front`); absent for runtimes reached directly (local stack).
    #[serde(default)]
    pub public_url: Option<String>,
    pub desired: DesiredState,
    /// The newest command; a host reports older ones as superseded.
    pub last_command_id: CommandId,
    pub last_action: RuntimeAction,
}

/// `GET /hosts/{host}/runtimes`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuntimeSpecs {
    pub items: Vec<RuntimeSpec>,
    /// The next page (`?cursor=`); `null` on the last.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// How a command ended on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CommandOutcome {
    /// The runtime reached the command's state.
    Succeeded,
    /// The attempt failed (`final_attempt`: no more retries; the message goes to the DLQ).
    Failed,
    /// A newer command replaced it before it ran; the runtime was converged to that one's state.
    Superseded,
}

/// `POST /hosts/{host}/commands/{command}/result`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandResult {
    pub runtime_id: RuntimeId,
    pub outcome: CommandOutcome,
    #[serde(default)]
    pub error: Option<String>,
    /// 1 for the first delivery.
    pub attempt: u32,
    /// For failures: whether the host gives up (the message is dead-lettered).
    #[serde(default)]
    pub final_attempt: bool,
}

/// What a host saw of one runtime at one poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuntimeHealth {
    pub runtime_id: RuntimeId,
    /// The runtime's establishment (its routing copy of this report lives there).
    pub establishment_id: EstablishmentId,
    /// Docker's state of the container (`running`, `exited`, `created`, …) or `missing`.
    pub container_state: String,
    /// Whether `/readyz` answered at all.
    pub reachable: bool,
    pub ready: bool,
    pub issues: Vec<String>,
    /// The runtime's `/info` body, when it answered.
    pub agent_info: Option<serde_json::Value>,
    pub checked_at: Timestamp,
}

/// `POST /hosts/{host}/health`, as a host sends it: at most [`MAX_HEALTH_REPORTS`] reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HealthReport {
    pub reports: Vec<RuntimeHealth>,
}

/// Most runtime reports in one health report (a host with more sends several).
pub const MAX_HEALTH_REPORTS: usize = 100;
/// Largest runtime `/info` body kept, serialized; the host agent reads no more than this.
pub const MAX_AGENT_INFO_BYTES: usize = 8 * 1024;
/// Most readiness issues kept per runtime, and the longest one.
pub const MAX_ISSUES: usize = 20;
pub const MAX_ISSUE_CHARS: usize = 500;

/// `POST /hosts/{host}/health` as the control plane reads it: each report on its own, so that
/// one bad report (unparseable, oversized, unstorable) is refused alone and every other
/// runtime on the host is still recorded.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct HealthReportIn {
    pub reports: Vec<serde_json::Value>,
}

/// What became of one runtime report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthOutcome {
    /// Recorded on the runtime and its routing copy.
    Applied,
    /// About a runtime not on this host, or no longer its establishment's.
    Ignored,
    /// Refused; `error` says why.
    Rejected,
}

/// The answer to a health report: one result per report, in order.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthResults {
    pub results: Vec<HealthResult>,
}

/// One report's result.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthResult {
    pub index: usize,
    pub runtime_id: Option<RuntimeId>,
    pub outcome: HealthOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}
