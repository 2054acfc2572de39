//! `make bench` part: reports against the emulator.
//!
//! - **Reading**: a 90-day agent-performance report (per version, with its daily series) and
//!   the dashboard (30 days: computed, then from the cache) of an establishment with 3 agents of
//!   2 versions each and 100, then 10,000 ended calls spread over the 90 days: DynamoDB
//!   requests and time through the router. The aggregates are seeded as the recount would
//!   leave them (the same `mark` of each synthetic call, summed per aggregate and written with
//!   BatchWriteItem), because counting 10,000 calls one by one through the emulator takes
//!   longer than the bench is worth; the write path is measured separately.
//! - **Writing**: what counting one ended call costs the post-call worker (`recount` of a call
//!   stored as ended): requests and time, and a second recount of the unchanged call.

#![allow(clippy::unwrap_used)] // bench code: a panic is the failure report

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use callplane::domain::analysis::{Analysis, AnalysisStatus, Sentiment, SentimentLabel};
use callplane::domain::report::Counters;
use callplane::domain::{CallStatus, Direction, Disposition, NumberProvider};
use callplane::ids::{AgentId, AgentVersionId, CallId, EstablishmentId};
use callplane::service::reports::mark;
use callplane::store::keys;
use callplane::store::records::{CallRecord, NewCall};
use callplane::time::Timestamp;
use callplane_tests::Stack;
use chrono_tz::Tz;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const ZONE: &str = "America/New_York";

