//! Twilio's REST API (`/2010-04-01/Accounts/{sid}/Calls.json`): form-encoded requests with HTTP
//! Basic auth, JSON answers, JSON errors carrying Twilio's numeric `code`. The base URL is
//! configurable so tests and the local stack talk to a stand-in.

use super::twiml::{Verb, render};
use crate::domain::E164;
use crate::telephony::{NumberHooks, OutboundCall, PlacedCall, ProviderError, TelephonyPort};
use crate::time::Timestamp;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::time::Duration;

/// How rate-limited (HTTP 429 / code 20429) and unsent (connection refused) requests are
/// retried: `attempts` in all, waiting `base`, then twice that, and so on; and how long one
/// request may take before its answer counts as lost.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_millis(250),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A Twilio account's REST client.
#[derive(Clone, Debug)]
pub struct TwilioClient {
    /// Built on first use: loading the TLS roots costs milliseconds that functions which never
    /// call Twilio (the webhooks) should not pay at cold start.
    http: std::sync::OnceLock<reqwest::Client>,
    base: String,
    account_sid: String,
    auth_token: crate::config::Secret,
    retry: RetryPolicy,
}

/// Twilio's error body.
#[derive(Debug, Deserialize)]
struct TwilioError {
    code: Option<u32>,
    message: Option<String>,
}

/// The part of a call resource we use.
#[derive(Debug, Deserialize)]
struct CallResource {
    sid: String,
    #[serde(default)]
    date_created: Option<String>,
}

/// A page of the Calls list.
#[derive(Debug, Deserialize)]
struct CallPage {
    #[serde(default)]
    calls: Vec<CallResource>,
}

/// The part of an IncomingPhoneNumber we use.
#[derive(Debug, Deserialize)]
struct NumberResource {
    sid: String,
    phone_number: String,
    #[serde(default)]
    voice_url: Option<String>,
}

/// A page of the IncomingPhoneNumbers list.
#[derive(Debug, Deserialize)]
struct NumberPage {
    #[serde(default)]
    incoming_phone_numbers: Vec<NumberResource>,
}

