//! Runtime lifecycle (PRD §5 "Runtime management", A.4): the status state machine, the actions
//! an admin can ask for, and the provisioning inputs (image reference, environment) checked
//! when parsed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a runtime is in its life. Transitional statuses (`provisioning`, `starting`,
/// `stopping`) hold while the host executes a command; the host's report settles them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeStatus {
    Provisioning,
    Created,
    Starting,
    Running,
    Draining,
    Stopping,
    Stopped,
    Failed,
    Removed,
}

impl RuntimeStatus {
    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeStatus::Provisioning => "provisioning",
            RuntimeStatus::Created => "created",
            RuntimeStatus::Starting => "starting",
            RuntimeStatus::Running => "running",
            RuntimeStatus::Draining => "draining",
            RuntimeStatus::Stopping => "stopping",
            RuntimeStatus::Stopped => "stopped",
            RuntimeStatus::Failed => "failed",
            RuntimeStatus::Removed => "removed",
        }
    }
}

/// A state the host converges a runtime's container to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    /// The container exists, not started.
    Created,
    /// The container runs and takes calls.
    Running,
    /// The container runs and finishes its calls but takes no new ones.
    Draining,
    /// The container exists, stopped.
    Stopped,
    /// No container.
    Removed,
}

impl DesiredState {
    /// The status a runtime settles in once its host reached this state.
    pub fn settled(self) -> RuntimeStatus {
        match self {
            DesiredState::Created => RuntimeStatus::Created,
            DesiredState::Running => RuntimeStatus::Running,
            DesiredState::Draining => RuntimeStatus::Draining,
            DesiredState::Stopped => RuntimeStatus::Stopped,
            DesiredState::Removed => RuntimeStatus::Removed,
        }
    }

    /// Whether the container should be running.
    pub fn runs(self) -> bool {
        matches!(self, DesiredState::Running | DesiredState::Draining)
    }
}

/// A lifecycle action (one command to the host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeAction {
    Create,
    Start,
    Stop,
    Restart,
    Drain,
    Resume,
    Remove,
}

impl RuntimeAction {
    /// The action as the API and the queue spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeAction::Create => "create",
            RuntimeAction::Start => "start",
            RuntimeAction::Stop => "stop",
            RuntimeAction::Restart => "restart",
            RuntimeAction::Drain => "drain",
            RuntimeAction::Resume => "resume",
            RuntimeAction::Remove => "remove",
        }
    }

    /// What the action asks the host to converge to.
    pub fn desired(self) -> DesiredState {
        match self {
            RuntimeAction::Create => DesiredState::Created,
            RuntimeAction::Start | RuntimeAction::Restart | RuntimeAction::Resume => {
                DesiredState::Running
            }
            RuntimeAction::Stop => DesiredState::Stopped,
            RuntimeAction::Drain => DesiredState::Draining,
            RuntimeAction::Remove => DesiredState::Removed,
        }
    }

    /// The status shown while the host works on this action from `from`, or why the action
    /// is not allowed from there. The desired state is the truth: start, stop and restart are
    /// accepted while the host is still busy with an earlier command (provisioning, starting,
    /// stopping), since the host converges to the newest desired state whatever it was doing.
    pub fn begin(self, from: RuntimeStatus) -> Result<RuntimeStatus, String> {
        use RuntimeStatus as S;
        let allowed: &[RuntimeStatus] = match self {
            RuntimeAction::Create => &[],
            RuntimeAction::Start => &[
                S::Provisioning,
                S::Created,
                S::Starting,
                S::Stopping,
                S::Stopped,
                S::Failed,
            ],
            RuntimeAction::Stop => &[
                S::Provisioning,
                S::Created,
                S::Starting,
                S::Running,
                S::Draining,
                S::Stopping,
                S::Failed,
            ],
            RuntimeAction::Restart => &[
                S::Provisioning,
                S::Starting,
                S::Running,
                S::Draining,
                S::Stopping,
                S::Stopped,
                S::Failed,
            ],
            RuntimeAction::Drain => &[S::Running],
            RuntimeAction::Resume => &[S::Draining],
            RuntimeAction::Remove => &[
                S::Provisioning,
                S::Created,
                S::Starting,
                S::Running,
                S::Draining,
                S::Stopping,
                S::Stopped,
                S::Failed,
            ],
        };
        if !allowed.contains(&from) {
            let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "cannot {} a runtime that is {} (allowed from: {})",
                self.as_str(),
                from.as_str(),
                if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                }
            ));
        }
        Ok(match self {
            RuntimeAction::Create => S::Provisioning,
            RuntimeAction::Start | RuntimeAction::Restart => S::Starting,
            RuntimeAction::Stop => S::Stopping,
            RuntimeAction::Drain => S::Draining,
            RuntimeAction::Resume => S::Running,
            RuntimeAction::Remove => S::Stopping,
        })
    }
}

