//! The Twilio adapter: webhook signatures, TwiML, the REST client and the webhook extractor.

mod client;
pub mod signature;
pub mod twiml;
mod webhook;

pub use client::{RetryPolicy, TwilioClient};
pub use webhook::{TwilioWebhook, Twiml};
