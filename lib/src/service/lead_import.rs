//! Importing leads from a CSV (PRD §7.6, A.6): the upload (inline `multipart/form-data` up to
//! 4 MiB, or a presigned S3 PUT up to 50 MB), the job that reads it (`run`, the lead-import
//! worker's one call), and what the API shows of a job and its rejected rows.
//!
//! The job reads the file twice as a stream: once to count its rows (so progress is a real
//! fraction), once to import them in batches of [`BATCH_ROWS`]. Each batch is one
//! BatchGetItem (the leads and do-not-call entries of its numbers) and one TransactWriteItems
//! (its leads, its row errors, and the job's counters and resume point together), so a worker
//! that dies anywhere resumes after the last committed batch with exact counters and no lead
//! written twice. Rows before the resume point are only re-read to remember their numbers, so
//! a duplicate inside the file is still found on its later row.

use super::access::require_member;
use crate::app::App;
use crate::auth::Principal;
use crate::domain::{E164, ImportStatus, LeadStatus, Role};
use crate::error::{Error, Result};
use crate::http::{ApiJson, ListParams};
use crate::ids::{EstablishmentId, ImportJobId, LeadId};
use crate::leads::rows::{ImportError, LeadRow, RowError};
use crate::leads::stream::{Row, RowStream};
use crate::store::records::{ImportFailure, ImportJobRecord, LeadRecord};
use crate::store::{BatchConflict, ImportBatch, ImportCounts, LeadWrite, Page};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Largest file an import reads (a presigned upload).
pub const MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;
/// Largest body `POST /leads/import` takes inline as `multipart/form-data`: API Gateway
/// hands a multipart body to Lambda base64-encoded, and 4 MiB encoded (5.6 MB) stays under
/// Lambda's 6 MB request limit.
pub const MAX_INLINE_BYTES: usize = 4 * 1024 * 1024;
/// How long a presigned upload URL works.
pub const UPLOAD_URL_TTL_SECS: i64 = 15 * 60;
/// How long a job and its row errors are kept.
pub const JOB_TTL_SECS: i64 = 30 * 24 * 3600;
/// Rows per batch: their 99 lookups fit two BatchGetItem requests' worth of keys in one, and
/// their writes plus the job's update fit one transaction (100 items).
pub const BATCH_ROWS: usize = 99;
/// Largest lead an import writes (its text, roughly as DynamoDB counts it): a batch of
/// [`BATCH_ROWS`] of them stays under a transaction's 4 MB.
pub const MAX_LEAD_BYTES: usize = 32 * 1024;
/// Times a batch is recomputed when its leads changed under it before the job is retried.
const BATCH_ATTEMPTS: usize = 5;

/// Where an establishment's lead files are uploaded: `uploads/{est}/leads/`.
pub fn upload_prefix(est: &EstablishmentId) -> String {
    format!("uploads/{est}/leads/")
}

/// `POST /leads/import/upload-url` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadUrlRequest {
    pub establishment_id: EstablishmentId,
    /// The file's name (kept in the object key and on the job).
    pub filename: String,
}

/// Where to PUT the file, and the key to import it by.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadUrl {
    /// A presigned S3 URL: `PUT` the file's bytes to it before `expires_at`.
    pub upload_url: String,
    /// Pass to `POST /leads/import` as `s3_key`.
    pub s3_key: String,
    pub expires_at: Timestamp,
    /// The largest file an import reads; a larger object is refused with 413.
    pub max_bytes: u64,
}

/// `POST /leads/import` JSON body: import a file uploaded through an upload URL.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartImport {
    pub establishment_id: EstablishmentId,
    /// The `s3_key` an upload URL answered.
    pub s3_key: String,
    /// The region (ISO 3166 alpha-2) numbers without a `+` country code are read in; default:
    /// the establishment's locale's region.
    #[serde(default)]
    pub default_region: Option<String>,
}

/// `POST /leads/import` as `multipart/form-data`: fields `establishment_id`, `file`, and
/// optionally `default_region`.
#[derive(Debug)]
pub struct Upload {
    pub establishment_id: EstablishmentId,
    pub filename: Option<String>,
    pub bytes: bytes::Bytes,
    pub default_region: Option<String>,
}

