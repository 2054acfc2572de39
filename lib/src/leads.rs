//! Leads (PRD §7.6, M5): the people a campaign calls. `rows` reads an imported CSV into lead
//! rows and per-row errors; `stream` feeds it a file from the bucket with bounded memory. The
//! import job (`service::lead_import`) and the API (`service::leads`) build on them.

pub mod rows;
pub mod stream;
