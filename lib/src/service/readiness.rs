//! Whether a runtime takes a new call now: the one rule the inbound webhook (which routes or
//! apologises) and outbound calls (which refuse) share, from the runtime's lifecycle status and
//! its host's latest health report.

use crate::domain::RuntimeStatus;
use crate::hostapi;
use crate::time::Timestamp;

/// A host report older than this makes the status say so, and the runtime take no calls.
pub const HEALTH_STALE_SECS: i64 = 30;

/// Whether a runtime in `status` whose host last reported `health` takes a new call at `now`;
/// `Err` says why not (the inbound webhook logs it; outbound calls answer it).
pub fn takes_calls(
    status: RuntimeStatus,
    health: Option<&hostapi::RuntimeHealth>,
    now: Timestamp,
) -> Result<(), String> {
    if status != RuntimeStatus::Running {
        return Err(format!("the runtime is {}", status.as_str()));
    }
    let Some(health) = health else {
        return Err("the runtime's host has not reported on it yet".into());
    };
    if !health.reachable {
        return Err(format!(
            "the runtime is unreachable ({})",
            health.container_state
        ));
    }
    if !health.ready {
        return Err(format!(
            "the runtime is not ready: {}",
            health.issues.join("; ")
        ));
    }
    let age = now.unix() - health.checked_at.unix();
    if age > HEALTH_STALE_SECS {
        return Err(format!("the runtime's last health report is {age} s old"));
    }
    let draining = health
        .agent_info
        .as_ref()
        .and_then(|info| info.get("draining"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if draining {
        return Err("the runtime is draining".into());
    }
    Ok(())
}
