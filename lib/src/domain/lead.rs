//! Leads as the product sees them: where a lead is with the establishment ([`LeadStatus`]) and
//! where an import of a leads file is ([`ImportStatus`]).

use serde::{Deserialize, Serialize};

/// Where a lead is. `do_not_call` is also what a lead shows while its number is on the
/// establishment's do-not-call list: set at import and whenever the number is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    /// Imported, never reached.
    New,
    /// Reached at least once.
    Contacted,
    /// Asked to be called back.
    Callback,
    /// Worth following up.
    Qualified,
    /// Said no.
    NotInterested,
    /// Must never be called: the number is on the do-not-call list.
    DoNotCall,
    /// The number turned out not to be theirs, or not to work.
    Invalid,
}

impl LeadStatus {
    /// Every status, in the order the API documents them.
    pub const ALL: [LeadStatus; 7] = [
        LeadStatus::New,
        LeadStatus::Contacted,
        LeadStatus::Callback,
        LeadStatus::Qualified,
        LeadStatus::NotInterested,
        LeadStatus::DoNotCall,
        LeadStatus::Invalid,
    ];

    /// The wire name (`not_interested`), which index keys use too.
    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::New => "new",
            LeadStatus::Contacted => "contacted",
            LeadStatus::Callback => "callback",
            LeadStatus::Qualified => "qualified",
            LeadStatus::NotInterested => "not_interested",
            LeadStatus::DoNotCall => "do_not_call",
            LeadStatus::Invalid => "invalid",
        }
    }

    /// Reads a wire name (a query parameter).
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown lead status `{raw}`: one of {}", names.join(", "))
            })
    }
}

/// Where an import job is: `accepted` (queued), `running`, then `completed` (every row read;
/// some may have been rejected) or `failed` (the file as a whole could not be imported).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Accepted,
    Running,
    Completed,
    Failed,
}

impl ImportStatus {
    /// The wire name, as conditions compare it.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Accepted => "accepted",
            ImportStatus::Running => "running",
            ImportStatus::Completed => "completed",
            ImportStatus::Failed => "failed",
        }
    }

    /// Whether the job is over.
    pub fn is_final(self) -> bool {
        matches!(self, ImportStatus::Completed | ImportStatus::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_wire_names() {
        // GIVEN every lead status
        for status in LeadStatus::ALL {
            // WHEN its wire name is read back, and serialised
            let parsed = LeadStatus::parse(status.as_str()).unwrap();
            let json = serde_json::to_value(status).unwrap();
            // THEN both agree with the name
            assert_eq!(parsed, status);
            assert_eq!(json, status.as_str());
        }
        assert!(
            LeadStatus::parse("hot")
                .unwrap_err()
                .contains("not_interested")
        );
    }
}
