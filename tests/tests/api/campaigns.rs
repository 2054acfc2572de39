//! Campaigns (issue 14): the campaigns API with its roles, tenancy and bad input; the dialer
//! against the Twilio stand-in with a simulated clock (pacing, concurrency, windows in several
//! zones, retries by outcome, a pinned version); exactly one dial per attempt under duplicated
//! ticks, a killed worker and a lost Twilio answer; the circuit breaker; do-not-call entries
//! and a draining runtime mid-campaign; slot leases recovered; ticks as Lambda hands them.

use callplane::domain::TimeZone;
use callplane::domain::dialing::{CampaignSchedule, may_dial};
use callplane::ids::{CallId, CampaignId, LeadId};
use callplane::service::dialer::{self, Lease, Memory, Next};
use callplane_tests::Stack;
use callplane_tests::twilio::{Failure, LostAnswer};
use callplane_tests::world::{
    HOST, afternoon_zone, health, import, queue_batch, running_runtime, runtime_sim, work,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

const NUMBER: &str = "+14155552671";

/// An establishment in New York with a routed number, a published agent, a ready runtime, an
/// operator and a viewer.
struct World {
    stack: Stack,
    admin: String,
    operator: String,
    viewer: String,
    est: String,
    agent: String,
    version: String,
    runtime: String,
    host: String,
    host_token: String,
}

async fn world() -> World {
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack
        .establishment_in(&admin, "Outreach", "America/New_York", "en-US")
        .await;
    let agent = stack.agent(&admin, &est, "Caller").await;
    let version = stack
        .published(&admin, &agent, "You call people back.")
        .await;
    stack.number(&admin, &est, NUMBER, &agent).await.expect(201);
    let (port, _sim) = runtime_sim().await;
    let (runtime, host_token, _) = running_runtime(&stack, &admin, &est, port).await;
    let operator = stack
        .member(&admin, &est, "operator@campaigns.test", "operator")
        .await;
    let viewer = stack
        .member(&admin, &est, "viewer@campaigns.test", "viewer")
        .await;
    World {
        stack,
        admin,
        operator,
        viewer,
        est,
        agent,
        version,
        runtime,
        host: format!("{HOST}-{port}"),
        host_token,
    }
}

impl World {
    /// A campaign body for this world, with `extra` fields set over the defaults.
    fn body(&self, extra: Value) -> Value {
        let mut body = json!({
            "establishment_id": self.est, "name": "January winback", "agent_id": self.agent,
            "agent_version_id": self.version, "lead_filter": { "status": "new" },
            "pace": { "calls_per_minute": 30 },
            "schedule": { "timezone": "America/New_York", "days": ["mon","tue","wed","thu","fri"],
                          "start": "09:00", "end": "17:00" }
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    async fn create(&self, extra: Value) -> String {
        let reply = self
            .stack
            .post("/campaigns", &self.admin, self.body(extra))
            .await;
        let created = reply.expect(201);
        assert_eq!(created["status"], "created");
        created["id"].as_str().unwrap().to_owned()
    }

    async fn leads(&self, csv: &str) {
        import(&self.stack, &self.admin, &self.est, csv.as_bytes()).await;
        work(&self.stack).await;
    }

    async fn campaign(&self, id: &str) -> Value {
        self.stack
            .get(&format!("/campaigns/{id}"), &self.viewer)
            .await
            .expect(200)
            .clone()
    }

    async fn start(&self, id: &str) -> Value {
        self.stack
            .post_empty(&format!("/campaigns/{id}/start"), &self.operator)
            .await
            .expect(200)
            .clone()
    }

    /// Every enrollment of campaign `id`, by lead.
    async fn enrollments(&self, id: &str) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/campaigns/{id}/enrollments?limit=100&cursor={c}"),
                None => format!("/campaigns/{id}/enrollments?limit=100"),
            };
            let page = self
                .stack
                .get(&path, &self.viewer)
                .await
                .expect(200)
                .clone();
            for e in page["items"].as_array().unwrap() {
                out.insert(e["phone_e164"].as_str().unwrap().to_owned(), e.clone());
            }
            match page["cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// Reports the runtime's health again (the dialer wants a fresh report), optionally
    /// draining.
    async fn healthy(&self, draining: bool) {
        health(
            &self.stack,
            &self.host,
            &self.host_token,
            &self.runtime,
            &self.est,
            true,
            draining,
        )
        .await;
    }

    /// Sends Twilio's final callbacks for call `call_id`: `status`, after an AMD answer when
    /// `answered_by` is given.
    async fn ends(&self, call_id: &CallId, status: &str, answered_by: Option<&str>) {
        let call = self.stack.app.store.call(call_id).await.unwrap().unwrap();
        let sid = call
            .provider_call_sid
            .unwrap_or_else(|| "CA-unknown".into());
        let q = format!("?call_id={call_id}");
        if matches!(status, "completed") {
            self.stack
                .twilio_hook(
                    &format!("/webhooks/twilio/call-status{q}"),
                    &[("CallSid", &sid), ("CallStatus", "in-progress")],
                    None,
                )
                .await
                .expect(204);
        }
        if let Some(answered_by) = answered_by {
            self.stack
                .twilio_hook(
                    &format!("/webhooks/twilio/amd-callback{q}"),
                    &[("CallSid", &sid), ("AnsweredBy", answered_by)],
                    None,
                )
                .await
                .expect(204);
        }
        self.stack
            .twilio_hook(
                &format!("/webhooks/twilio/call-status{q}"),
                &[
                    ("CallSid", &sid),
                    ("CallStatus", status),
                    ("CallDuration", "20"),
                ],
                None,
            )
            .await
            .expect(204);
    }
}

/// A dial the simulated dialer placed.
#[derive(Clone, Debug)]
struct Dialed {
    at: DateTime<Utc>,
    lead: LeadId,
    phone: String,
    attempt: u32,
    call: CallId,
}

/// The dialer driven step by step on a simulated clock, holding the campaign's lease as a
/// worker does.
struct Driver {
    lease: Lease,
    now: DateTime<Utc>,
}

impl Driver {
    async fn new(w: &World, id: &str, now: DateTime<Utc>) -> Self {
        let id = CampaignId::parse(id).unwrap();
        let lease = dialer::acquire(&w.stack.app, &id, None)
            .await
            .unwrap()
            .expect("the lease is free");
        Self { lease, now }
    }

    /// One step at the simulated now; a claimed dial is placed at once.
    async fn step(&self, w: &World) -> (Option<Dialed>, Next) {
        let step = dialer::step(
            &w.stack.app,
            &self.lease,
            self.now,
            &HashSet::new(),
            &mut Memory::default(),
        )
        .await
        .unwrap();
        let Some(claim) = step.claim else {
            return (None, step.next);
        };
        let (lead, attempt) = (
            claim.enrollment.lead_id.clone(),
            claim.enrollment.attempt_count,
        );
        let phone = claim.enrollment.phone_e164.to_string();
        dialer::dial(&w.stack.app, claim.clone()).await.unwrap();
        let e = w
            .stack
            .app
            .store
            .enrollment(&claim.campaign.id, &lead)
            .await
            .unwrap()
            .unwrap();
        let call = e.attempts.last().unwrap().call_id.clone();
        let dialed = call.map(|call| Dialed {
            at: self.now,
            lead,
            phone,
            attempt,
            call,
        });
        (dialed, step.next)
    }

    /// Steps until the dialer has nothing to do before `until` (or goes idle).
    async fn run_until(&mut self, w: &World, until: DateTime<Utc>) -> Vec<Dialed> {
        let mut dialed = Vec::new();
        for _ in 0..10_000 {
            let (d, next) = self.step(w).await;
            dialed.extend(d);
            match next {
                Next::Now => {}
                Next::At(t) | Next::Poll(t) | Next::Slot(t) if t <= until => {
                    self.now = self.now.max(t);
                }
                _ => return dialed,
            }
        }
        panic!("the dialer never settled");
    }
}

fn utc(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw)
        .unwrap()
        .with_timezone(&Utc)
}

/// What the simulated people do: by the lead's place in the file and the attempt.
fn outcome(index: usize, attempt: u32) -> (&'static str, Option<&'static str>) {
    match index % 4 {
        0 => ("completed", Some("human")),
        1 if attempt >= 2 => ("completed", Some("human")),
        1 => ("busy", None),
        2 => ("no-answer", None),
        _ => ("completed", Some("machine_end_beep")),
    }
}

#[tokio::test]
async fn the_dialer_paces_limits_concurrency_keeps_windows_and_retries_by_outcome() {
    // GIVEN 120 new leads in New York, Los Angeles and Chicago
    let w = world().await;
    let areas = ["212", "213", "312"];
    let mut csv = String::from("phone,first_name\n");
    let mut index_of = BTreeMap::new();
    for i in 0..120 {
        let phone = format!("+1{}555{:04}", areas[i % 3], 1000 + i);
        csv.push_str(&format!("{phone},Lead {i}\n"));
        index_of.insert(phone, i);
    }
    w.leads(&csv).await;
    // AND a campaign of the published version: 30 a minute, 5 at once, weekdays 09-17 New
    // York, three attempts 30 minutes apart after busy, no answer or voicemail
    let id = w
        .create(json!({
            "max_concurrent_calls": 5, "answering_machine_detection": true, "from_e164": NUMBER,
            "retry": { "max_attempts": 3, "retry_on": ["busy", "no_answer", "voicemail"], "delay_minutes": 30 }
        }))
        .await;
    // AND a newer version is published after the campaign was defined
    let newer = w
        .stack
        .published(&w.admin, &w.agent, "A newer prompt.")
        .await;
    assert_ne!(newer, w.version);

    // WHEN it starts and the dialer runs from Monday 08:30 New York, conversations ending 30 s
    // after the dial and every other call 6 s after
    let started = w.start(&id).await;
    assert_eq!(started["status"], "running");
    let mut driver = Driver::new(&w, &id, utc("2026-12-07T13:30:00Z")).await;
    let mut dialed: Vec<Dialed> = Vec::new();
    let mut live: Vec<Dialed> = Vec::new();
    let ends_at = |d: &Dialed| {
        let talks = outcome(index_of[&d.phone], d.attempt).1 == Some("human");
        d.at + Duration::seconds(if talks { 30 } else { 6 })
    };
    let mut most_in_flight = 0;
    let mut last_health = std::time::Instant::now();
    let clock = std::time::Instant::now();
    let mut steps = 0;
    let (mut ends_time, mut step_time) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for _ in 0..20_000 {
        steps += 1;
        if last_health.elapsed().as_secs() > 10 {
            w.healthy(false).await;
            last_health = std::time::Instant::now();
        }
        // Calls whose time is up end, as Twilio reports them.
        let (ending, still): (Vec<Dialed>, Vec<Dialed>) =
            live.drain(..).partition(|d| ends_at(d) <= driver.now);
        live = still;
        let t0 = std::time::Instant::now();
        for d in ending {
            let (status, answered_by) = outcome(index_of[&d.phone], d.attempt);
            w.ends(&d.call, status, answered_by).await;
        }
        ends_time += t0.elapsed();
        let t0 = std::time::Instant::now();
        let (d, next) = driver.step(&w).await;
        step_time += t0.elapsed();
        if let Some(d) = d {
            live.push(d.clone());
            dialed.push(d);
        }
        most_in_flight = most_in_flight.max(live.len());
        let wake = live.iter().map(ends_at).min();
        driver.now = match next {
            Next::Now => driver.now,
            Next::At(t) | Next::Poll(t) => wake.map_or(t, |e| e.min(t)).max(driver.now),
            // Every slot is taken: nothing changes before a call ends.
            Next::Slot(t) => wake.map_or(t, |e| e.max(t)).max(driver.now),
            Next::Idle => break,
        };
    }
    eprintln!(
        "simulated campaign: {steps} steps, {} DynamoDB round trips, {:?} ({ends_time:?} ending calls, {step_time:?} stepping)",
        w.stack.round_trips.get(),
        clock.elapsed()
    );
    let campaign = w.campaign(&id).await;

    // THEN the campaign completed
    assert_eq!(campaign["status"], "completed", "{campaign:#}");
    // AND no 60 s held more than 30 dials, and never more than 5 were in flight
    let times: Vec<DateTime<Utc>> = dialed.iter().map(|d| d.at).collect();
    for (i, t) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::seconds(60))
            .count();
        assert!(within <= 30, "{within} dials in the minute from {t}");
    }
    assert_eq!(
        most_in_flight, 5,
        "the limit of 5 calls in flight binds and holds"
    );
    assert!(
        times
            .windows(2)
            .any(|p| p[1] - p[0] >= Duration::seconds(2)
                && p[1] - p[0] < Duration::milliseconds(2100)),
        "dials are spread about 2 s apart (1 % slack) when the pace allows"
    );
    // AND every dial was inside the schedule and 08:00-21:00 where the lead is
    let schedule: CampaignSchedule =
        serde_json::from_value(w.body(json!({}))["schedule"].clone()).unwrap();
    let zone = |phone: &str| {
        let name = match &phone[2..5] {
            "212" => "America/New_York",
            "213" => "America/Los_Angeles",
            _ => "America/Chicago",
        };
        vec![TimeZone::parse(name).unwrap()]
    };
    for d in &dialed {
        assert!(
            may_dial(&schedule, &zone(&d.phone), d.at),
            "{} dialed at {} outside its windows",
            d.phone,
            d.at
        );
    }
    let first_la = dialed
        .iter()
        .filter(|d| d.phone.starts_with("+1213"))
        .map(|d| d.at)
        .min();
    assert!(
        first_la.unwrap() >= utc("2026-12-07T16:00:00Z"),
        "LA waits for 08:00 there"
    );
    // AND each lead was dialed as its outcomes asked: a conversation never again, a busy one
    // until it talked, no answer and voicemail up to the budget, 30 minutes apart at least
    let mut by_lead: BTreeMap<String, Vec<&Dialed>> = BTreeMap::new();
    for d in &dialed {
        by_lead.entry(d.phone.clone()).or_default().push(d);
    }
    assert_eq!(by_lead.len(), 120);
    for (phone, dials) in &by_lead {
        let expected = [1, 2, 3, 3][index_of[phone] % 4];
        assert_eq!(dials.len(), expected, "{phone}");
        for pair in dials.windows(2) {
            assert!(pair[1].at - pair[0].at >= Duration::minutes(30), "{phone}");
        }
    }
    // AND the figures say the same
    let p = &campaign["progress"];
    assert_eq!(
        (
            p["enrolled"].as_u64(),
            p["completed"].as_u64(),
            p["exhausted"].as_u64()
        ),
        (Some(120), Some(60), Some(60))
    );
    assert_eq!(p["calls_placed"], dialed.len());
    assert_eq!(
        (
            p["answered_human"].as_u64(),
            p["busy"].as_u64(),
            p["no_answer"].as_u64(),
            p["voicemail"].as_u64()
        ),
        (Some(60), Some(30), Some(90), Some(90))
    );
    assert_eq!(
        (
            p["queued"].as_u64(),
            p["dialing"].as_u64(),
            p["retry_wait"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    // AND the enrollments list each attempt with its call and outcome
    let enrollments = w.enrollments(&id).await;
    let busy_one = &enrollments[by_lead.keys().find(|p| index_of[*p] % 4 == 1).unwrap()];
    assert_eq!(busy_one["status"], "completed");
    assert_eq!(busy_one["attempts"], 2);
    assert_eq!(busy_one["attempt_log"][0]["outcome"], "busy");
    assert_eq!(busy_one["attempt_log"][1]["outcome"], "human");
    assert_eq!(busy_one["call_ids"].as_array().unwrap().len(), 2);
    // AND each call ran the campaign's version, not the newer one, and names lead and campaign
    let talked = dialed.iter().find(|d| index_of[&d.phone] % 4 == 0).unwrap();
    let call = w
        .stack
        .get(&format!("/calls/{}", talked.call), &w.viewer)
        .await
        .expect(200)
        .clone();
    assert_eq!(call["agent_version_id"], w.version.as_str());
    assert_eq!(call["lead_id"], talked.lead.as_str());
    assert_eq!(call["campaign_id"], id.as_str());
    let twiml = w.stack.twilio.sent()[0].param("Twiml").unwrap().to_owned();
    assert_eq!(
        callplane_tests::world::parameter(&twiml, "agent_version_id").as_deref(),
        Some(w.version.as_str())
    );
    assert_eq!(
        callplane_tests::world::parameter(&twiml, "campaign_id").as_deref(),
        Some(id.as_str())
    );
    // AND a lead that talked is `contacted` and free for another campaign
    let lead = w
        .stack
        .get(&format!("/leads/{}", talked.lead), &w.viewer)
        .await;
    assert_eq!(lead.expect(200)["status"], "contacted");
    assert_eq!(lead.body["campaign_ids"], json!([id]));
}

/// A campaign open all day every day in `zone`, at 600 a minute.
fn open_all_day(zone: &str) -> Value {
    json!({
        "pace": { "calls_per_minute": 600 },
        "lead_filter": {},
        "schedule": { "timezone": zone, "days": ["mon","tue","wed","thu","fri","sat","sun"],
                      "start": "00:00", "end": "23:59" }
    })
}

/// `n` leads in `zone`, numbered from `first`.
fn leads_in(zone: &str, first: usize, n: usize) -> String {
    let mut csv = String::from("phone,timezone\n");
    for i in first..first + n {
        csv.push_str(&format!("+1201555{:04},{zone}\n", 2000 + i));
    }
    csv
}

#[tokio::test]
async fn a_tick_delivered_three_times_dials_each_lead_once() {
    // GIVEN a started campaign of three leads, open now
    let w = world().await;
    let zone = afternoon_zone();
    w.leads(&leads_in(&zone, 0, 3)).await;
    let id = w.create(open_all_day(&zone)).await;
    w.start(&id).await;
    // WHEN the tick start queued is delivered three times in one batch, as Lambda would
    let batch = queue_batch(&w.stack, "campaign-jobs").await;
    let record = batch["Records"][0].clone();
    assert_eq!(record["body"].as_str().map(|b| b.contains(&id)), Some(true));
    let mut copies = Vec::new();
    for n in 0..3 {
        let mut copy = record.clone();
        copy["messageId"] = json!(format!("copy-{n}"));
        copies.push(copy);
    }
    let event = json!({ "Records": copies });
    let response =
        ::campaign_worker::handle(&w.stack.app, serde_json::from_value(event.clone()).unwrap())
            .await;
    assert!(response.batch_item_failures.is_empty());
    // AND once more after it ran
    ::campaign_worker::handle(&w.stack.app, serde_json::from_value(event).unwrap()).await;

    // THEN each lead was dialed exactly once
    assert_eq!(w.stack.twilio.calls_created(), 3);
    let enrollments = w.enrollments(&id).await;
    assert!(
        enrollments
            .values()
            .all(|e| e["attempts"] == 1 && e["status"] == "dialing")
    );
    let campaign = w.campaign(&id).await;
    assert_eq!(campaign["progress"]["dialing"], 3);
    assert_eq!(campaign["progress"]["calls_placed"], 3);
    // AND the chain moved on by one tick and the lease is free for the next one
    let record = w
        .stack
        .app
        .store
        .campaign(&CampaignId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.tick_seq, 1);
    assert_eq!(record.lease_token, None);

    // WHEN the three calls end (one answered, one busy, one unanswered) and the post-call
    // worker has run THEN the reports count them once each, as the campaign's calls
    let calls: Vec<CallId> = enrollments
        .values()
        .map(|e| CallId::parse(e["call_ids"][0].as_str().unwrap()).unwrap())
        .collect();
    for (call, status) in calls.iter().zip(["completed", "busy", "no-answer"]) {
        w.ends(call, status, None).await;
    }
    crate::reports::drain(&w.stack, &w.est).await;
    let listed = crate::reports::listed(&w.stack, &w.admin, &w.est).await;
    let report = w
        .stack
        .get(
            &format!(
                "/reports/calls?establishment_id={}&range=today&group_by=status",
                w.est
            ),
            &w.admin,
        )
        .await;
    let report = report.expect(200);
    assert_eq!(
        report["totals"],
        crate::reports::figures_of(&listed, |_| true)
    );
    assert_eq!(report["totals"]["campaign_calls"], 3);
    assert_eq!(report["totals"]["calls"], 3);
    assert_eq!(
        report["totals"]["by_status"],
        json!({ "busy": 1, "completed": 1, "no_answer": 1 })
    );
}

#[tokio::test]
async fn a_worker_killed_mid_dial_or_a_lost_twilio_answer_never_dials_twice() {
    // GIVEN a started campaign of two leads, open now
    let w = world().await;
    let zone = afternoon_zone();
    w.leads(&leads_in(&zone, 10, 2)).await;
    let id = w.create(open_all_day(&zone)).await;
    w.start(&id).await;
    let now = Utc::now();
    let driver = Driver::new(&w, &id, now).await;
    // Enrollment.
    while driver.step(&w).await.1 == Next::Now {
        let campaign = w.campaign(&id).await;
        if campaign["enrollment_complete"] == true {
            break;
        }
    }

    // WHEN a worker claims the first dial and is killed after Twilio created the call but
    // before it answered (so the attempt holds no call)
    w.stack
        .twilio
        .lose_next_answers(&[LostAnswer::Stall(std::time::Duration::from_secs(30))]);
    let step = dialer::step(
        &w.stack.app,
        &driver.lease,
        now,
        &HashSet::new(),
        &mut Memory::default(),
    )
    .await
    .unwrap();
    let claim = step.claim.expect("a dial claimed");
    let lead = claim.enrollment.lead_id.clone();
    let app = w.stack.app.clone();
    let worker = tokio::spawn(async move { dialer::dial(&app, claim).await });
    while w.stack.twilio.calls_created() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    worker.abort();
    let cid = CampaignId::parse(&id).unwrap();
    let e = w
        .stack
        .app
        .store
        .enrollment(&cid, &lead)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.attempts[0].call_id, None);
    // AND its lease lapses and another worker steps the campaign later
    dialer::release(&w.stack.app, &driver.lease, None)
        .await
        .unwrap();
    let later = Driver::new(&w, &id, now + Duration::seconds(6)).await;
    let (redone, _) = later.step(&w).await;

    // THEN the attempt is redone with the same key: Twilio was asked once, and the attempt
    // now holds the call it made
    let redone = redone.expect("the attempt redone");
    assert_eq!((redone.lead.clone(), redone.attempt), (lead.clone(), 1));
    assert_eq!(w.stack.twilio.calls_created(), 1);

    // WHEN Twilio's answer to the next dial is lost (a 500 after creating the call)
    w.stack.twilio.lose_next_answers(&[LostAnswer::ServerError]);
    let mut second = Driver {
        lease: later.lease.clone(),
        now: now + Duration::seconds(7),
    };
    let mut placed = Vec::new();
    for _ in 0..20 {
        let (d, next) = second.step(&w).await;
        placed.extend(d);
        if !placed.is_empty() {
            break;
        }
        second.now = match next {
            Next::At(t) | Next::Poll(t) | Next::Slot(t) => t.max(second.now + Duration::seconds(1)),
            _ => second.now + Duration::seconds(1),
        };
    }
    // THEN the dialer finds the call in Twilio's list instead of dialing again
    assert_eq!(placed.len(), 1, "the second lead's attempt recorded");
    assert_eq!(w.stack.twilio.calls_created(), 2);
    let enrollments = w.enrollments(&id).await;
    assert!(
        enrollments
            .values()
            .all(|e| e["attempts"] == 1 && e["call_ids"].as_array().unwrap().len() == 1)
    );
}

#[tokio::test]
async fn failing_attempts_trip_the_breaker_and_the_campaign_says_why() {
    // GIVEN a running campaign of six leads, open now, whose first five dials Twilio refuses
    let w = world().await;
    let zone = afternoon_zone();
    w.leads(&leads_in(&zone, 20, 6)).await;
    let id = w.create(open_all_day(&zone)).await;
    w.start(&id).await;
    let refusal = Failure {
        status: 400,
        code: 21215,
    };
    w.stack.twilio.fail_next(&[refusal; 5]);
    // WHEN the dialer runs for a minute
    let mut driver = Driver::new(&w, &id, Utc::now()).await;
    let until = driver.now + Duration::seconds(60);
    driver.run_until(&w, until).await;
    // THEN it paused itself with the reason and the failures, after five attempts
    let campaign = w.campaign(&id).await;
    assert_eq!(campaign["status"], "paused", "{campaign:#}");
    assert_eq!(campaign["paused_reason"], "circuit_breaker");
    let failures = campaign["circuit_breaker_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 5);
    assert!(
        failures
            .iter()
            .all(|f| f["outcome"] == "failed" && f["error"].is_string())
    );
    assert!(
        campaign["last_error"]
            .as_str()
            .unwrap()
            .contains("circuit breaker")
    );
    assert_eq!(campaign["progress"]["failed"], 5);
    assert_eq!(campaign["progress"]["queued"], 1);
    // AND an operator's start resumes it and the last lead is dialed
    w.start(&id).await;
    driver.run_until(&w, until + Duration::seconds(10)).await;
    assert_eq!(w.stack.twilio.calls_created(), 1);
    let actions = w.stack.audit_actions(&w.admin, &w.est).await;
    assert!(
        actions.iter().any(|a| a == "campaign.resumed"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn do_not_call_mid_campaign_suppresses_and_a_draining_runtime_pauses_until_it_is_back() {
    // GIVEN a started campaign of two leads, open now, enrolled
    let w = world().await;
    let zone = afternoon_zone();
    w.leads(&leads_in(&zone, 30, 2)).await;
    let id = w.create(open_all_day(&zone)).await;
    w.start(&id).await;
    let mut driver = Driver::new(&w, &id, Utc::now()).await;
    let (d, next) = driver.step(&w).await;
    assert!(d.is_none() && next == Next::Now, "the first step enrolls");
    assert_eq!(w.enrollments(&id).await.len(), 2);
    // WHEN the runtime starts draining
    w.healthy(true).await;
    let (d, next) = driver.step(&w).await;
    // THEN nothing is dialed and the campaign says why
    assert!(d.is_none());
    assert!(matches!(next, Next::Poll(_)));
    let campaign = w.campaign(&id).await;
    assert_eq!(campaign["status"], "paused");
    assert_eq!(campaign["paused_reason"], "runtime_unavailable");
    assert!(
        campaign["last_error"]
            .as_str()
            .unwrap()
            .contains("draining")
    );
    // WHEN one enrolled lead is set to do_not_call, and the runtime is back
    let listed = w
        .stack
        .get(&format!("/leads?establishment_id={}", w.est), &w.viewer)
        .await
        .expect(200)
        .clone();
    let items = listed["items"].as_array().unwrap();
    let (stopped, other) = (&items[0], &items[1]);
    w.stack
        .patch(
            &format!("/leads/{}", stopped["id"].as_str().unwrap()),
            &w.operator,
            json!({ "status": "do_not_call" }),
        )
        .await
        .expect(200);
    w.healthy(false).await;
    let until = driver.now + Duration::seconds(30);
    let dialed = driver.run_until(&w, until).await;
    // THEN dispatch resumed on its own, and only the other lead was dialed
    let campaign = w.campaign(&id).await;
    assert_eq!(campaign["status"], "running", "{campaign:#}");
    assert_eq!(dialed.len(), 1);
    assert_eq!(dialed[0].phone, other["phone_e164"].as_str().unwrap());
    let enrollments = w.enrollments(&id).await;
    let suppressed = &enrollments[stopped["phone_e164"].as_str().unwrap()];
    assert_eq!(suppressed["status"], "suppressed", "{suppressed}");
    assert_eq!(suppressed["attempts"], 0);
    assert!(
        w.stack
            .twilio
            .sent()
            .iter()
            .all(|s| s.param("To") != stopped["phone_e164"].as_str())
    );
}

#[tokio::test]
async fn a_slot_whose_call_never_ends_is_recovered_and_the_establishment_limit_spans_campaigns() {
    // GIVEN an establishment that allows one campaign call at a time, and two started
    // campaigns of one lead each, open now
    let w = world().await;
    w.stack
        .patch(
            &format!("/establishments/{}/telephony", w.est),
            &w.admin,
            json!({ "max_concurrent_calls": 1 }),
        )
        .await
        .expect(200);
    let zone = afternoon_zone();
    w.leads(&leads_in(&zone, 40, 1)).await;
    let first = w.create(open_all_day(&zone)).await;
    w.start(&first).await;
    let now = Utc::now();
    let mut a = Driver::new(&w, &first, now).await;
    let dialed = a.run_until(&w, now + Duration::seconds(5)).await;
    assert_eq!(dialed.len(), 1);
    w.leads(&leads_in(&zone, 41, 1)).await;
    let second = w.create(open_all_day(&zone)).await;
    w.start(&second).await;
    let mut b = Driver::new(&w, &second, now).await;
    // WHEN the second campaign runs while the first's call is in flight
    let waiting = b.run_until(&w, now + Duration::seconds(5)).await;
    // THEN it waits for the establishment's slot
    assert!(waiting.is_empty());
    assert_eq!(w.campaign(&second).await["progress"]["queued"], 1);
    // WHEN the first call never reports an end, past its lease (900 s + 300 s)
    a.now = now + Duration::seconds(1201);
    a.run_until(&w, a.now).await;
    // THEN its slot is recovered: the attempt failed, saying why
    let campaign = w.campaign(&first).await;
    assert_eq!(campaign["progress"]["dialing"], 0);
    assert_eq!(campaign["progress"]["failed"], 1);
    let e = w.enrollments(&first).await.into_values().next().unwrap();
    assert!(
        e["attempt_log"][0]["error"]
            .as_str()
            .unwrap()
            .contains("slot expired")
    );
    // AND the second campaign dials
    b.now = a.now;
    let dialed = b.run_until(&w, b.now + Duration::seconds(5)).await;
    assert_eq!(dialed.len(), 1);
}

#[tokio::test]
async fn the_campaigns_api_checks_its_input_roles_tenancy_and_states() {
    let w = world().await;
    let post = |body: Value| w.stack.post("/campaigns", &w.admin, body);
    // Bad input: 400 naming the field, or 404/422 for what the ids name.
    for (extra, status, needle) in [
        (
            json!({ "schedule": { "timezone": "America/New_York", "days": ["mon"], "start": "17:00", "end": "09:00" } }),
            400,
            "schedule",
        ),
        (
            json!({ "schedule": { "timezone": "Mars/Olympus", "days": ["mon"], "start": "09:00", "end": "17:00" } }),
            400,
            "timezone",
        ),
        (
            json!({ "schedule": { "timezone": "America/New_York", "days": ["someday"], "start": "09:00", "end": "17:00" } }),
            400,
            "days",
        ),
        (
            json!({ "pace": { "calls_per_minute": 0 } }),
            400,
            "calls_per_minute",
        ),
        (
            json!({ "pace": { "calls_per_minute": 601 } }),
            400,
            "calls_per_minute",
        ),
        (
            json!({ "lead_filter": { "status": "new", "city": "Recife" } }),
            400,
            "city",
        ),
        (
            json!({ "max_concurrent_calls": 0 }),
            400,
            "max_concurrent_calls",
        ),
        (
            json!({ "retry": { "max_attempts": 3, "retry_on": ["human"], "delay_minutes": 5 } }),
            400,
            "retry",
        ),
        (
            json!({ "agent_id": "agt_01JZZZZZZZZZZZZZZZZZZZZZZZ" }),
            404,
            "agent_id",
        ),
    ] {
        let reply = post(w.body(extra.clone())).await;
        assert_eq!(reply.status.as_u16(), status, "{extra}: {:?}", reply.body);
        assert!(
            reply.body.to_string().contains(needle),
            "{extra}: {}",
            reply.body
        );
    }
    let draft = w.stack.draft(&w.admin, &w.agent, "Not yet.").await;
    let reply = post(w.body(json!({ "agent_version_id": draft }))).await;
    assert_eq!(reply.status.as_u16(), 422, "{:?}", reply.body);
    assert_eq!(reply.body["error"]["code"], "version_not_published");
    let other_agent = w.stack.agent(&w.admin, &w.est, "Other").await;
    let other_version = w.stack.published(&w.admin, &other_agent, "Other.").await;
    let reply = post(w.body(json!({ "agent_version_id": other_version }))).await;
    assert_eq!(
        reply.status.as_u16(),
        404,
        "a version of another agent: {:?}",
        reply.body
    );
    assert_eq!(reply.body["error"]["details"]["field"], "agent_version_id");

    // Roles: operators and viewers do not define campaigns; foreign admins see nothing.
    for token in [&w.operator, &w.viewer] {
        let reply = w.stack.post("/campaigns", token, w.body(json!({}))).await;
        assert_eq!(reply.status.as_u16(), 403);
    }
    let id = w.create(json!({})).await;
    let elsewhere = w.stack.establishment(&w.admin, "Elsewhere").await;
    let stranger = w
        .stack
        .member(&w.admin, &elsewhere, "stranger@campaigns.test", "admin")
        .await;
    for path in [
        format!("/campaigns/{id}"),
        format!("/campaigns/{id}/preview"),
        format!("/campaigns/{id}/enrollments"),
    ] {
        assert_eq!(
            w.stack.get(&path, &stranger).await.status.as_u16(),
            404,
            "{path}"
        );
    }
    assert_eq!(
        w.stack
            .post_empty(&format!("/campaigns/{id}/start"), &stranger)
            .await
            .status
            .as_u16(),
        404
    );
    assert_eq!(
        w.stack
            .post_empty(&format!("/campaigns/{id}/start"), &w.viewer)
            .await
            .status
            .as_u16(),
        403
    );

    // Starting with no lead to dial: 422 with the preview.
    let reply = w
        .stack
        .post_empty(&format!("/campaigns/{id}/start"), &w.operator)
        .await;
    assert_eq!(reply.status.as_u16(), 422, "{:?}", reply.body);
    assert_eq!(reply.body["error"]["code"], "no_leads_to_dial");
    assert_eq!(reply.body["error"]["details"]["preview"]["matching"], 0);

    // The preview counts what start would skip, by reason.
    w.leads(
        "phone,timezone,first_name\n\
         +12125550100,,Ann\n\
         +12125550101,,Bob\n\
         +80012345678,,Free\n\
         +12125550102,Asia/Tokyo,Kenji\n",
    )
    .await;
    let listed = w
        .stack
        .get(
            &format!("/leads?establishment_id={}&q=Bob", w.est),
            &w.viewer,
        )
        .await
        .expect(200)
        .clone();
    let bob = listed["items"][0]["id"].as_str().unwrap().to_owned();
    w.stack
        .patch(
            &format!("/leads/{bob}"),
            &w.operator,
            json!({ "status": "do_not_call" }),
        )
        .await
        .expect(200);
    let preview = w
        .stack
        .get(&format!("/campaigns/{id}/preview"), &w.viewer)
        .await
        .expect(200)
        .clone();
    assert_eq!(preview["matching"], 3, "{preview:#}");
    assert_eq!(preview["would_dial"], 1);
    assert_eq!(preview["skipped"]["no_timezone"], 1);
    assert_eq!(preview["skipped"]["no_window"], 1);
    assert_eq!(
        preview["skipped"]["do_not_call"], 0,
        "Bob is no longer `new`"
    );
    let all = w.create(json!({ "lead_filter": {} })).await;
    let preview = w
        .stack
        .get(&format!("/campaigns/{all}/preview"), &w.viewer)
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (
            preview["matching"].as_u64(),
            preview["skipped"]["do_not_call"].as_u64()
        ),
        (Some(4), Some(1))
    );

    // Edits: allowed while created, 409 while running, the filter only before the start.
    w.stack
        .patch(
            &format!("/campaigns/{id}"),
            &w.admin,
            json!({ "name": "Renamed", "pace": { "calls_per_minute": 7 } }),
        )
        .await
        .expect(200);
    assert_eq!(
        w.stack
            .patch(
                &format!("/campaigns/{id}"),
                &w.operator,
                json!({ "name": "No" })
            )
            .await
            .status
            .as_u16(),
        403
    );
    let bad = w
        .stack
        .patch(
            &format!("/campaigns/{id}"),
            &w.admin,
            json!({ "pace": { "calls_per_minute": 1000 } }),
        )
        .await;
    assert_eq!(bad.status.as_u16(), 400);
    w.start(&id).await;
    let running = w
        .stack
        .patch(
            &format!("/campaigns/{id}"),
            &w.admin,
            json!({ "name": "Again" }),
        )
        .await;
    assert_eq!(running.status.as_u16(), 409);
    let shown = w.campaign(&id).await;
    assert_eq!(
        (
            shown["name"].as_str(),
            shown["pace"]["calls_per_minute"].as_u64()
        ),
        (Some("Renamed"), Some(7))
    );
    w.stack
        .post_empty(&format!("/campaigns/{id}/pause"), &w.operator)
        .await
        .expect(200);
    let paused = w.campaign(&id).await;
    assert_eq!(
        (paused["status"].as_str(), paused["paused_reason"].as_str()),
        (Some("paused"), Some("operator"))
    );
    let filter = w
        .stack
        .patch(
            &format!("/campaigns/{id}"),
            &w.admin,
            json!({ "lead_filter": {} }),
        )
        .await;
    assert_eq!(filter.status.as_u16(), 409);
    w.stack
        .patch(
            &format!("/campaigns/{id}"),
            &w.admin,
            json!({ "max_concurrent_calls": 2 }),
        )
        .await
        .expect(200);
    // Cancel (admins only), then nothing starts it again.
    assert_eq!(
        w.stack
            .post_empty(&format!("/campaigns/{id}/cancel"), &w.operator)
            .await
            .status
            .as_u16(),
        403
    );
    w.stack
        .post_empty(&format!("/campaigns/{id}/cancel"), &w.admin)
        .await
        .expect(200);
    let again = w
        .stack
        .post_empty(&format!("/campaigns/{id}/start"), &w.operator)
        .await;
    assert_eq!(again.status.as_u16(), 409);

    // Lists by status, and every change is in the audit log.
    let cancelled = w
        .stack
        .get(
            &format!("/campaigns?establishment_id={}&status=cancelled", w.est),
            &w.viewer,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(cancelled["items"].as_array().unwrap().len(), 1);
    assert_eq!(cancelled["items"][0]["id"], id.as_str());
    let bad_status = w
        .stack
        .get(
            &format!("/campaigns?establishment_id={}&status=sleeping", w.est),
            &w.viewer,
        )
        .await;
    assert_eq!(bad_status.status.as_u16(), 400);
    let actions = w.stack.audit_actions(&w.admin, &w.est).await;
    for action in [
        "campaign.created",
        "campaign.updated",
        "campaign.started",
        "campaign.paused",
        "campaign.cancelled",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}
