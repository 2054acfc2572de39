//! End-to-end API tests: the functions' routers in-process, the store in the emulator.
//! One binary (each links the AWS SDK; one link is much cheaper than many).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod agents;
mod analysis;
mod bad_input;
mod calls;
mod campaigns;
mod concurrency;
mod health;
mod ingest;
mod integrations;
mod lambda_adapter;
mod leads;
mod m0_acceptance;
mod openapi;
mod recordings;
mod reports;
mod resources;
mod runtimes;
mod secrets;
mod sessions;
mod sweeper;
mod tenancy;
