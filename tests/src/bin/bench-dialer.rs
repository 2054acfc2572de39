//! `make bench` part: the campaign dialer against the emulator and the Twilio stand-in.
//!
//! - **Pace on the real clock**: a campaign at 6, 60 and 600 dials a minute run as the worker
//!   runs it — its ticks delivered from the campaign queue to the `campaign-worker` handler as
//!   Lambda's event source would, each tick stepping for up to 50 s and queueing the next —
//!   while every call ends 2 s after Twilio created it: dials in the first 60 s against the
//!   target (ratio), and the most dials in any 60 s.
//! - **Slot reuse**: at one call at a time and 600 a minute, the time from a call's final
//!   callback to the next dial reaching Twilio (p50, max).
//! - **DynamoDB requests per dial**: 100 leads at 60 a minute stepped on a simulated clock,
//!   counting only the dialer's requests (steps and placing the calls), not the callbacks.

#![allow(clippy::unwrap_used)] // bench code: a panic is the failure report

use callplane::ids::CampaignId;
use callplane::service::dialer::{self, Memory, Next};
use callplane_tests::Stack;
use callplane_tests::world::{
    HOST, active_version, afternoon_zone, health, import, queue_batch, routed, running_runtime,
    runtime_sim, work,
};
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const NUMBER: &str = "+14155552671";

struct Bench {
    stack: Stack,
    host: String,
    host_token: String,
    runtime: String,
    admin: String,
    est: String,
    agent: String,
    version: String,
    zone: String,
}

impl Bench {
    /// Imports `n` leads (numbered from `first`) and defines a campaign of exactly them.
    async fn campaign(&self, first: usize, n: usize, rate: u32, concurrency: u32) -> String {
        let mut csv = String::from("phone,timezone\n");
        for i in first..first + n {
            csv.push_str(&format!(
                "+1{}555{:04},{}\n",
                201 + i / 10_000,
                i % 10_000,
                self.zone
            ));
        }
        let job = import(&self.stack, &self.admin, &self.est, csv.as_bytes()).await;
        work(&self.stack).await;
        let body = json!({
            "establishment_id": self.est, "name": format!("bench {rate}/min"), "agent_id": self.agent,
            "agent_version_id": self.version, "lead_filter": { "import_job_id": job },
            "pace": { "calls_per_minute": rate }, "max_concurrent_calls": concurrency,
            "from_e164": NUMBER,
            "schedule": { "timezone": self.zone, "days": ["mon","tue","wed","thu","fri","sat","sun"],
                          "start": "00:00", "end": "23:59" }
        });
        let id = self
            .stack
            .post("/campaigns", &self.admin, body)
            .await
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.stack
            .post_empty(&format!("/campaigns/{id}/start"), &self.admin)
            .await
            .expect(200);
        id
    }