/// The public HTTPS address a runtime is reached at (`https://rt-helios.example.com`): Twilio
/// streams call audio to `wss://{its authority}/media-stream`, which needs a name with a valid
/// certificate, not a host's address and port. Given at provisioning (`public_url`) or as the
/// runtime's `APP_PUBLIC_DOMAIN` (PRD A.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct PublicUrl(String);

impl PublicUrl {
    /// `https://` or `wss://` and a host name (a port allowed), nothing after it; or a bare
    /// domain (`APP_PUBLIC_DOMAIN`), taken as `https://{domain}`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim().trim_end_matches('/');
        let authority = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("wss://"))
            .unwrap_or(trimmed);
        let (host, port) = authority.rsplit_once(':').unwrap_or((authority, ""));
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.contains('.')
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        let port_ok = port.is_empty() || port.parse::<u16>().is_ok_and(|p| p > 0);
        if trimmed.contains("://")
            && !trimmed.starts_with("https://")
            && !trimmed.starts_with("wss://")
        {
            return Err(format!("`{raw}` must be an https:// address"));
        }
        if !(host_ok && port_ok) {
            return Err(format!(
                "`{raw}` is not a public address (e.g. https://rt-helios.example.com)"
            ));
        }
        Ok(Self(format!("https://{}", authority.to_ascii_lowercase())))
    }

    /// `https://{authority}`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `wss://{authority}/media-stream`, where Twilio streams a call's audio.
    pub fn media_stream(&self) -> String {
        format!("wss://{}/media-stream", &self.0["https://".len()..])
    }
}

impl TryFrom<String> for PublicUrl {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<PublicUrl> for String {
    fn from(u: PublicUrl) -> String {
        u.0
    }
}

/// A runtime host's id as registered (`host-a`, `i-0abc…`): 1–64 of `[A-Za-z0-9_.:-]`. It
/// goes into keys, so the host API refuses any other shape before it reads anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostId(String);

crate::openapi::text_schema!(
    HostId,
    "HostId",
    Some("^[A-Za-z0-9_.:-]{1,64}$"),
    None,
    "A runtime host's id as registered (`host-a`, `i-0abc…`)"
);

impl HostId {
    /// Longest host id.
    pub const MAX: usize = 64;

