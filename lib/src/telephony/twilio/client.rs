//! Twilio's REST API (`/2010-04-01/Accounts/{sid}/Calls.json`): form-encoded requests with HTTP
//! Basic auth, JSON answers, JSON errors carrying Twilio's numeric `code`. The base URL is
//! configurable so tests and the local stack talk to a stand-in.

use super::twiml::{Verb, render};
use crate::domain::E164;
use crate::telephony::{OutboundCall, PlacedCall, ProviderError, TelephonyPort};
use futures::future::BoxFuture;
use serde::Deserialize;
use std::time::Duration;

/// How rate-limited (HTTP 429 / code 20429) and unsent (connection refused) requests are
/// retried: `attempts` in all, waiting `base`, then twice that, and so on.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_millis(250),
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
    auth_token: String,
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
}

impl TwilioClient {
    /// A client for `account_sid` at `base` (`https://api.twilio.com` in production).
    pub fn new(base: &str, account_sid: &str, auth_token: &str, retry: RetryPolicy) -> Self {
        Self {
            http: std::sync::OnceLock::new(),
            base: base.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            retry,
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            // reqwest's rustls uses the process-wide provider: the aws-lc-rs one the AWS SDK
            // already links. Installing twice is harmless (the second call reports an error).
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
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

    /// POSTs `form` to `url`, retrying what is safe to retry; the response body on success.
    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        let body = {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (name, value) in form {
                s.append_pair(name, value);
            }
            s.finish()
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts;
            let sent = self
                .http()
                .post(url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body.clone())
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                // Nothing reached Twilio: safe to try again.
                Err(e) if e.is_connect() && !last => {
                    tracing::warn!(attempt, error = %e, "Twilio unreachable; retrying");
                    self.pause(attempt).await;
                    continue;
                }
                Err(e) => return Err(ProviderError::Unavailable(e.to_string())),
            };
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
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
                (s, _) if s >= 500 => ProviderError::Unavailable(format!("HTTP {s}: {message}")),
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
            .map_err(|e| ProviderError::Unavailable(format!("unreadable call resource: {e}")))?;
        Ok(PlacedCall {
            provider_call_id: call.sid,
        })
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
}