/// What `POST /leads/import` takes.
#[derive(Debug)]
pub enum ImportRequest {
    Uploaded(StartImport),
    Inline(Upload),
}

/// `202` of `POST /leads/import` (A.6).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub job_id: ImportJobId,
    /// `accepted`.
    pub status: ImportStatus,
}

/// An import job as the API shows it: enough for a progress bar.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportView {
    pub job_id: ImportJobId,
    pub establishment_id: EstablishmentId,
    pub status: ImportStatus,
    pub filename: Option<String>,
    /// Data rows in the file; `null` until the worker has counted them.
    pub total_rows: Option<u64>,
    /// Rows done (created, updated, unchanged or rejected).
    pub processed_rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Why the file as a whole was not imported (`failed` only).
    pub error: Option<ImportFailure>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    /// Where the rejected rows are listed.
    pub errors_url: String,
}

impl From<ImportJobRecord> for ImportView {
    fn from(j: ImportJobRecord) -> Self {
        Self {
            errors_url: format!("/leads/import/{}/errors", j.id),
            job_id: j.id,
            establishment_id: j.establishment_id,
            status: j.status,
            filename: j.filename,
            total_rows: j.total_rows,
            processed_rows: j.processed_rows,
            created: j.created,
            updated: j.updated,
            unchanged: j.unchanged,
            rejected: j.rejected,
            error: j.error,
            created_at: j.created_at,
            started_at: j.started_at,
            completed_at: j.completed_at,
        }
    }
}

/// The message the import queue carries.
#[derive(Debug, Serialize, Deserialize)]
pub struct ImportMessage {
    pub job_id: ImportJobId,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for ImportRequest {
    type Rejection = Error;

    /// JSON goes through [`ApiJson`]; `multipart/form-data` is read whole (at most
    /// [`MAX_INLINE_BYTES`], else 413) and parsed; any other type is 415.
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self> {
        let content_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !content_type
            .to_ascii_lowercase()
            .starts_with("multipart/form-data")
        {
            return ApiJson::<StartImport>::from_request(req, state)
                .await
                .map(|ApiJson(body)| ImportRequest::Uploaded(body));
        }
        let boundary = multer::parse_boundary(&content_type)
            .map_err(|e| Error::invalid("content-type", format!("no multipart boundary: {e}")))?;
        let too_large = || Error::PayloadTooLarge {
            limit: MAX_INLINE_BYTES,
        };
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > MAX_INLINE_BYTES) {
            return Err(too_large());
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_INLINE_BYTES)
            .await
            .map_err(|_| too_large())?;
        read_multipart(body, boundary)
            .await
            .map(ImportRequest::Inline)
    }
}

/// The fields of an inline upload.
async fn read_multipart(body: bytes::Bytes, boundary: String) -> Result<Upload> {
    let bad = |e: multer::Error| Error::invalid("body", format!("malformed multipart body: {e}"));
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let (mut est, mut file, mut region) = (None, None, None);
    while let Some(field) = parts.next_field().await.map_err(bad)? {
        match field.name().unwrap_or("") {
            "establishment_id" => {
                let raw = field.text().await.map_err(bad)?;
                est = Some(
                    EstablishmentId::parse(raw.trim())
                        .map_err(|e| Error::invalid("establishment_id", e))?,
                );
            }
            "default_region" => region = Some(field.text().await.map_err(bad)?),
            "file" => {
                let name = field.file_name().map(str::to_owned);
                file = Some((name, field.bytes().await.map_err(bad)?));
            }
            other => {
                return Err(Error::invalid(
                    other.to_owned(),
                    "unknown field: expected establishment_id, file, default_region",
                ));
            }
        }
    }
    let establishment_id = est.ok_or_else(|| Error::invalid("establishment_id", "is required"))?;
    let (filename, bytes) = file.ok_or_else(|| Error::invalid("file", "is required"))?;
    Ok(Upload {
        establishment_id,
        filename,
        bytes,
        default_region: region.filter(|r| !r.trim().is_empty()),
    })
}

/// A file name as kept in an object key: `[A-Za-z0-9._-]`, others as `_`, at most 100.
fn safe_filename(raw: &str) -> String {
    let name: String = raw
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if name.trim_matches(['.', '_']).is_empty() {
        "leads.csv".into()
    } else {
        name
    }
}

