//! The telephony port: what the control plane asks of a voice provider (place a call that
//! streams to a runtime, transfer a live call), provider-neutral, with the Twilio adapter in
//! [`twilio`]. WhatsApp calling is meant to be a second adapter; its webhook checks are in
//! [`whatsapp`]. Provider failures are [`ProviderError`]s, mapped to the API envelope once here.

pub mod twilio;
pub mod whatsapp;

use crate::domain::E164;
use crate::error::Error;
use crate::time::Timestamp;
use futures::future::BoxFuture;

/// Where a call's audio goes: a runtime's media-stream endpoint and the parameters it is given.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamTarget {
    /// `wss://…/media-stream` of the runtime.
    pub url: String,
    /// `call_id`, `establishment_id`, `agent_id`, `agent_version_id`, `max_call_duration_seconds`.
    pub parameters: Vec<(String, String)>,
}

/// An outbound call to place.
#[derive(Clone, Debug)]
pub struct OutboundCall {
    pub to: E164,
    pub from: E164,
    /// Where the audio goes once answered.
    pub stream: StreamTarget,
    /// The provider cuts the call after this many seconds.
    pub time_limit_secs: u32,
    /// Receives the call's progress (initiated, ringing, answered, completed).
    pub status_callback: String,
    /// With answering-machine detection, where its result is sent.
    pub amd_callback: Option<String>,
}

/// A call the provider accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedCall {
    /// The provider's id of the call (Twilio `CallSid`).
    pub provider_call_id: String,
}

/// Why a provider refused or failed a request.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The number is not one the provider can call (Twilio 21211, 21214, 21217).
    #[error("the provider refused the number ({code}): {message}")]
    InvalidNumber { code: u32, message: String },
    /// The call is not live any more, so it cannot be changed (Twilio 21220).
    #[error("the call is no longer in progress at the provider ({code}): {message}")]
    NotInProgress { code: u32, message: String },
    /// Any other refusal of the request as sent (a 4xx with the provider's code).
    #[error("the provider refused the request ({code}): {message}")]
    Refused { code: u32, message: String },
    /// Still rate-limited after the retries (Twilio 20429).
    #[error("the provider is rate-limiting us; retry later")]
    RateLimited,
    /// The provider did not take the request: unreachable (connection refused, DNS) or our
    /// credentials refused. Nothing happened there.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The request reached the provider but its answer did not reach us (a timeout, a broken
    /// connection, a 5xx): it may have acted on it. A call may exist; find out before retrying.
    #[error("the provider did not confirm the request: {0}")]
    Unconfirmed(String),
    /// The number is not one of the account's (Twilio's IncomingPhoneNumbers).
    #[error("{0} is not a number of the provider account")]
    NotInAccount(String),
}

impl ProviderError {
    /// Whether the provider surely did not act on the request, so it may be sent again.
    pub fn surely_not_applied(&self) -> bool {
        !matches!(self, ProviderError::Unconfirmed(_))
    }
}

impl From<ProviderError> for Error {
    fn from(e: ProviderError) -> Self {
        match &e {
            ProviderError::InvalidNumber { .. } => {
                Error::unprocessable("invalid_number", Some("to_e164"), e.to_string())
            }
            ProviderError::Refused { .. } => {
                Error::unprocessable("provider_refused", None, e.to_string())
            }
            ProviderError::NotInProgress { .. } => Error::Conflict(e.to_string()),
            ProviderError::NotInAccount(_) => {
                Error::unprocessable("number_not_in_account", Some("e164"), e.to_string())
            }
            ProviderError::RateLimited
            | ProviderError::Unavailable(_)
            | ProviderError::Unconfirmed(_) => {
                tracing::warn!(error = %e, "telephony provider unavailable");
                Error::Unavailable(e.to_string())
            }
        }
    }
}

/// What a voice provider does for us. Object-safe so a provider is chosen at run time by the
/// number's provider.
pub trait TelephonyPort: Send + Sync + std::fmt::Debug {
    /// Places `call`; resolves once the provider has accepted it (Twilio: `queued`).
    fn place_call<'a>(
        &'a self,
        call: &'a OutboundCall,
    ) -> BoxFuture<'a, Result<PlacedCall, ProviderError>>;

    /// Transfers the live call `provider_call_id` to `to`, showing `caller_id`.
    fn transfer<'a>(
        &'a self,
        provider_call_id: &'a str,
        to: &'a E164,
        caller_id: Option<&'a E164>,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// The calls from `from` to `to` the provider created at or after `since`, newest first:
    /// how a create whose answer was lost is reconciled.
    fn find_calls<'a>(
        &'a self,
        to: &'a E164,
        from: &'a E164,
        since: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<PlacedCall>, ProviderError>>;

    /// Checks that `number` is the account's and points its incoming calls and their status
    /// callbacks at us (`NotInAccount` otherwise).
    fn claim_number<'a>(
        &'a self,
        number: &'a E164,
        hooks: &'a NumberHooks,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// Clears the webhooks `claim_number` set, if they are still ours.
    fn release_number<'a>(
        &'a self,
        number: &'a E164,
        hooks: &'a NumberHooks,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// Our webhooks on a number: where its incoming calls and their status callbacks go.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberHooks {
    /// `…/webhooks/twilio/incoming-call`.
    pub voice_url: String,
    /// `…/webhooks/twilio/call-status`.
    pub status_callback: String,
}
