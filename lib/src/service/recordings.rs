//! Recordings brought in (PRD §10, issue 12 item 6): a recording reported as an external URL —
//! the runtime's `recording_available` with an https URL, or Twilio's completed recording —
//! is copied by the post-call function into `s3://{bucket}/recordings/{est}/{call}.{ext}`
//! (`crate::recordings` does the safe streaming fetch), after which `GET /calls/{id}/recording`
//! answers `available`. What became of the copy is on the call's `recording_file`
//! (`copy_status` `retrying` | `failed`, `copy_error`), so a failure is visible; transient
//! failures (unreachable, 5xx, a timeout) are retried by SQS up to [`MAX_COPY_ATTEMPTS`], then
//! `failed`; permanent ones (a refused address, a 4xx, over the size cap) are not retried.

use crate::app::App;
use crate::error::Result;
use crate::ids::{CallId, EstablishmentId};
use crate::recordings::{CopyError, ProviderAccess, Source};
use crate::service::analysis::{Job, Outcome};
use crate::service::ingest::RECORDINGS_PREFIX;
use crate::store::records::RecordingFile;
use crate::time::Timestamp;

/// Copies tried before a failure that may pass (a timeout, a 5xx) is final.
pub const MAX_COPY_ATTEMPTS: u32 = 3;

/// The `job` that copies a call's recording (on the summary queue).
pub const COPY_JOB: &str = "recording_copy";

/// Queues the copy of call `call_id`'s recording; at least once (a copy done is a no-op).
pub async fn queue_copy(app: &App, call_id: &CallId, est: &EstablishmentId) -> Result<()> {
    crate::service::analysis::enqueue(app, &Job::of(COPY_JOB, call_id, est), 0).await
}

/// Copies the call's external recording into the bucket, if it has one not copied yet.
#[tracing::instrument(skip_all, fields(call_id = %job.call_id))]
pub async fn copy(app: &App, job: &Job) -> Result<Outcome> {
    let call = job.call(app).await?;
    let now = Timestamp::now();
    let mut file = match (&call.recording_file, &call.recording) {
        (Some(f), _) if f.bucket_key.is_some() || f.copy_status.as_deref() == Some("failed") => {
            return Ok(Outcome::Done);
        }
        (Some(f), _) => f.clone(),
        (None, Some(r)) if r.status == "completed" && !r.url.is_empty() => RecordingFile {
            url: r.url.clone(),
            bucket_key: None,
            storage_provider: call.provider.as_str().to_owned(),
            content_type: "audio/wav".to_owned(),
            duration_seconds: r.duration_seconds,
            reported_at: now,
            copy_status: None,
            copy_error: None,
            bytes: None,
            copy_attempts: 0,
        },
        _ => return Ok(Outcome::Done),
    };
    let provider = app.config.telephony.as_ref().map(|t| ProviderAccess {
        api_base: t.api_base.trim_end_matches('/').to_owned(),
        username: t.account_sid.clone(),
        password: t.auth_token.clone(),
    });
    let ext = crate::recordings::extension(&file.content_type, &file.url);
    let key = format!(
        "{RECORDINGS_PREFIX}{}/{}.{ext}",
        call.establishment_id, call.id
    );
    let source = Source {
        url: file.url.clone(),
        provider,
    };
    let copied = crate::recordings::copy(
        app.blobs.client(),
        app.blobs.bucket(),
        &key,
        &source,
        app.config.recording_limits,
    )
    .await;
    let outcome = match copied {
        Ok(done) => {
            tracing::info!(bytes = done.bytes, key, "recording copied into the bucket");
            file.bucket_key = Some(key);
            file.bytes = Some(done.bytes);
            file.copy_status = None;
            file.copy_error = None;
            if !done.content_type.starts_with("application/octet-stream") {
                file.content_type = done.content_type;
            }
            Outcome::Done
        }
        Err(CopyError::Permanent(why)) => {
            tracing::warn!(why, "recording not copied");
            file.copy_status = Some("failed".to_owned());
            file.copy_error = Some(why);
            Outcome::Done
        }
        Err(CopyError::Transient(why)) => {
            file.copy_attempts += 1;
            if file.copy_attempts >= MAX_COPY_ATTEMPTS {
                tracing::warn!(
                    why,
                    attempts = file.copy_attempts,
                    "recording copy given up"
                );
                file.copy_status = Some("failed".to_owned());
                file.copy_error = Some(format!(
                    "gave up after {} attempts: {why}",
                    file.copy_attempts
                ));
                Outcome::Done
            } else {
                file.copy_status = Some("retrying".to_owned());
                file.copy_error = Some(why.clone());
                Outcome::Later(why)
            }
        }
    };
    if !app.store.put_recording_copy(&call.id, &file).await? {
        tracing::info!("another recording was reported meanwhile; its own job copies it");
        return Ok(Outcome::Done);
    }
    Ok(outcome)
}