/// A fresh object key for an establishment's upload.
fn upload_key(est: &EstablishmentId, filename: &str) -> String {
    format!(
        "{}{}/{}",
        upload_prefix(est),
        crate::ids::next_ulid(),
        safe_filename(filename)
    )
}

/// The region national numbers are read in: `default_region` when given (checked), else the
/// region of the establishment's locale (`en-US` → `US`), else none (such numbers are
/// rejected as `invalid_phone`).
async fn region_of(
    app: &App,
    est: &EstablishmentId,
    default_region: Option<&str>,
) -> Result<Option<String>> {
    if let Some(raw) = default_region {
        let region = raw.trim().to_ascii_uppercase();
        if region.len() != 2 || region.parse::<phonenumber::country::Id>().is_err() {
            return Err(Error::invalid(
                "default_region",
                format!("`{raw}` is not a region code like US or FR"),
            ));
        }
        return Ok(Some(region));
    }
    let establishment = app
        .store
        .establishment(est)
        .await?
        .ok_or(Error::NotFound("establishment"))?;
    Ok(establishment.locale.phone_region().map(str::to_owned))
}

/// `POST /leads/import/upload-url` (operators and admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %req.establishment_id))]
pub async fn upload_url(
    app: &App,
    principal: &Principal,
    req: UploadUrlRequest,
) -> Result<UploadUrl> {
    if req.filename.trim().is_empty() || req.filename.len() > 255 {
        return Err(Error::invalid("filename", "must be 1 to 255 bytes"));
    }
    require_member(
        app,
        principal,
        &req.establishment_id,
        Role::Operator,
        "establishment",
    )
    .await?;
    let s3_key = upload_key(&req.establishment_id, &req.filename);
    let upload_url = app
        .blobs
        .presigned_put(
            &s3_key,
            std::time::Duration::from_secs(UPLOAD_URL_TTL_SECS as u64),
        )
        .await?;
    Ok(UploadUrl {
        upload_url,
        s3_key,
        expires_at: Timestamp::now().plus_secs(UPLOAD_URL_TTL_SECS),
        max_bytes: MAX_UPLOAD_BYTES,
    })
}

/// `POST /leads/import` (operators and admins): creates the job for an uploaded or inline
/// file and queues it.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn start(app: &App, principal: &Principal, req: ImportRequest) -> Result<Accepted> {
    let (est, default_region) = match &req {
        ImportRequest::Uploaded(r) => (r.establishment_id.clone(), r.default_region.clone()),
        ImportRequest::Inline(u) => (u.establishment_id.clone(), u.default_region.clone()),
    };
    let user = require_member(app, principal, &est, Role::Operator, "establishment").await?;
    let default_region = default_region.filter(|r| !r.trim().is_empty());
    let region = region_of(app, &est, default_region.as_deref()).await?;
    let (s3_key, filename) = match req {
        ImportRequest::Uploaded(req) => {
            let ours = req.s3_key.starts_with(&upload_prefix(&est))
                && !req.s3_key.contains("..")
                && req.s3_key.len() <= 1024;
            if !ours {
                // Another establishment's upload, or not an upload: nothing of ours.
                return Err(Error::NotFound("upload"));
            }
            let filename = req.s3_key.rsplit('/').next().map(str::to_owned);
            (req.s3_key, filename)
        }
        ImportRequest::Inline(upload) => {
            let filename = safe_filename(upload.filename.as_deref().unwrap_or("leads.csv"));
            let key = upload_key(&est, &filename);
            app.blobs
                .put(&key, upload.bytes.to_vec(), "text/csv")
                .await?;
            (key, Some(filename))
        }
    };
    let (bytes, etag) = app
        .blobs
        .head(&s3_key)
        .await?
        .ok_or(Error::NotFound("upload"))?;
    if bytes > MAX_UPLOAD_BYTES {
        return Err(Error::PayloadTooLarge {
            limit: MAX_UPLOAD_BYTES as usize,
        });
    }
    let now = Timestamp::now();
    let job = ImportJobRecord {
        id: ImportJobId::new(),
        establishment_id: est,
        status: ImportStatus::Accepted,
        s3_key,
        etag,
        bytes,
        filename,
        region,
        created_by: user.id,
        total_rows: None,
        processed_rows: 0,
        resume_after_row: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        rejected: 0,
        error: None,
        attempts: 0,
        started_at: None,
        completed_at: None,
        updated_at: now,
        expires_at: now.unix() + JOB_TTL_SECS,
        created_at: now,
    };
    app.store.create_import(&job).await?;
    let queue = app.lead_imports.as_ref().ok_or_else(|| {
        Error::internal("the lead import queue is not configured (LEAD_IMPORT_QUEUE_URL)")
    });
    let sent = match queue {
        Ok(queue) => {
            queue
                .send(&ImportMessage {
                    job_id: job.id.clone(),
                })
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::error!(error = %e, job_id = %job.id, "the import could not be queued");
        let failure = ImportFailure {
            code: "queue_unavailable".into(),
            message: "the import could not be queued; start it again".into(),
        };
        app.store.finish_import(&job.id, Some(&failure)).await?;
        return Err(Error::Unavailable(
            "the import could not be queued; retry shortly".into(),
        ));
    }
    Ok(Accepted {
        job_id: job.id,
        status: ImportStatus::Accepted,
    })
}

