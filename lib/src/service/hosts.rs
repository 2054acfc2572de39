//! The host agents' side of runtimes, authenticated by host tokens: host registration, the
//! runtime specs a host converges to (paged), command outcomes, and health reports applied
//! per runtime.

use crate::app::App;
use crate::auth::secret_token;
use crate::error::{Error, Result};
use crate::hostapi::{
    self, CommandResult, HealthOutcome, HealthReportIn, HealthResult, HealthResults,
    MAX_AGENT_INFO_BYTES, MAX_HEALTH_REPORTS, MAX_ISSUE_CHARS, MAX_ISSUES, RuntimeHealth,
    RuntimeSpec, RuntimeSpecs,
};
use crate::ids::{CommandId, RuntimeId};
use crate::store::records::{HostRecord, RuntimeRecord};
use crate::time::Timestamp;
use futures::StreamExt;

/// The host `id` if `token` is its token; `401` otherwise (an unknown host looks the same).
async fn host_access(app: &App, id: &str, token: &str) -> Result<HostRecord> {
    let host = app.store.host(id).await?;
    match host {
        Some(h) if secret_token::matches(token, &h.token_hash) => Ok(h),
        _ => Err(Error::Unauthorized("invalid host token".into())),
    }
}

/// What the host runs `r` with: its variables (the sealed ones opened) and the platform's.
async fn spec(app: &App, r: &RuntimeRecord) -> Result<RuntimeSpec> {
    let mut env = r.env.vars().clone();
    if !r.sealed_env.is_empty() {
        let context = crate::service::runtimes::env_context(&r.establishment_id, &r.id);
        for (key, sealed) in &r.sealed_env {
            let value = app.envelope()?.open(&context, sealed).await?;
            let value = String::from_utf8(value)
                .map_err(|_| Error::internal("a sealed variable is not UTF-8"))?;
            env.insert(key.clone(), value);
        }
    }
    env.insert(hostapi::ENV_RUNTIME_ID.into(), r.id.to_string());
    env.insert(
        hostapi::ENV_ESTABLISHMENT_ID.into(),
        r.establishment_id.to_string(),
    );
    env.insert(
        hostapi::ENV_INGEST_URL.into(),
        app.config.ingest_url.clone(),
    );
    env.insert(
        hostapi::ENV_TOOL_PROXY_URL.into(),
        app.config.tool_proxy_url.clone(),
    );
    env.insert(
        hostapi::ENV_INGEST_TOKEN.into(),
        secret_token::ingest_token(&app.config, &r.id)?,
    );
    env.insert(
        hostapi::ENV_PORT.into(),
        hostapi::CONTAINER_PORT.to_string(),
    );
    Ok(RuntimeSpec {
        runtime_id: r.id.clone(),
        establishment_id: r.establishment_id.clone(),
        container_name: r.container_name.clone(),
        image: r.image.as_str().to_owned(),
        env,
        host_port: r.host_port,
        public_url: r.public_url.as_ref().map(|u| u.as_str().to_owned()),
        desired: r.desired,
        last_command_id: r.last_command_id.clone(),
        last_action: r.last_action,
    })
}

/// `GET /hosts/{host}/runtimes`: what the host should run (for reconciliation).
#[tracing::instrument(skip_all, fields(host_id = host))]
pub async fn host_specs(
    app: &App,
    host: &str,
    token: &str,
    params: crate::http::ListParams,
) -> Result<RuntimeSpecs> {
    let limit = params.limit()?;
    host_access(app, host, token).await?;
    let page = app
        .store
        .host_runtimes_page(host, limit, params.cursor.as_deref())
        .await?;
    let items = futures::future::try_join_all(page.items.iter().map(|r| spec(app, r))).await?;
    Ok(RuntimeSpecs {
        items,
        cursor: page.cursor,
    })
}

/// The host's runtime `id`, or `404` when it is not on this host.
async fn host_runtime(app: &App, host: &str, id: &RuntimeId) -> Result<RuntimeRecord> {
    app.store
        .runtime(id)
        .await?
        .filter(|r| r.host_id == host)
        .ok_or(Error::NotFound("runtime"))
}

/// `GET /hosts/{host}/runtimes/{id}`: one runtime's spec (before executing a command).
#[tracing::instrument(skip_all, fields(host_id = host, runtime_id = %id))]
pub async fn host_spec(app: &App, host: &str, token: &str, id: &RuntimeId) -> Result<RuntimeSpec> {
    host_access(app, host, token).await?;
    spec(app, &host_runtime(app, host, id).await?).await
}