    /// Accepts 1–64 of `[A-Za-z0-9_.:-]`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        super::ident("host_id", raw, Self::MAX)
            .map(|()| Self(raw.to_owned()))
            .map_err(|e| e.to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HostId {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<HostId> for String {
    fn from(id: HostId) -> String {
        id.0
    }
}

/// A container image reference (`voice-agent-runtime:latest`, `registry/x/y@sha256:…`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    min_length = 1,
    max_length = 255,
    example = "voice-agent-runtime:latest"
)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef(String);

impl ImageRef {
    /// 1–255 characters of lowercase letters, digits and `. _ - / : @`, not starting with a
    /// separator.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 255
            && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:@".contains(c));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "`{raw}` is not an image reference (e.g. voice-agent-runtime:latest)"
            ))
        }
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ImageRef {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<ImageRef> for String {
    fn from(i: ImageRef) -> String {
        i.0
    }
}

/// A runtime's own environment (what the admin gives; the platform adds its `CALLPLANE_*`
/// variables on top when the container is created).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct RuntimeEnv(BTreeMap<String, String>);

impl RuntimeEnv {
    /// Most variables.
    pub const MAX_KEYS: usize = 100;
    /// Largest value, in bytes.
    pub const MAX_VALUE_BYTES: usize = 4096;
    /// Prefix of the variables the platform injects (runtime id, ingest URL and token);
    /// reserved.
    pub const RESERVED_PREFIX: &'static str = "CALLPLANE_";

    /// Checks every key and value; the error names the offending key.
    pub fn parse(vars: BTreeMap<String, String>) -> Result<Self, String> {
        if vars.len() > Self::MAX_KEYS {
            return Err(format!(
                "at most {} variables, got {}",
                Self::MAX_KEYS,
                vars.len()
            ));
        }
        for (key, value) in &vars {
            let well_formed = !key.is_empty()
                && key.len() <= 128
                && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !well_formed {
                return Err(format!(
                    "`{key}` is not a variable name (letters, digits, _; not starting with a digit)"
                ));
            }
            if key.to_ascii_uppercase().starts_with(Self::RESERVED_PREFIX) {
                return Err(format!(
                    "`{key}` is reserved: the platform sets {}* (runtime id, ingest URL and token)",
                    Self::RESERVED_PREFIX
                ));
            }
            if value.len() > Self::MAX_VALUE_BYTES {
                return Err(format!(
                    "the value of `{key}` is {} bytes; at most {}",
                    value.len(),
                    Self::MAX_VALUE_BYTES
                ));
            }
        }
        Ok(Self(vars))
    }

    /// The variables.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The variables as the API shows them: values of secret-looking keys (see
    /// [`is_secret`]) replaced by `"********"`.
    pub fn masked(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret(k) {
                    "********".to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect()
    }
}

/// Whether a variable's value is a secret the API never echoes: its name contains `KEY`,
/// `SECRET`, `TOKEN`, `PASSWORD`, `PASSWD`, `CREDENTIAL`, `PRIVATE` or `AUTH`.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_uppercase();
    [
        "KEY",
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "PRIVATE",
        "AUTH",
    ]
    .iter()
    .any(|word| key.contains(word))
}

impl TryFrom<BTreeMap<String, String>> for RuntimeEnv {
    type Error = String;
    fn try_from(vars: BTreeMap<String, String>) -> Result<Self, String> {
        Self::parse(vars)
    }
}

impl From<RuntimeEnv> for BTreeMap<String, String> {
    fn from(e: RuntimeEnv) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_refuses_illegal_transitions() {
        // GIVEN runtimes in various statuses
        // WHEN actions are asked for
        // THEN legal ones begin their transitional status and illegal ones say why
        assert_eq!(
            RuntimeAction::Start.begin(RuntimeStatus::Created),
            Ok(RuntimeStatus::Starting)
        );
        assert_eq!(
            RuntimeAction::Drain.begin(RuntimeStatus::Running),
            Ok(RuntimeStatus::Draining)
        );
        assert!(RuntimeAction::Resume.begin(RuntimeStatus::Running).is_err());
        assert!(RuntimeAction::Start.begin(RuntimeStatus::Removed).is_err());
        assert!(RuntimeAction::Remove.begin(RuntimeStatus::Removed).is_err());
        assert!(
            RuntimeAction::Drain
                .begin(RuntimeStatus::Provisioning)
                .is_err()
        );
        // AND start, stop and restart are accepted while the host is busy
        for busy in [
            RuntimeStatus::Provisioning,
            RuntimeStatus::Starting,
            RuntimeStatus::Stopping,
        ] {
            assert_eq!(
                RuntimeAction::Start.begin(busy),
                Ok(RuntimeStatus::Starting)
            );
            assert_eq!(RuntimeAction::Stop.begin(busy), Ok(RuntimeStatus::Stopping));
            assert_eq!(
                RuntimeAction::Restart.begin(busy),
                Ok(RuntimeStatus::Starting)
            );
        }
    }

    #[test]
    fn environments_refuse_reserved_keys_big_values_and_too_many_keys() {
        // GIVEN candidate environments
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        // WHEN parsed THEN bad ones are refused, naming the key
        assert!(RuntimeEnv::parse(one("APP_PUBLIC_DOMAIN", "x.example.com")).is_ok());
        assert!(
            RuntimeEnv::parse(one("CALLPLANE_INGEST_TOKEN", "x"))
                .unwrap_err()
                .contains("reserved")
        );
        assert!(RuntimeEnv::parse(one("callplane_runtime_id", "x")).is_err());
        assert!(
            RuntimeEnv::parse(one("BIG", &"x".repeat(4097)))
                .unwrap_err()
                .contains("BIG")
        );
        assert!(RuntimeEnv::parse(one("1BAD", "x")).is_err());
        let many = (0..101).map(|i| (format!("K{i}"), String::new())).collect();
        assert!(RuntimeEnv::parse(many).is_err());
        // AND secrets are masked
        let env = RuntimeEnv::parse(BTreeMap::from([
            ("SUPABASE_SERVICE_ROLE_KEY".to_owned(), "s3cr3t".to_owned()),
            ("APP_PUBLIC_DOMAIN".to_owned(), "a.example.com".to_owned()),
        ]))
        .unwrap();
        let masked = env.masked();
        assert_eq!(masked["SUPABASE_SERVICE_ROLE_KEY"], "********");
        assert_eq!(masked["APP_PUBLIC_DOMAIN"], "a.example.com");
    }
}