/// A job the caller may see (viewers and up), else 404.
async fn visible_job(
    app: &App,
    principal: &Principal,
    id: &ImportJobId,
) -> Result<ImportJobRecord> {
    let job = app
        .store
        .import_job(id)
        .await?
        .ok_or(Error::NotFound("import job"))?;
    require_member(
        app,
        principal,
        &job.establishment_id,
        Role::Viewer,
        "import job",
    )
    .await?;
    Ok(job)
}

/// `GET /leads/import/{job_id}`.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, job_id = %id))]
pub async fn get(app: &App, principal: &Principal, id: &ImportJobId) -> Result<ImportView> {
    visible_job(app, principal, id).await.map(ImportView::from)
}

/// `GET /leads/import/{job_id}/errors`: the rejected rows, in file order.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, job_id = %id))]
pub async fn errors(
    app: &App,
    principal: &Principal,
    id: &ImportJobId,
    params: ListParams,
) -> Result<Page<RowError>> {
    let limit = params.limit()?;
    visible_job(app, principal, id).await?;
    app.store
        .import_errors_page(id, limit, params.cursor.as_deref())
        .await
}

/// Why a file cannot be imported, as the job says it.
fn failure_of(e: &ImportError) -> ImportFailure {
    let code = match e {
        ImportError::Empty => "empty_file",
        ImportError::NotText(_) => "not_csv",
        ImportError::NoPhoneColumn => "no_phone_column",
        ImportError::TooWide(_) => "too_many_columns",
        ImportError::Unreadable(_) => "unreadable",
    };
    ImportFailure {
        code: code.into(),
        message: e.to_string(),
    }
}

/// Opens the job's file for one read; `Ok(None)` when the job has failed on it (gone,
/// replaced, too large, not a CSV): the failure is recorded and there is nothing to retry.
async fn open(app: &App, job: &ImportJobRecord) -> Result<Option<RowStream>> {
    let fail = |code: &str, message: String| ImportFailure {
        code: code.into(),
        message,
    };
    let failure = if job.bytes > MAX_UPLOAD_BYTES {
        fail(
            "too_large",
            format!("the file is larger than {MAX_UPLOAD_BYTES} bytes"),
        )
    } else {
        match app.blobs.open(&job.s3_key, &job.etag).await? {
            None => fail(
                "file_missing",
                "the uploaded file is gone or was replaced since the import started".into(),
            ),
            Some(body) => match RowStream::open(body, job.region.clone()).await? {
                Ok(stream) => return Ok(Some(stream)),
                Err(e) => failure_of(&e),
            },
        }
    };
    tracing::warn!(job_id = %job.id, code = failure.code, "import failed");
    app.store.finish_import(&job.id, Some(&failure)).await?;
    Ok(None)
}