/// `POST /hosts/{host}/commands/{command}/result`: a command's outcome (idempotent).
#[tracing::instrument(skip_all, fields(host_id = host, command_id = %cmd))]
pub async fn host_command_result(
    app: &App,
    host: &str,
    token: &str,
    cmd: &CommandId,
    result: CommandResult,
) -> Result<()> {
    host_access(app, host, token).await?;
    let (runtime, command) = app
        .store
        .runtime_and_command(&result.runtime_id, cmd)
        .await?;
    let runtime = runtime
        .filter(|r| r.host_id == host)
        .ok_or(Error::NotFound("runtime"))?;
    let command = command.ok_or(Error::NotFound("command"))?;
    app.store
        .record_command_result(&runtime, &command, &result)
        .await
}

/// `POST /hosts/{host}/health`: what the host saw of its runtimes.
#[tracing::instrument(skip_all, fields(host_id = host, reports = report.reports.len()))]
pub async fn host_health(
    app: &App,
    host: &str,
    token: &str,
    report: HealthReportIn,
) -> Result<HealthResults> {
    host_access(app, host, token).await?;
    if report.reports.len() > MAX_HEALTH_REPORTS {
        return Err(Error::invalid(
            "reports",
            format!("at most {MAX_HEALTH_REPORTS} per request; send several"),
        ));
    }
    let results = futures::stream::iter(report.reports.into_iter().enumerate())
        .map(|(index, raw)| async move {
            let runtime_id = raw
                .get("runtime_id")
                .and_then(|v| serde_json::from_value::<RuntimeId>(v.clone()).ok());
            let outcome = match runtime_health(raw) {
                Ok(health) => match app.store.record_health(host, &health).await {
                    Ok(true) => Ok(HealthOutcome::Applied),
                    Ok(false) => {
                        tracing::warn!(host, runtime_id = %health.runtime_id, "health report for a runtime not on this host or not current");
                        Ok(HealthOutcome::Ignored)
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(outcome) => Ok(HealthResult {
                    index,
                    runtime_id,
                    outcome,
                    error: None,
                }),
                // Our own failures fail the request (the host reports again); the report's
                // own faults are answered for it alone.
                Err(e) if e.code().0.is_server_error() => Err(e),
                Err(e) => Ok(HealthResult {
                    index,
                    runtime_id,
                    outcome: HealthOutcome::Rejected,
                    error: serde_json::to_value(e.envelope()).ok(),
                }),
            }
        })
        .buffered(HEALTH_WRITES_AT_ONCE)
        .collect::<Vec<Result<HealthResult>>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(HealthResults { results })
}

/// Runtime reports of one health report written at once.
const HEALTH_WRITES_AT_ONCE: usize = 8;

/// One runtime's report, checked: its shape, and sizes DynamoDB and the status API can carry.
fn runtime_health(raw: serde_json::Value) -> Result<RuntimeHealth> {
    let mut health: RuntimeHealth = crate::http::from_value(raw)?;
    if health.container_state.is_empty() || health.container_state.len() > 64 {
        return Err(Error::invalid(
            "container_state",
            "must be 1 to 64 characters",
        ));
    }
    if health.issues.len() > MAX_ISSUES
        || health
            .issues
            .iter()
            .any(|i| i.chars().count() > MAX_ISSUE_CHARS)
    {
        return Err(Error::invalid(
            "issues",
            format!("at most {MAX_ISSUES} of at most {MAX_ISSUE_CHARS} characters"),
        ));
    }
    if let Some(info) = &health.agent_info {
        let size = info.to_string().len();
        if size > MAX_AGENT_INFO_BYTES {
            return Err(Error::invalid(
                "agent_info",
                format!("is {size} bytes; at most {MAX_AGENT_INFO_BYTES}"),
            ));
        }
        crate::domain::storable("agent_info", info, 0)?;
    }
    health.issues.dedup();
    Ok(health)
}

/// Registers (or re-registers, rotating its token) a runtime host; returns the token, shown
/// this once. Used by `callplane-admin register-host` and the tests.
pub async fn register_host(
    app: &App,
    host_id: &str,
    queue_url: &str,
    public_host: &str,
    ports: (u16, u16),
) -> Result<String> {
    let valid_id = !host_id.is_empty()
        && host_id.len() <= 64
        && host_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_id {
        return Err(Error::invalid(
            "host_id",
            "1-64 of letters, digits, - and _",
        ));
    }
    if ports.0 == 0 || ports.0 > ports.1 {
        return Err(Error::invalid("ports", "need 1 <= from <= to"));
    }
    let (token, token_hash) = secret_token::generate()?;
    app.store
        .register_host(&HostRecord {
            host_id: host_id.to_owned(),
            queue_url: queue_url.to_owned(),
            public_host: public_host.to_owned(),
            port_from: ports.0,
            port_to: ports.1,
            token_hash,
            runtime_count: 0,
            created_at: Timestamp::now(),
            gsi1pk: crate::store::keys::HOSTS_INDEX.to_owned(),
            gsi1sk: host_id.to_owned(),
        })
        .await?;
    Ok(token)
}
