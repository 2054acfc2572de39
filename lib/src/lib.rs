//! `callplane`: the domain library every Callplane function shares. Domain values, the
//! DynamoDB store, S3/SQS wrappers, auth, mail, and the HTTP glue (error envelope, extractors).
//! It knows nothing of Lambda: functions wrap its routers.

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
pub mod mail;
pub mod queues;
pub mod resources;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod telephony;
pub mod time;

pub use app::{App, AppState, Telephony};
pub use error::{Error, Result};
