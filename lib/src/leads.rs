//! Leads (PRD §7.6, M5): the people a campaign calls. `rows` reads an imported CSV into lead
//! rows and per-row errors; the store, the import job and the API build on it (issue 13).

pub mod rows;
