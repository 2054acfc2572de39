//! Retrying what DynamoDB refuses for a moment: a transaction cancelled by a conflicting writer,
//! a single write that met an ongoing transaction (`TransactionConflictException`). Throttling
//! and 5xx answers are the SDK's to retry (`aws::retry_config`); both layers back off with full
//! jitter so that writers that collided once do not collide again in lockstep.

use crate::error::Error;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::future::Future;
use std::time::Duration;

/// Attempts in all, the first included.
const MAX_ATTEMPTS: u32 = 8;
/// The first retry waits up to this long; each next one up to twice as long.
const BASE: Duration = Duration::from_millis(10);
/// No wait is longer than this.
const CAP: Duration = Duration::from_millis(400);

/// Exponential back-off with full jitter, over [`MAX_ATTEMPTS`].
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    retries: u32,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Waits before the next attempt; `false` when the attempts are used up.
    pub(crate) async fn next(&mut self) -> bool {
        if self.retries + 1 >= MAX_ATTEMPTS {
            return false;
        }
        let ceiling = BASE.saturating_mul(1 << self.retries.min(16)).min(CAP);
        self.retries += 1;
        tokio::time::sleep(ceiling.mul_f64(jitter())).await;
        true
    }

    /// Waits before the next attempt, or answers `exhausted()` when the attempts are used up.
    pub(crate) async fn wait_or(&mut self, exhausted: impl FnOnce() -> Error) -> Result<(), Error> {
        if self.next().await {
            Ok(())
        } else {
            Err(exhausted())
        }
    }
}

/// A uniform draw in [0, 1).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

/// Runs a single-item write, again after a `TransactionConflictException` (the item was part
/// of a transaction in progress; nothing was written).
pub async fn on_conflict<T, E, R, F, Fut>(mut attempt: F) -> Result<T, SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata,
{
    let mut backoff = Backoff::new();
    loop {
        match attempt().await {
            Err(e) if e.code() == Some("TransactionConflictException") && backoff.next().await => {}
            other => return other,
        }
    }
}