impl TwilioClient {
    /// A client for `account_sid` at `base` (`https://api.twilio.com` in production).
    pub fn new(
        base: &str,
        account_sid: &str,
        auth_token: &crate::config::Secret,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http: std::sync::OnceLock::new(),
            base: base.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.clone(),
            retry,
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            crate::web::client_builder()
                .timeout(self.retry.timeout)
                .build()
                .unwrap_or_default()
        })
    }

    fn calls_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.base, self.account_sid
        )
    }

    fn call_url(&self, sid: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Calls/{sid}.json",
            self.base, self.account_sid
        )
    }

    fn numbers_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/IncomingPhoneNumbers.json",
            self.base, self.account_sid
        )
    }

    fn number_url(&self, sid: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{sid}.json",
            self.base, self.account_sid
        )
    }

    /// POSTs `form` to `url`, retrying what is safe to retry; the response body on success.
    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        self.send(reqwest::Method::POST, url, form).await
    }

    /// GETs `url` with `query`; reads are always safe to retry.
    async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<Vec<u8>, ProviderError> {
        self.send(reqwest::Method::GET, url, query).await
    }

    /// Sends `params` (a form body for POST, the query for GET) and tells apart what Twilio
    /// surely did not act on (refused connections, 429, credentials: `Unavailable`,
    /// `RateLimited`) from what it may have acted on (a timeout or broken answer after the
    /// request went out, a 5xx: `Unconfirmed`). Only the first kind is retried here.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        let encoded = {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (name, value) in params {
                s.append_pair(name, value);
            }
            s.finish()
        };
        let write = method == reqwest::Method::POST;
        let lost = |e: &dyn std::fmt::Display| {
            if write {
                ProviderError::Unconfirmed(e.to_string())
            } else {
                ProviderError::Unavailable(e.to_string())
            }
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts;
            let request = self
                .http()
                .request(method.clone(), url)
                .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
                .header("accept", "application/json");
            let request = if write {
                request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(encoded.clone())
            } else {
                request.query(
                    &params
                        .iter()
                        .map(|(k, v)| (*k, v.as_str()))
                        .collect::<Vec<_>>(),
                )
            };
            let response = match request.send().await {
                Ok(r) => r,
                // Nothing reached Twilio: safe to try again.
                Err(e) if e.is_connect() && !last => {
                    tracing::warn!(attempt, error = %e, "Twilio unreachable; retrying");
                    self.pause(attempt).await;
                    continue;
                }
                Err(e) if e.is_connect() => return Err(ProviderError::Unavailable(e.to_string())),
                // The request may have been taken: a timeout or a connection lost mid-answer.
                Err(e) => return Err(lost(&e)),
            };
            let status = response.status();
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(e) => return Err(lost(&e)),
            };
            if status.is_success() {
                return Ok(bytes.to_vec());
            }
            let error: TwilioError = serde_json::from_slice(&bytes).unwrap_or(TwilioError {
                code: None,
                message: None,
            });
            let code = error.code.unwrap_or(0);
            let message = error
                .message
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            // 429 / 20429: Twilio did not process the request, so retrying cannot duplicate it.
            if status.as_u16() == 429 || code == 20429 {
                if last {
                    return Err(ProviderError::RateLimited);
                }
                tracing::warn!(attempt, "Twilio rate limit; backing off");
                self.pause(attempt).await;
                continue;
            }
            return Err(match (status.as_u16(), code) {
                (_, 21211 | 21214 | 21217) => ProviderError::InvalidNumber { code, message },
                (_, 21220) => ProviderError::NotInProgress { code, message },
                (401 | 403, _) | (_, 20003) => {
                    tracing::error!(code, %message, "Twilio refused our credentials");
                    ProviderError::Unavailable(format!("credentials refused ({code})"))
                }
                (s, _) if s >= 500 => lost(&format!("HTTP {s}: {message}")),
                _ => ProviderError::Refused { code, message },
            });
        }
    }

    async fn pause(&self, attempt: u32) {
        tokio::time::sleep(self.retry.base * 2u32.saturating_pow(attempt - 1)).await;
    }

    async fn create_call(&self, call: &OutboundCall) -> Result<PlacedCall, ProviderError> {
        let twiml = render(&[Verb::Stream {
            url: call.stream.url.clone(),
            parameters: call.stream.parameters.clone(),
        }]);
        let mut form = vec![
            ("To", call.to.to_string()),
            ("From", call.from.to_string()),
            ("Twiml", twiml),
            ("TimeLimit", call.time_limit_secs.to_string()),
            ("Timeout", "30".to_owned()),
            ("StatusCallback", call.status_callback.clone()),
            ("StatusCallbackMethod", "POST".to_owned()),
        ];
        for event in ["initiated", "ringing", "answered", "completed"] {
            form.push(("StatusCallbackEvent", event.to_owned()));
        }
        if let Some(amd) = &call.amd_callback {
            form.push(("MachineDetection", "Enable".to_owned()));
            form.push(("AsyncAmd", "true".to_owned()));
            form.push(("AsyncAmdStatusCallback", amd.clone()));
            form.push(("AsyncAmdStatusCallbackMethod", "POST".to_owned()));
        }
        let body = self.post_form(&self.calls_url(), &form).await?;
        let call: CallResource = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Unconfirmed(format!("unreadable call resource: {e}")))?;
        Ok(PlacedCall {
            provider_call_id: call.sid,
        })
    }

    /// The Calls list filtered by `To` and `From` (newest first, one page of 50): the calls
    /// created at or after `since`. Twilio stamps `date_created` to the second, so the bound is
    /// taken a second early.
    async fn lookup_calls(
        &self,
        to: &E164,
        from: &E164,
        since: Timestamp,
    ) -> Result<Vec<PlacedCall>, ProviderError> {
        let query = [
            ("To", to.to_string()),
            ("From", from.to_string()),
            ("PageSize", "50".to_owned()),
        ];
        let body = self.get(&self.calls_url(), &query).await?;
        let page: CallPage = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Unavailable(format!("unreadable call list: {e}")))?;
        let floor = since.unix() - 1;
        Ok(page
            .calls
            .into_iter()
            .filter(|c| {
                c.date_created
                    .as_deref()
                    .and_then(|d| Timestamp::parse_rfc2822(d).ok())
                    .is_some_and(|t| t.unix() >= floor)
            })
            .map(|c| PlacedCall {
                provider_call_id: c.sid,
            })
            .collect())
    }

    /// The account's IncomingPhoneNumber for exactly `number`.
    async fn incoming_number(
        &self,
        number: &E164,
    ) -> Result<Option<NumberResource>, ProviderError> {
        let body = self
            .get(&self.numbers_url(), &[("PhoneNumber", number.to_string())])
            .await?;
        let page: NumberPage = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Unavailable(format!("unreadable number list: {e}")))?;
        // The filter matches parts of numbers too; only the exact number counts.
        Ok(page
            .incoming_phone_numbers
            .into_iter()
            .find(|n| n.phone_number == number.as_str()))
    }

    async fn point_number(&self, number: &E164, hooks: &NumberHooks) -> Result<(), ProviderError> {
        let found = self
            .incoming_number(number)
            .await?
            .ok_or_else(|| ProviderError::NotInAccount(number.to_string()))?;
        let form = [
            ("VoiceUrl", hooks.voice_url.clone()),
            ("VoiceMethod", "POST".to_owned()),
            ("StatusCallback", hooks.status_callback.clone()),
            ("StatusCallbackMethod", "POST".to_owned()),
        ];
        self.post_form(&self.number_url(&found.sid), &form)
            .await
            .map(drop)
    }

    async fn unpoint_number(
        &self,
        number: &E164,
        hooks: &NumberHooks,
    ) -> Result<(), ProviderError> {
        let Some(found) = self.incoming_number(number).await? else {
            return Ok(());
        };
        // Someone pointed it elsewhere since: leave their configuration alone.
        if found.voice_url.as_deref() != Some(hooks.voice_url.as_str()) {
            return Ok(());
        }
        let form = [
            ("VoiceUrl", String::new()),
            ("StatusCallback", String::new()),
        ];
        self.post_form(&self.number_url(&found.sid), &form)
            .await
            .map(drop)
    }

    async fn update_dial(
        &self,
        sid: &str,
        to: &E164,
        caller_id: Option<&E164>,
    ) -> Result<(), ProviderError> {
        let twiml = render(&[Verb::Dial {
            to: to.to_string(),
            caller_id: caller_id.map(E164::to_string),
            timeout_secs: 30,
        }]);
        self.post_form(&self.call_url(sid), &[("Twiml", twiml)])
            .await
            .map(drop)
    }
}

