//! The `campaigns` function: defining, previewing, starting, pausing and cancelling
//! campaigns, and reading them with their progress and enrollments (PRD §7.6, Appendix A.6).
//! Each handler extracts, calls one `callplane::service::campaigns` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, Document, Path, Query, finish};
use callplane::ids::CampaignId;
use callplane::openapi::{ReadErrors, WriteErrors};
use callplane::service::campaigns::{
    self, CampaignListParams, CampaignView, CreateCampaign, EnrollmentListParams, EnrollmentView,
    Preview, UpdateCampaign,
};
use callplane::store::Page;
use callplane::{AppState, Result};

// The function's routes and their descriptions (PRD §7.6, Appendix A.6).
callplane::described_routes!(
    create,
    list,
    show,
    update,
    start,
    pause,
    cancel,
    preview,
    enrollments
);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("campaigns", routes(), api, Document::OwnPart, state)
}

/// Define a campaign (admin): A.6's fields and the optional dialing settings. It starts
/// `created`; nothing is dialed before `POST /campaigns/{campaign_id}/start`.
#[utoipa::path(
    post, path = "/campaigns",
    request_body = CreateCampaign,
    security(("user_token" = [])),
    responses((status = 201, description = "Created (`status: created`)", body = CampaignView), WriteErrors)
)]
async fn create(
    State(app): State<AppState>,
    caller: Principal,
    ApiJson(req): ApiJson<CreateCampaign>,
) -> Result<(StatusCode, Json<CampaignView>)> {
    campaigns::create(&app, &caller, req)
        .await
        .map(|c| (StatusCode::CREATED, Json(c)))
}

/// An establishment's campaigns, newest first (viewer and up).
#[utoipa::path(
    get, path = "/campaigns",
    params(CampaignListParams),
    security(("user_token" = [])),
    responses((status = 200, body = Page<CampaignView>), ReadErrors)
)]
async fn list(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<CampaignListParams>,
) -> Result<Json<Page<CampaignView>>> {
    campaigns::list(&app, &caller, params).await.map(Json)
}

/// A campaign with its progress (viewer and up).
#[utoipa::path(
    get, path = "/campaigns/{campaign_id}",
    params(("campaign_id" = CampaignId, Path, description = "The campaign")),
    security(("user_token" = [])),
    responses((status = 200, body = CampaignView), ReadErrors)
)]
async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CampaignId>,
) -> Result<Json<CampaignView>> {
    campaigns::get(&app, &caller, &id).await.map(Json)
}

/// Edit a campaign while it is `created` or `paused` (admin); 409 otherwise.
#[utoipa::path(
    patch, path = "/campaigns/{campaign_id}",
    params(("campaign_id" = CampaignId, Path, description = "The campaign")),
    request_body = UpdateCampaign,
    security(("user_token" = [])),
    responses((status = 200, body = CampaignView), WriteErrors)
)]
async fn update(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CampaignId>,
    ApiJson(req): ApiJson<UpdateCampaign>,
) -> Result<Json<CampaignView>> {
    campaigns::update(&app, &caller, &id, req).await.map(Json)
}

/// Start a campaign, enrolling the leads its filter matches now, or resume a paused one
/// (operator and up). 422 `no_leads_to_dial` with the preview when none would be dialed; 409
/// for a completed or cancelled campaign.
#[utoipa::path(
    post, path = "/campaigns/{campaign_id}/start",
    params(("campaign_id" = CampaignId, Path, description = "The campaign")),
    security(("user_token" = [])),
    responses((status = 200, body = CampaignView), WriteErrors)
)]
async fn start(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CampaignId>,
) -> Result<Json<CampaignView>> {
    campaigns::start(&app, &caller, &id).await.map(Json)
}

/// Pause a running campaign (operator and up): no new dials; calls in flight finish.
#[utoipa::path(
    post, path = "/campaigns/{campaign_id}/pause",
    params(("campaign_id" = CampaignId, Path, description = "The campaign")),
    security(("user_token" = [])),
    responses((status = 200, body = CampaignView), WriteErrors)
)]
async fn pause(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CampaignId>,
) -> Result<Json<CampaignView>> {
    campaigns::pause(&app, &caller, &id).await.map(Json)
}

/// Cancel a campaign for good (admin): calls in flight finish, waiting leads are let go.
#[utoipa::path(
    post, path = "/campaigns/{campaign_id}/cancel",
    params(("campaign_id" = CampaignId, Path, description = "The campaign")),
    security(("user_token" = [])),
    responses((status = 200, body = CampaignView), WriteErrors)
)]
async fn cancel(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CampaignId>,
) -> Result<Json<CampaignView>> {
    campaigns::cancel(&app, &caller, &id).await.map(Json)
}

/// Which leads start would enroll now, and which it would skip and why (viewer and up).
#[utoipa::path(
    get, path = "/campaigns/{campaign_id}/preview",
    params(("campaign_id" = CampaignId, Path, description = "The campaign")),
    security(("user_token" = [])),
    responses((status = 200, body = Preview), ReadErrors)
)]
async fn preview(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CampaignId>,
) -> Result<Json<Preview>> {
    campaigns::preview(&app, &caller, &id).await.map(Json)
}

/// The campaign's leads with their attempts, in lead order (viewer and up).
#[utoipa::path(
    get, path = "/campaigns/{campaign_id}/enrollments",
    params(("campaign_id" = CampaignId, Path, description = "The campaign"), EnrollmentListParams),
    security(("user_token" = [])),
    responses((status = 200, body = Page<EnrollmentView>), ReadErrors)
)]
async fn enrollments(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CampaignId>,
    Query(params): Query<EnrollmentListParams>,
) -> Result<Json<Page<EnrollmentView>>> {
    campaigns::enrollments(&app, &caller, &id, params)
        .await
        .map(Json)
}
