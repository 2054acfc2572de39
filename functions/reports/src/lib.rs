//! The `reports` function: the dashboard's KPIs and needs-attention list, agent performance
//! the calls report and its CSV export (PRD §7.7, D.3). Every figure is read from the report aggregates
//! (`callplane::service::reports`); each handler extracts, calls one function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{Document, Query, finish};
use callplane::openapi::ReadErrors;
use callplane::service::reports::{
    self, AgentPerformance, AttentionParams, CallsReport, CallsReportParams, ExportParams,
    ExportView, KpiParams, Kpis, PerformanceParams,
};
use callplane::store::Page;
use callplane::store::records::{AttentionRecord, ExportStatus};
use callplane::{AppState, Result};

// The function's routes and their descriptions (PRD §7.7).
callplane::described_routes!(kpis, needs_attention, agent_performance, calls, export);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("reports", routes(), api, Document::OwnPart, state)
}

/// The dashboard's KPIs for `today`, `7d` or `30d` (viewer and up): live calls, calls,
/// answer, handoff and success rates, durations, sentiment mix, campaigns running, calls
/// needing attention. Computed at most every 15 s per establishment and range (a shared cache);
/// `computed_at` says when.
#[utoipa::path(
    get, path = "/dashboard/kpis",
    params(KpiParams),
    security(("user_token" = [])),
    responses((status = 200, body = Kpis), ReadErrors)
)]
async fn kpis(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<KpiParams>,
) -> Result<Json<Kpis>> {
    reports::kpis(&app, &caller, params).await.map(Json)
}

/// Ended calls an operator should look at, newest first (viewer and up): negative sentiment,
/// failed analysis, handoff, runtime error, ended by the sweeper.
#[utoipa::path(
    get, path = "/dashboard/needs-attention",
    params(AttentionParams),
    security(("user_token" = [])),
    responses((status = 200, body = Page<AttentionRecord>), ReadErrors)
)]
async fn needs_attention(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<AttentionParams>,
) -> Result<Json<Page<AttentionRecord>>> {
    reports::needs_attention(&app, &caller, params)
        .await
        .map(Json)
}

/// Agent performance over a period, per agent, version or day, with a daily series (viewer
/// and up). Days are the establishment's local days.
#[utoipa::path(
    get, path = "/reports/agent-performance",
    params(PerformanceParams),
    security(("user_token" = [])),
    responses((status = 200, body = AgentPerformance), ReadErrors)
)]
async fn agent_performance(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<PerformanceParams>,
) -> Result<Json<AgentPerformance>> {
    reports::agent_performance(&app, &caller, params)
        .await
        .map(Json)
}

/// Call volume over time (by local day or hour) or by status, direction or disposition,
/// with the period's totals and duration buckets (viewer and up).
#[utoipa::path(
    get, path = "/reports/calls",
    params(CallsReportParams),
    security(("user_token" = [])),
    responses((status = 200, body = CallsReport), ReadErrors)
)]
async fn calls(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<CallsReportParams>,
) -> Result<Json<CallsReport>> {
    reports::calls(&app, &caller, params).await.map(Json)
}

/// A CSV of the calls that began in the period (viewer and up), made by a job: the first
/// request starts it (202, `pending`); the same request again (within 5 minutes) answers the
/// same export, 200 with a presigned `download_url` once `ready`. Cells that look like
/// spreadsheet formulas are neutralised.
#[utoipa::path(
    get, path = "/reports/calls/export",
    params(ExportParams),
    security(("user_token" = [])),
    responses(
        (status = 200, description = "Ready (or failed, with `error`)", body = ExportView),
        (status = 202, description = "Being made; ask again", body = ExportView),
        ReadErrors
    )
)]
async fn export(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<ExportParams>,
) -> Result<(StatusCode, Json<ExportView>)> {
    reports::export(&app, &caller, params).await.map(|e| {
        let status = if e.status == ExportStatus::Pending {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        (status, Json(e))
    })
}
