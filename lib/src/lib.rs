//! `callplane`: the domain library every Callplane function shares. It knows nothing of
//! Lambda: each function in `functions/` builds [`App`] once and wraps one router whose
//! handlers each call one function of [`service`].
//!
//! # Layout
//!
//! Dependencies point down this list; nothing below reaches up.
//!
//! - [`service`] — what each route does, one module per area: `agents`, `phone_numbers`,
//!   `establishments`, `members`, `auth`, `audit`, `runtimes` (admin API), `hosts` (the host
//!   agents' API), `calls` (outbound, handoff, lists), `artifacts` (transcripts, events, tool
//!   log, recordings), `ingest` (runtime events), `webhooks` (Twilio), `whatsapp`, `routing`
//!   (the inbound policy), `readiness` (whether a runtime takes calls), `do_not_call`; and
//!   `access` (membership and role checks, for all of them).
//! - [`http`] — the edge: extractors (JSON bodies, paths, queries, bearer tokens) and the
//!   router finish; [`error`] is the one error type and its envelope.
//! - [`store`] — DynamoDB: one module per aggregate (`agents`, `phones`, `establishments`,
//!   `members`, `users`, `runtimes`, `calls`, `outbound`, `do_not_call`, `ingest`,
//!   `artifacts`, `audit`), keys built only in `store::keys`, records in `store::records`,
//!   transactions with named items and retries in `store` itself.
//! - [`telephony`] — the provider port and the Twilio adapter (REST client, signatures,
//!   TwiML); [`mail`], [`blobs`] (S3), [`queues`] (SQS), [`auth`] (passwords, JWTs, tokens).
//! - [`domain`] — typed values built by `parse` (E.164, emails, brains, runtime states, call
//!   events); [`json`] reads documents into them naming the failing field; [`ids`], [`time`].
//! - [`config`], [`aws`], [`app`] — settings read once, SDK clients, the shared state.
//!
//! To find a behaviour: the route's function is in `service::{area}`; what it stores is in
//! `store::{aggregate}`.

pub mod analysis;
pub mod app;
pub mod auth;
pub mod aws;
pub mod blobs;
pub mod config;
pub mod domain;
pub mod error;
pub mod hostapi;
pub mod http;
pub mod ids;
pub mod json;
pub mod leads;
pub mod local_events;
pub mod mail;
pub mod openapi;
pub mod providers;
pub mod queues;
pub mod recordings;
pub mod resources;
pub mod secrets;
pub mod service;
pub mod smtp;
pub mod store;
pub mod telemetry;
pub mod telephony;
pub mod time;
pub mod web;

pub use app::{App, AppState, Telephony};
pub use error::{Error, Result};