impl TelephonyPort for TwilioClient {
    fn place_call<'a>(
        &'a self,
        call: &'a OutboundCall,
    ) -> BoxFuture<'a, Result<PlacedCall, ProviderError>> {
        Box::pin(self.create_call(call))
    }

    fn transfer<'a>(
        &'a self,
        provider_call_id: &'a str,
        to: &'a E164,
        caller_id: Option<&'a E164>,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.update_dial(provider_call_id, to, caller_id))
    }

    fn find_calls<'a>(
        &'a self,
        to: &'a E164,
        from: &'a E164,
        since: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<PlacedCall>, ProviderError>> {
        Box::pin(self.lookup_calls(to, from, since))
    }

    fn claim_number<'a>(
        &'a self,
        number: &'a E164,
        hooks: &'a NumberHooks,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.point_number(number, hooks))
    }

    fn release_number<'a>(
        &'a self,
        number: &'a E164,
        hooks: &'a NumberHooks,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.unpoint_number(number, hooks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_auth_token() {
        // GIVEN a client built with a token
        let token = crate::config::Secret::new("super-secret-auth-token");
        let client = TwilioClient::new(
            "https://api.twilio.com",
            "AC1",
            &token,
            RetryPolicy::default(),
        );
        // WHEN it is logged with {:?} THEN the token is not there
        let shown = format!("{client:?}");
        assert!(!shown.contains("super-secret-auth-token"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