    /// Until `until`: ends every call of the stand-in `after` its creation, as Twilio reports
    /// it, and keeps the runtime's health fresh as its host would; returns the instants of
    /// the final callbacks.
    async fn ender(&self, after: Duration, until: Instant, from: usize) -> Vec<Instant> {
        let mut ended = HashSet::new();
        let mut ends = Vec::new();
        let mut reported = Instant::now();
        while Instant::now() < until {
            if reported.elapsed() > Duration::from_secs(10) {
                self.healthy().await;
                reported = Instant::now();
            }
            for (i, sent) in self.stack.twilio.sent().iter().enumerate().skip(from) {
                if ended.contains(&i) || sent.at.elapsed() < after {
                    continue;
                }
                let Some(call_id) = sent
                    .param("StatusCallback")
                    .and_then(|c| c.split("call_id=").nth(1))
                else {
                    ended.insert(i);
                    continue;
                };
                let id = callplane::ids::CallId::parse(call_id).unwrap();
                let call = self.stack.app.store.call(&id).await.unwrap();
                let Some(sid) = call.and_then(|c| c.provider_call_sid) else {
                    continue;
                };
                self.stack
                    .twilio_hook(
                        &format!("/webhooks/twilio/call-status?call_id={call_id}"),
                        &[
                            ("CallSid", &sid),
                            ("CallStatus", "completed"),
                            ("CallDuration", "2"),
                        ],
                        None,
                    )
                    .await
                    .expect(204);
                ended.insert(i);
                ends.push(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ends
    }

    async fn healthy(&self) {
        health(
            &self.stack,
            &self.host,
            &self.host_token,
            &self.runtime,
            &self.est,
            true,
            false,
        )
        .await;
    }

    /// Delivers the campaign queue to the worker as Lambda would, for `long`.
    async fn worker(&self, long: Duration) {
        let started = Instant::now();
        let mut running = tokio::task::JoinSet::new();
        while started.elapsed() < long {
            let event = queue_batch(&self.stack, "campaign-jobs").await;
            if event["Records"].as_array().is_some_and(|r| !r.is_empty()) {
                let app = self.stack.app.clone();
                running.spawn(async move {
                    ::campaign_worker::handle(&app, serde_json::from_value(event).unwrap()).await
                });
            }
        }
        running.abort_all();
    }

    async fn cancel(&self, id: &str) {
        self.stack
            .post_empty(&format!("/campaigns/{id}/cancel"), &self.admin)
            .await
            .expect(200);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::new().await;
    let (admin, est, agent) = routed(&stack, NUMBER).await;
    let version = active_version(&stack, &admin, &agent).await;
    let (port, _sim) = runtime_sim().await;
    let (runtime, host_token, _) = running_runtime(&stack, &admin, &est, port).await;
    stack
        .patch(
            &format!("/establishments/{est}/telephony"),
            &admin,
            json!({ "max_concurrent_calls": 100 }),
        )
        .await
        .expect(200);
    let bench = Bench {
        stack,
        host: format!("{HOST}-{port}"),
        host_token,
        runtime,
        admin,
        est,
        agent,
        version,
        zone: afternoon_zone(),
    };
    let stack = &bench.stack;

    println!(
        "| target (dials/min) | dials in the first 60 s | ratio | most in any 60 s | DynamoDB requests per dial (all, callbacks included) |"
    );
    println!("|---|---|---|---|---|");
    let mut first = 0;
    for rate in [6u32, 60, 600] {
        let leads = (rate as usize + rate as usize / 5).max(10);
        let id = bench.campaign(first, leads, rate, 100).await;
        first += leads;
        let before = stack.twilio.sent().len();
        let trips = stack.round_trips.get();
        let until = Instant::now() + Duration::from_secs(75);
        tokio::join!(
            bench.worker(Duration::from_secs(75)),
            bench.ender(Duration::from_secs(2), until, before)
        );
        bench.cancel(&id).await;
        let dials: Vec<Instant> = stack.twilio.sent()[before..].iter().map(|s| s.at).collect();
        let Some(t0) = dials.first().copied() else {
            println!("| {rate} | 0 | 0 | 0 | - |");
            continue;
        };
        let in_first = dials
            .iter()
            .filter(|t| t.duration_since(t0) < Duration::from_secs(60))
            .count();
        let worst = (0..dials.len())
            .map(|i| {
                dials[i..]
                    .iter()
                    .take_while(|t| t.duration_since(dials[i]) < Duration::from_secs(60))
                    .count()
            })
            .max()
            .unwrap_or(0);
        println!(
            "| {rate} | {in_first} | {:.3} | {worst} | {:.1} |",
            in_first as f64 / f64::from(rate),
            (stack.round_trips.get() - trips) as f64 / dials.len() as f64
        );
    }

    // Slot reuse: one call at a time, each ending 1 s after it was created.
    let id = bench.campaign(first, 30, 600, 1).await;
    first += 30;
    let before = stack.twilio.sent().len();
    let until = Instant::now() + Duration::from_secs(25);
    let ((), ends) = tokio::join!(
        bench.worker(Duration::from_secs(25)),
        bench.ender(Duration::from_secs(1), until, before)
    );
    bench.cancel(&id).await;
    let dials: Vec<Instant> = stack.twilio.sent()[before..].iter().map(|s| s.at).collect();
    let mut gaps: Vec<Duration> = ends
        .iter()
        .filter_map(|end| {
            dials
                .iter()
                .find(|d| *d > end)
                .map(|d| d.duration_since(*end))
        })
        .collect();
    gaps.sort();
    if let (Some(p50), Some(max)) = (gaps.get(gaps.len() / 2), gaps.last()) {
        println!(
            "\n| slot freed → next dial (concurrency 1, {} reuses) | p50 {} ms | max {} ms |",
            gaps.len(),
            p50.as_millis(),
            max.as_millis()
        );
    }

    // DynamoDB requests per dial, on a simulated clock: the dialer's own requests only.
    let id = bench.campaign(first, 100, 60, 10).await;
    let cid = CampaignId::parse(&id)?;
    let lease = loop {
        if let Some(lease) = dialer::acquire(&stack.app, &cid, None).await? {
            break lease;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut now = Utc::now();
    let (mut dialer_trips, mut dials, mut steps) = (0usize, 0u32, 0u32);
    let mut live: Vec<(chrono::DateTime<Utc>, callplane::ids::CallId)> = Vec::new();
    let started = Instant::now();
    let mut reported = Instant::now();
    while steps < 5_000 {
        if reported.elapsed() > Duration::from_secs(10) {
            bench.healthy().await;
            reported = Instant::now();
        }
        let ended: Vec<_> = live.iter().filter(|(at, _)| *at <= now).cloned().collect();
        live.retain(|(at, _)| *at > now);
        for (_, call) in ended {
            let sid = stack
                .app
                .store
                .call(&call)
                .await?
                .and_then(|c| c.provider_call_sid)
                .unwrap();
            stack
                .twilio_hook(
                    &format!("/webhooks/twilio/call-status?call_id={call}"),
                    &[
                        ("CallSid", &sid),
                        ("CallStatus", "completed"),
                        ("CallDuration", "10"),
                    ],
                    None,
                )
                .await
                .expect(204);
        }
        let before = stack.round_trips.get();
        let step = dialer::step(
            &stack.app,
            &lease,
            now,
            &HashSet::new(),
            &mut Memory::default(),
        )
        .await?;
        steps += 1;
        if let Some(claim) = step.claim {
            let (campaign, lead) = (claim.campaign.id.clone(), claim.enrollment.lead_id.clone());
            dialer::dial(&stack.app, claim).await?;
            dials += 1;
            let e = stack.app.store.enrollment(&campaign, &lead).await?.unwrap();
            live.push((
                now + chrono::Duration::seconds(10),
                e.attempts.last().unwrap().call_id.clone().unwrap(),
            ));
            dialer_trips += stack.round_trips.get() - before - 1;
        } else {
            dialer_trips += stack.round_trips.get() - before;
        }
        now = match step.next {
            Next::Now => now,
            Next::At(t) | Next::Poll(t) | Next::Slot(t) => t.max(now),
            Next::Idle => break,
        };
    }
    let campaign: Value = stack
        .get(&format!("/campaigns/{id}"), &bench.admin)
        .await
        .expect(200)
        .clone();
    println!(
        "\n| DynamoDB requests per dial (100 leads, 60/min, 10 s calls, simulated clock) | {:.1} ({dialer_trips} requests, {dials} dials, {steps} steps, campaign {}, {:.1} s) |",
        dialer_trips as f64 / f64::from(dials.max(1)),
        campaign["status"],
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