/// A deterministic pseudo-random sequence (the bench needs spread, not randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// An ended call of `agent`/`version` that began `secs_ago`.
fn synthetic(
    est: &EstablishmentId,
    agent: &AgentId,
    version: &AgentVersionId,
    secs_ago: i64,
    rng: &mut Lcg,
) -> CallRecord {
    let at = Timestamp::now().plus_secs(-secs_ago);
    let mut call = CallRecord::new(NewCall {
        id: CallId::new(),
        establishment_id: est.clone(),
        agent_id: agent.clone(),
        provider: NumberProvider::Twilio,
        direction: if rng.next(3) == 0 {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        from_e164: "+14155550100".into(),
        to_e164: "+14155550101".into(),
        status: CallStatus::Completed,
        disposition: Disposition::Runtime,
        at,
    });
    call.agent_version_id = Some(version.clone());
    call.started_at = Some(at);
    call.ended_at = Some(at.plus_secs(60));
    call.duration_seconds = Some(rng.next(600) as u32);
    call.tool_calls = rng.next(3) as u32;
    let score = rng.next(200) as f64 / 100.0 - 1.0;
    call.sentiment = Some(Sentiment {
        label: SentimentLabel::of(score),
        score,
        computed_at: at,
        windows: Vec::new(),
    });
    call.analysis = Some(Analysis {
        status: AnalysisStatus::Succeeded,
        reason: None,
        analyzer: Some("builtin".into()),
        model: None,
        success: Some(rng.next(2) == 0),
        data: Default::default(),
        completed_at: Some(at),
        attempts: 1,
        run_id: "end".into(),
        lease_until: None,
    });
    call
}

/// Writes the aggregates `calls` leave, as the recount would.
async fn seed(stack: &Stack, calls: &[CallRecord], zone: Tz) {
    let mut aggregates: HashMap<keys::Key, (String, AgentId, AgentVersionId, Counters)> =
        HashMap::new();
    for call in calls {
        let m = mark(call, zone).unwrap();
        let version = m.agent_version_id.clone().unwrap();
        for (key, period) in [
            (
                keys::report_day(&call.establishment_id, &m.day, &m.agent_id, Some(&version)),
                &m.day,
            ),
            (
                keys::report_hour(&call.establishment_id, &m.hour, &m.agent_id, Some(&version)),
                &m.hour,
            ),
        ] {
            aggregates
                .entry(key)
                .or_insert_with(|| {
                    (
                        period.clone(),
                        m.agent_id.clone(),
                        version.clone(),
                        Counters::default(),
                    )
                })
                .3
                .merge(&m.counters, 1);
        }
    }
    let items: Vec<WriteRequest> = aggregates
        .into_iter()
        .map(|(key, (period, agent, version, counters))| {
            let mut item = key.attrs();
            item.insert("period".into(), AttributeValue::S(period));
            item.insert("agent_id".into(), AttributeValue::S(agent.to_string()));
            item.insert(
                "agent_version_id".into(),
                AttributeValue::S(version.to_string()),
            );
            for (name, value) in counters.iter() {
                item.insert(name.to_owned(), AttributeValue::N(value.to_string()));
            }
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect();
    let store = &stack.app.store;
    for chunk in items.chunks(25) {
        let mut pending = HashMap::from([(store.table().to_owned(), chunk.to_vec())]);
        while !pending.is_empty() {
            let out = store
                .client()
                .batch_write_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .unwrap();
            pending = out.unprocessed_items.unwrap_or_default();
            pending.retain(|_, v| !v.is_empty());
        }
    }
}

/// Median requests and time of `runs` GETs of `path`.
async fn measure(stack: &Stack, token: &str, path: &str, runs: usize) -> (usize, Duration, usize) {
    let mut samples = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let (reply, requests) = stack.round_trips.during(stack.get(path, token)).await;
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        bytes = reply.body.to_string().len();
        samples.push((requests, took));
    }
    samples.sort_by_key(|s| s.1);
    let (requests, took) = samples[samples.len() / 2];
    (requests, took, bytes)
}

/// Counts `call` once, as the post-call worker does: its time and DynamoDB requests.
async fn timed_recount(
    stack: &Stack,
    call: &CallId,
    est: &EstablishmentId,
) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let (out, requests) = stack
        .round_trips
        .during(callplane::service::reports::recount(&stack.app, call, est))
        .await;
    out?;
    Ok((started.elapsed(), requests))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let zone: Tz = ZONE.parse().unwrap();
    println!(
        "| calls in 90 days | aggregates read (day, version) | 90-day agent performance: requests, p50 time, answer bytes | dashboard 30d computed: requests, time | dashboard cached: requests, time |"
    );
    println!("|---|---|---|---|---|");
    for (n, name) in [(100usize, "Bench 100"), (10_000, "Bench 10k")] {
        let est_id = stack.establishment_in(&admin, name, ZONE, "en-US").await;
        let est = EstablishmentId::parse(&est_id).unwrap();
        let mut versions = Vec::new();
        for a in 0..3 {
            let agent = stack.agent(&admin, &est_id, &format!("Agent {a}")).await;
            for v in 0..2 {
                let version = stack
                    .published(&admin, &agent, &format!("Version {v}"))
                    .await;
                versions.push((
                    AgentId::parse(&agent).unwrap(),
                    AgentVersionId::parse(&version).unwrap(),
                ));
            }
        }
        let mut rng = Lcg(n as u64);
        let calls: Vec<CallRecord> = (0..n)
            .map(|_| {
                let (agent, version) = &versions[rng.next(versions.len() as u64) as usize];
                let secs_ago = rng.next(89 * 86_400) as i64 + 120;
                synthetic(&est, agent, version, secs_ago, &mut rng)
            })
            .collect();
        seed(&stack, &calls, zone).await;
        let days: std::collections::HashSet<(String, String)> = calls
            .iter()
            .map(|c| {
                let m = mark(c, zone).unwrap();
                (m.day, m.agent_version_id.unwrap().to_string())
            })
            .collect();
        let perf = format!(
            "/reports/agent-performance?establishment_id={est_id}&range=90d&group_by=version"
        );
        let (perf_requests, perf_time, perf_bytes) = measure(&stack, &admin, &perf, 5).await;
        let kpis = format!("/dashboard/kpis?establishment_id={est_id}&range=30d");
        let (computed_requests, computed_time, _) = measure(&stack, &admin, &kpis, 1).await;
        let (cached_requests, cached_time, _) = measure(&stack, &admin, &kpis, 5).await;
        println!(
            "| {n} | {} | {perf_requests}, {:.1} ms, {} KB | {computed_requests}, {:.1} ms | {cached_requests}, {:.1} ms |",
            days.len(),
            perf_time.as_secs_f64() * 1000.0,
            perf_bytes / 1024,
            computed_time.as_secs_f64() * 1000.0,
            cached_time.as_secs_f64() * 1000.0,
        );
    }

    // The write path: counting one ended call, and recounting it unchanged.
    let est_id = stack
        .establishment_in(&admin, "Bench writes", ZONE, "en-US")
        .await;
    let est = EstablishmentId::parse(&est_id).unwrap();
    let agent = AgentId::parse(&stack.agent(&admin, &est_id, "Writer").await).unwrap();
    let version =
        AgentVersionId::parse(&stack.published(&admin, agent.as_str(), "v").await).unwrap();
    let mut rng = Lcg(7);
    let (mut first, mut again) = (Vec::new(), Vec::new());
    let (mut first_requests, mut again_requests) = (0, 0);
    for _ in 0..50 {
        let call = synthetic(&est, &agent, &version, 300, &mut rng);
        stack
            .app
            .store
            .create_call(&call, None, None)
            .await
            .map_err(|_| anyhow::anyhow!("create"))?;
        let (took, requests) = timed_recount(&stack, &call.id, &est).await?;
        first.push(took);
        first_requests = requests;
        let (took, requests) = timed_recount(&stack, &call.id, &est).await?;
        again.push(took);
        again_requests = requests;
    }
    first.sort();
    again.sort();
    println!();
    println!("| counting a finished call (post-call worker) | DynamoDB requests | p50 | p95 |");
    println!("|---|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| first count | {first_requests} | {:.1} ms | {:.1} ms |",
        ms(first[25]),
        ms(first[47])
    );
    println!(
        "| recount, nothing changed | {again_requests} | {:.1} ms | {:.1} ms |",
        ms(again[25]),
        ms(again[47])
    );
    Ok(())
}
