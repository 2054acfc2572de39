//! Opaque, prefixed, time-sortable identifiers (`est_` + ULID, …). Each kind is its own type,
//! so a user id can never be passed where an establishment id is expected; `parse` is the only
//! way to turn outside text into one.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Why a string is not an id of the expected kind.
#[derive(Debug, thiserror::Error)]
#[error("expected an id starting with `{prefix}` followed by a ULID")]
pub struct IdError {
    prefix: &'static str,
}

/// A ULID greater than every one this process made before, even within one millisecond, so
/// ids made one after another (audit entries, versions) sort in the order they were made.
pub fn next_ulid() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<ulid::Generator> =
        std::sync::Mutex::new(ulid::Generator::new());
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Overflow needs 2^80 ids in one millisecond; fall back to a fresh random one.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id, sortable by creation time (strictly increasing within a process).
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(format!("{}{}", $prefix, next_ulid()))
            }

            /// Accepts exactly `prefix + 26-character ULID`.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                raw.strip_prefix($prefix)
                    .and_then(|rest| ulid::Ulid::from_string(rest).ok())
                    .map(|ulid| Self(format!("{}{}", $prefix, ulid)))
                    .ok_or(IdError { prefix: $prefix })
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        $crate::openapi::text_schema!(
            $name,
            stringify!($name),
            Some(concat!("^", $prefix, "[0-9A-HJKMNP-TV-Z]{26}$")),
            None,
            concat!("`", $prefix, "` followed by a ULID (time-sortable)")
        );

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(/// An establishment (tenant).
    EstablishmentId, "est_");
id_type!(/// A user account.
    UserId, "usr_");
id_type!(/// A pending invitation to join an establishment.
    InvitationId, "inv_");
id_type!(/// An AI agent of an establishment.
    AgentId, "agt_");
id_type!(/// One version of an agent's brain (prompt, model, tools, policies).
    AgentVersionId, "agv_");
id_type!(/// A phone number routed to an agent.
    PhoneNumberId, "pn_");
id_type!(/// An audit-log entry.
    AuditId, "aud_");
id_type!(/// An establishment's runtime (one Docker container on a host).
    RuntimeId, "rt_");
id_type!(/// A lifecycle command sent to a runtime's host.
    CommandId, "cmd_");
id_type!(/// A phone call, inbound or outbound.
    CallId, "call_");
id_type!(/// A lead: one phone number an establishment may call (see [`LeadId::of`]).
    LeadId, "lead_");
id_type!(/// A leads CSV import job.
    ImportJobId, "imp_");
id_type!(/// A connection of an establishment to an outside service (calendar, email, …).
    IntegrationId, "int_");
id_type!(/// A campaign: leads dialed on a schedule by one agent version.
    CampaignId, "cmp_");

impl LeadId {
    /// The id of the establishment's lead for `e164`: derived from the pair (SHA-256), not
    /// random, so the number's one lead has one key. Importing a number twice, concurrent
    /// imports of the same number, or a worker resuming a file all write the same item, which
    /// is what makes a lead unique per (establishment, E.164) without a guard item. Lead ids
    /// therefore do not sort by creation time; listings sort by `created_at`.
    pub fn of(est: &EstablishmentId, e164: &crate::domain::E164) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::new()
            .chain_update(est.as_str())
            .chain_update(b"#")
            .chain_update(e164.as_str())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(format!("{}{}", Self::PREFIX, ulid::Ulid::from_bytes(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_foreign_prefixes() {
        // GIVEN a fresh establishment id
        let id = EstablishmentId::new();
        // WHEN it is parsed back, or parsed as another kind
        // THEN it round-trips and the other kind refuses it
        assert_eq!(EstablishmentId::parse(id.as_str()).unwrap(), id);
        assert!(UserId::parse(id.as_str()).is_err());
        assert!(EstablishmentId::parse("est_not-a-ulid").is_err());
        assert!(EstablishmentId::parse("").is_err());
    }

    #[test]
    fn ids_sort_by_creation_time() {
        // GIVEN two ids made one after the other in different milliseconds
        let a = UserId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = UserId::new();
        // THEN they sort in creation order
        assert!(a < b);
    }
}