/// Works one import job to its end (the lead-import worker's one call). Safe to run again
/// at any point, and alongside another run of the same job: it resumes after the last
/// committed batch, and a run that finds the job moved on stops. An error means "deliver the
/// message again" (a read or write that failed for now).
#[tracing::instrument(skip_all, fields(job_id = %id))]
pub async fn run(app: &App, id: &ImportJobId) -> Result<()> {
    let Some(job) = app.store.import_job(id).await? else {
        tracing::warn!("no such import job; nothing to do");
        return Ok(());
    };
    if job.status.is_final() {
        return Ok(());
    }
    let total = match job.total_rows {
        Some(total) => total,
        None => {
            let Some(mut stream) = open(app, &job).await? else {
                return Ok(());
            };
            let mut total = 0u64;
            while stream.next().await?.is_some() {
                total += 1;
            }
            total
        }
    };
    let Some(mut job) = app.store.start_import(id, total).await? else {
        return Ok(()); // ended meanwhile
    };
    let Some(mut stream) = open(app, &job).await? else {
        return Ok(());
    };
    let phone_column = stream.phone_column().to_owned();
    // The row each number was first seen on: a later valid row with it is a duplicate. Keyed
    // by the number's digits as an integer (E.164 has at most 15), so 100,000 rows cost
    // about 3 MB, not the 13 MB their strings would.
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let mut pending: Vec<Row> = Vec::with_capacity(BATCH_ROWS);
    while let Some((row, outcome)) = stream.next().await? {
        let outcome = match outcome {
            Ok(lead) => match seen.get(&digits(&lead.phone_e164)) {
                Some(first) => Err(RowError {
                    row,
                    column: phone_column.clone(),
                    value: lead.phone_e164.as_str().to_owned(),
                    code: "duplicate_in_file".into(),
                    message: format!("the number is already on row {first}"),
                }),
                None => {
                    seen.insert(digits(&lead.phone_e164), row);
                    Ok(lead)
                }
            },
            Err(e) => Err(e),
        };
        if row <= job.resume_after_row {
            continue; // committed by an earlier run; only its numbers matter now
        }
        pending.push((row, outcome));
        if pending.len() == BATCH_ROWS {
            match commit(app, job, std::mem::take(&mut pending)).await? {
                Some(next) => job = next,
                None => return Ok(()),
            }
        }
    }
    if !pending.is_empty() {
        match commit(app, job, pending).await? {
            Some(next) => job = next,
            None => return Ok(()),
        }
    }
    app.store.finish_import(&job.id, None).await?;
    tracing::info!(
        created = job.created,
        updated = job.updated,
        unchanged = job.unchanged,
        rejected = job.rejected,
        "import completed"
    );
    Ok(())
}

/// A number's digits as an integer (an E.164 number is `+` and at most 15 digits).
fn digits(e164: &E164) -> u64 {
    e164.as_str()
        .trim_start_matches('+')
        .parse()
        .unwrap_or(u64::MAX)
}

/// Commits one batch of rows; the job as it now stands, or `None` when another run moved it
/// on (this one stops).
async fn commit(
    app: &App,
    mut job: ImportJobRecord,
    rows: Vec<Row>,
) -> Result<Option<ImportJobRecord>> {
    let last_row = rows.last().map_or(job.resume_after_row, |(row, _)| *row);
    let phones: Vec<E164> = rows
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|l| l.phone_e164.clone()))
        .collect();
    for _ in 0..BATCH_ATTEMPTS {
        let (existing, dnc) = app
            .store
            .import_lookup(&job.establishment_id, &phones)
            .await?;
        let batch = plan(&job, &rows, &existing, &dnc, last_row);
        match app.store.commit_import_batch(&batch).await? {
            Ok(()) => {
                let c = batch.counts;
                job.resume_after_row = last_row;
                job.processed_rows += c.processed;
                job.created += c.created;
                job.updated += c.updated;
                job.unchanged += c.unchanged;
                job.rejected += c.rejected;
                return Ok(Some(job));
            }
            Err(BatchConflict::JobMoved) => {
                tracing::warn!("another run moved the import on; this one stops");
                return Ok(None);
            }
            Err(BatchConflict::LeadsChanged) => {
                tracing::info!("leads of the batch changed while it was planned; planning again");
            }
        }
    }
    Err(Error::Unavailable(
        "the batch's leads kept changing under it; the import will resume".into(),
    ))
}

