//! Operator commands for a Callplane deployment or the local stack.
//!
//! - `callplane-admin create-resources PREFIX`: creates the table, bucket and queues (see
//!   `callplane::resources`) named after PREFIX, and prints them as `KEY=value` lines.
//! - `callplane-admin bootstrap-admin`: creates the first admin from `CALLPLANE_ADMIN_EMAIL` /
//!   `CALLPLANE_ADMIN_PASSWORD` unless that account exists. The default password is
//!   accepted only against the local stack (`AWS_ENDPOINT_URL` on a loopback address).
//! - `callplane-admin deliver QUEUE_URL INVOKE_URL`: `make dev`'s stand-in for Lambda's SQS
//!   event source: delivers the queue's batches to the function behind `INVOKE_URL` (the
//!   Invoke API of `cargo lambda watch`), honouring partial batch failures
//!   (`callplane::local_events`).
//! - `callplane-admin tick INVOKE_URL SCHEDULE SECONDS`: `make dev`'s stand-in for an
//!   EventBridge schedule: sends the scheduled event to the function behind `INVOKE_URL` every
//!   SECONDS (the call sweeper's `rate(1 minute)`).
//! - `callplane-admin register-host HOST_ID QUEUE_URL PUBLIC_HOST PORT_FROM PORT_TO`: registers
//!   (or re-registers, rotating its token) a runtime host and prints `HOST_TOKEN=…` once.
//! - `callplane-admin backfill-reports EST_ID…`: counts every ended call of these
//!   establishments in the report aggregates (calls from before the aggregates existed); safe
//!   to run again, and while calls go on (a call is counted once however often it is counted).

use anyhow::{Context, bail};
use callplane::auth::Password;
use callplane::domain::Email;
use callplane::service::auth::{Bootstrap, bootstrap_admin};

const DEFAULT_ADMIN_EMAIL: &str = "admin@callplane.local";
const DEFAULT_ADMIN_PASSWORD: &str = "callplane-admin-password";

/// Whether the AWS endpoint is the local emulator (`AWS_ENDPOINT_URL` on a loopback address).
fn local_stack() -> bool {
    std::env::var("AWS_ENDPOINT_URL").is_ok_and(|url| {
        let host = url
            .split("://")
            .nth(1)
            .unwrap_or_default()
            .split(['/', '?'])
            .next()
            .unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        matches!(host, "127.0.0.1" | "localhost" | "[::1]") || host.starts_with("127.")
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["create-resources", prefix] => {
            let sdk = callplane::aws::load().await;
            let names = callplane::resources::ResourceNames::with_prefix(prefix);
            let provisioned = callplane::resources::ensure(&sdk, &names)
                .await
                .context("creating resources")?;
            println!(
                "TABLE_NAME={}\nBUCKET_NAME={}\nKMS_KEY_ID={}",
                names.table, names.bucket, provisioned.kms_key_id
            );
            let mut queues: Vec<_> = provisioned.queue_urls.into_iter().collect();
            queues.sort();
            for (queue, url) in queues {
                println!(
                    "{}_QUEUE_URL={url}",
                    queue
                        .trim_end_matches("-jobs")
                        .to_uppercase()
                        .replace('-', "_")
                );
            }
        }
        ["bootstrap-admin"] => {
            let email = std::env::var("CALLPLANE_ADMIN_EMAIL")
                .unwrap_or_else(|_| DEFAULT_ADMIN_EMAIL.into());
            let password = match std::env::var("CALLPLANE_ADMIN_PASSWORD") {
                Ok(password) => password,
                // A known password is only for the local stack: anywhere else it would be
                // the first thing an attacker tries.
                Err(_) if local_stack() => DEFAULT_ADMIN_PASSWORD.into(),
                Err(_) => bail!(
                    "CALLPLANE_ADMIN_PASSWORD is not set; the default password is accepted \
                     only against the local stack (AWS_ENDPOINT_URL on this machine)"
                ),
            };
            let email =
                Email::parse(&email).map_err(|e| anyhow::anyhow!("CALLPLANE_ADMIN_EMAIL: {e}"))?;
            let password = Password::parse(&password)
                .map_err(|e| anyhow::anyhow!("CALLPLANE_ADMIN_PASSWORD: {e}"))?;
            let app = callplane::App::from_env().await?;
            match bootstrap_admin(&app, email.clone(), password)
                .await
                .context("bootstrapping the admin")?
            {
                Bootstrap::Created(id) => println!("created admin {email} ({id})"),
                Bootstrap::AlreadyExists(id) => println!("admin {email} already exists ({id})"),
            }
        }
        ["deliver", queue_url, invoke_url] => {
            callplane::telemetry::init();
            let sdk = callplane::aws::load().await;
            callplane::local_events::run(
                aws_sdk_sqs::Client::new(&sdk),
                (*queue_url).to_owned(),
                (*invoke_url).to_owned(),
            )
            .await;
        }
        ["tick", invoke_url, schedule, secs] => {
            callplane::telemetry::init();
            let secs: u64 = secs.parse().context("SECONDS")?;
            callplane::local_events::tick((*invoke_url).to_owned(), (*schedule).to_owned(), secs)
                .await;
        }
        ["register-host", host, queue_url, public_host, from, to] => {
            let from: u16 = from.parse().context("PORT_FROM")?;
            let to: u16 = to.parse().context("PORT_TO")?;
            let app = callplane::App::from_env().await?;
            let token = callplane::service::hosts::register_host(
                &app,
                host,
                queue_url,
                public_host,
                (from, to),
            )
            .await
            .map_err(|e| anyhow::anyhow!("registering host {host}: {e}"))?;
            println!("HOST_ID={host}\nHOST_TOKEN={token}");
        }
        ["backfill-reports", ests @ ..] if !ests.is_empty() => {
            let app = callplane::App::from_env().await?;
            for raw in ests {
                let est = callplane::ids::EstablishmentId::parse(raw)
                    .map_err(|e| anyhow::anyhow!("{raw}: {e}"))?;
                let (read, changed) = callplane::service::reports::backfill(&app, &est)
                    .await
                    .map_err(|e| anyhow::anyhow!("backfilling {est}: {e}"))?;
                println!("{est}: {read} calls read, {changed} counted anew");
            }
        }
        _ => bail!(
            "usage: callplane-admin create-resources PREFIX | bootstrap-admin | \
             register-host HOST_ID QUEUE_URL PUBLIC_HOST PORT_FROM PORT_TO | \
             backfill-reports EST_ID…"
        ),
    }
    Ok(())
}
