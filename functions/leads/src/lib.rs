//! The `leads` function: importing leads from CSV files (inline or through a presigned
//! upload), following an import, and the leads themselves (PRD §7.6, Appendix A.6). Each
//! handler extracts, calls one `callplane::service` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, Document, ListParams, Path, Query, finish};
use callplane::ids::{ImportJobId, LeadId};
use callplane::leads::rows::RowError;
use callplane::openapi::{ReadErrors, WriteErrors};
use callplane::service::lead_import::{
    self, Accepted, ImportForm, ImportRequest, ImportView, StartImport, UploadUrl, UploadUrlRequest,
};
use callplane::service::leads::{self, LeadListParams, LeadPatch, LeadView};
use callplane::store::Page;
use callplane::{AppState, Result};

// The function's routes and their descriptions (PRD §7.6, Appendix A.6).
callplane::described_routes!(
    import,
    upload_url,
    import_status,
    import_errors,
    list,
    show,
    update,
    remove,
);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("leads", routes(), api, Document::OwnPart, state)
}

/// Import leads from a CSV (operator and up): inline as `multipart/form-data` (at most
/// 4 MiB), or a file uploaded through an upload URL (JSON, at most 50 MB).
#[utoipa::path(
    post, path = "/leads/import",
    request_body(content(
        (StartImport = "application/json"),
        (ImportForm = "multipart/form-data"),
    )),
    security(("user_token" = [])),
    responses((status = 202, description = "The import is queued; follow it at `GET /leads/import/{job_id}`", body = Accepted), WriteErrors)
)]
async fn import(
    State(app): State<AppState>,
    caller: Principal,
    req: ImportRequest,
) -> Result<(StatusCode, Json<Accepted>)> {
    lead_import::start(&app, &caller, req)
        .await
        .map(|accepted| (StatusCode::ACCEPTED, Json(accepted)))
}

/// A presigned URL to upload a large CSV to (operator and up).
#[utoipa::path(
    post, path = "/leads/import/upload-url",
    request_body = UploadUrlRequest,
    security(("user_token" = [])),
    responses((status = 200, description = "PUT the file to `upload_url`, then import it by `s3_key`", body = UploadUrl), WriteErrors)
)]
async fn upload_url(
    State(app): State<AppState>,
    caller: Principal,
    ApiJson(req): ApiJson<UploadUrlRequest>,
) -> Result<Json<UploadUrl>> {
    lead_import::upload_url(&app, &caller, req).await.map(Json)
}

/// An import's progress and counters (viewer and up).
#[utoipa::path(
    get, path = "/leads/import/{job_id}",
    params(("job_id" = ImportJobId, Path, description = "The import job")),
    security(("user_token" = [])),
    responses((status = 200, body = ImportView), ReadErrors)
)]
async fn import_status(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<ImportJobId>,
) -> Result<Json<ImportView>> {
    lead_import::get(&app, &caller, &id).await.map(Json)
}

/// The rows an import rejected, in file order (viewer and up).
#[utoipa::path(
    get, path = "/leads/import/{job_id}/errors",
    params(("job_id" = ImportJobId, Path, description = "The import job"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, description = "One entry per rejected row", body = Page<RowError>), ReadErrors)
)]
async fn import_errors(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<ImportJobId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<RowError>>> {
    lead_import::errors(&app, &caller, &id, params)
        .await
        .map(Json)
}

/// An establishment's leads, newest first, narrowed by status, campaign or a number or name
/// prefix (viewer and up).
#[utoipa::path(
    get, path = "/leads",
    params(LeadListParams),
    security(("user_token" = [])),
    responses((status = 200, description = "Leads: newest first, or in number or name order for a search", body = Page<LeadView>), ReadErrors)
)]
async fn list(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<LeadListParams>,
) -> Result<Json<Page<LeadView>>> {
    leads::list(&app, &caller, params).await.map(Json)
}

/// One lead (viewer and up).
#[utoipa::path(
    get, path = "/leads/{lead_id}",
    params(("lead_id" = LeadId, Path, description = "The lead")),
    security(("user_token" = [])),
    responses((status = 200, body = LeadView), ReadErrors)
)]
async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<LeadId>,
) -> Result<Json<LeadView>> {
    leads::get(&app, &caller, &id).await.map(Json)
}

/// Edit a lead (operator and up); `status: do_not_call` also puts its number on the
/// do-not-call list.
#[utoipa::path(
    patch, path = "/leads/{lead_id}",
    params(("lead_id" = LeadId, Path, description = "The lead")),
    request_body = LeadPatch,
    security(("user_token" = [])),
    responses((status = 200, body = LeadView), WriteErrors)
)]
async fn update(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<LeadId>,
    ApiJson(patch): ApiJson<LeadPatch>,
) -> Result<Json<LeadView>> {
    leads::patch(&app, &caller, &id, patch).await.map(Json)
}

/// Delete a lead (admin); audited.
#[utoipa::path(
    delete, path = "/leads/{lead_id}",
    params(("lead_id" = LeadId, Path, description = "The lead")),
    security(("user_token" = [])),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
async fn remove(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<LeadId>,
) -> Result<StatusCode> {
    leads::delete(&app, &caller, &id)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}