/// What a batch writes, given the leads and do-not-call entries just read.
fn plan<'a>(
    job: &'a ImportJobRecord,
    rows: &[Row],
    existing: &HashMap<E164, LeadRecord>,
    dnc: &HashSet<E164>,
    last_row: u64,
) -> ImportBatch<'a> {
    let now = Timestamp::now();
    let mut batch = ImportBatch {
        job,
        last_row,
        leads: Vec::new(),
        errors: Vec::new(),
        counts: ImportCounts {
            processed: rows.len() as u64,
            ..ImportCounts::default()
        },
    };
    for (_, outcome) in rows {
        let row = match outcome {
            Ok(row) => row,
            Err(e) => {
                batch.errors.push(e.clone());
                batch.counts.rejected += 1;
                continue;
            }
        };
        let on_list = dnc.contains(&row.phone_e164);
        match existing.get(&row.phone_e164) {
            None => {
                batch
                    .leads
                    .push(LeadWrite::Create(new_lead(job, row, on_list, &now)));
                batch.counts.created += 1;
            }
            Some(lead) => match merged(lead, row, on_list) {
                None => batch.counts.unchanged += 1,
                Some(next) if stored_bytes(&next) > MAX_LEAD_BYTES => {
                    batch.errors.push(RowError {
                        row: row.row,
                        column: String::new(),
                        value: String::new(),
                        code: "lead_too_large".into(),
                        message: format!(
                            "the lead with this row's columns would exceed {MAX_LEAD_BYTES} bytes"
                        ),
                    });
                    batch.counts.rejected += 1;
                }
                Some(mut next) => {
                    next.version = lead.version + 1;
                    next.updated_at = now;
                    next.import_job_id = Some(job.id.clone());
                    batch.leads.push(LeadWrite::Update(next));
                    batch.counts.updated += 1;
                }
            },
        }
    }
    batch
}

/// A new lead from `row`.
fn new_lead(job: &ImportJobRecord, row: &LeadRow, on_list: bool, now: &Timestamp) -> LeadRecord {
    LeadRecord {
        id: LeadId::of(&job.establishment_id, &row.phone_e164),
        establishment_id: job.establishment_id.clone(),
        phone_e164: row.phone_e164.clone(),
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        name: row.name.clone(),
        email: row.email.clone(),
        timezone: row.timezone.clone(),
        timezones: row.timezones.clone(),
        external_id: row.external_id.clone(),
        attributes: row.attributes.clone(),
        status: if on_list {
            LeadStatus::DoNotCall
        } else {
            LeadStatus::New
        },
        campaign_ids: Vec::new(),
        active_campaign_id: None,
        import_job_id: Some(job.id.clone()),
        created_at: *now,
        updated_at: *now,
        version: 1,
    }
}

/// About how many bytes `lead` takes stored: its text fields and attribute names and values.
fn stored_bytes(lead: &LeadRecord) -> usize {
    let text = [
        &lead.first_name,
        &lead.last_name,
        &lead.name,
        &lead.external_id,
    ]
    .into_iter()
    .flatten()
    .map(String::len)
    .sum::<usize>();
    let attributes: usize = lead.attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
    1024 + text + attributes
}

/// `lead` with the columns `row` gives (an empty cell gives nothing), and `do_not_call` when
/// its number is on the list; `None` when nothing differs.
fn merged(lead: &LeadRecord, row: &LeadRow, on_list: bool) -> Option<LeadRecord> {
    let mut next = lead.clone();
    let given = |slot: &mut Option<String>, value: &Option<String>| {
        if value.is_some() {
            slot.clone_from(value);
        }
    };
    given(&mut next.first_name, &row.first_name);
    given(&mut next.last_name, &row.last_name);
    given(&mut next.name, &row.name);
    given(&mut next.external_id, &row.external_id);
    if row.email.is_some() {
        next.email.clone_from(&row.email);
    }
    if let Some(zone) = &row.timezone {
        next.timezone = Some(zone.clone());
        next.timezones = vec![zone.clone()];
    }
    next.attributes
        .extend(row.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
    if on_list {
        next.status = LeadStatus::DoNotCall;
    }
    (next != *lead).then_some(next)
}

/// `POST /leads/import` as `multipart/form-data`, as the API description shows it.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImportForm {
    pub establishment_id: EstablishmentId,
    /// The CSV (at most 4 MiB inline; use an upload URL for larger files).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// The region (ISO 3166 alpha-2) national numbers are read in.
    pub default_region: Option<String>,
}
