//! Reports and the dashboard (issue 15): calls made through the real paths (Twilio webhooks
//! and runtime events, outbound calls and Twilio's callbacks, a call Twilio refused), their
//! ends reported twice in both orders, an analysis re-run, in a zone with a DST change inside
//! the period; every figure of every report equals a recount of the calls the API lists
//! (campaign calls: `campaigns::a_tick_delivered_three_times_dials_each_lead_once`). Also the
//! dashboard's shared cache, and bad input.

use super::ingest::{CALLER, NUMBER, Rt, envelope, post, world};
use aws_sdk_dynamodb::types::AttributeValue;
use callplane::domain::report::{Counters, Figures, billed_minutes, counter, histogram_key};
use callplane::ids::{CallId, EstablishmentId};
use callplane::store::keys;
use callplane::time::Timestamp;
use callplane_tests::twilio::Failure;
use callplane_tests::world::{incoming, parameter, summary_batch};
use callplane_tests::{Reply, Stack};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use http::Method;
use serde_json::{Value, json};

const ZONE: &str = "America/New_York";
const HANDOFF: &str = "+14155552673";

/// A runtime event of call `sid` at `occurred_at`.
fn event(rt: &Rt, sid: &str, kind: &str, key: &str, payload: Value) -> Value {
    envelope(rt, sid, kind, &format!("{sid}-{key}"), payload)
}

fn customer(sid: &str, i: u32, text: &str) -> Value {
    json!({ "segment_id": format!("{sid}-seg-{i}"), "speaker": "customer", "text": text,
            "started_at": Timestamp::now().to_string(), "ended_at": Timestamp::now().to_string(),
            "confidence": 0.9 })
}

async fn send(stack: &Stack, rt: &Rt, events: Vec<Value>) {
    for e in events {
        post(stack, &rt.token, e).await.expect(202);
    }
}

fn ended(seconds: u32) -> Value {
    json!({ "ended_at": Timestamp::now().to_string(), "duration_seconds": seconds,
            "final_status": "completed", "hangup_by": "customer" })
}

async fn status(stack: &Stack, query: &str, sid: &str, status: &str, extra: &[(&str, &str)]) {
    let mut params = vec![("CallSid", sid), ("CallStatus", status)];
    params.extend_from_slice(extra);
    let reply = stack
        .twilio_hook(
            &format!("/webhooks/twilio/call-status{query}"),
            &params,
            None,
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
}

/// Moves call `id`'s start to `at` (and its place in the history index with it): a call that
/// began then, as the reports see it.
async fn began_at(stack: &Stack, id: &str, at: &str) {
    let id = CallId::parse(id).unwrap();
    let then = Timestamp::parse(at).unwrap();
    stack
        .tamper(
            &keys::call(&id),
            &[
                ("created_at", AttributeValue::S(then.to_string())),
                ("gsi1sk", AttributeValue::S(keys::call_sort(&then, &id))),
            ],
        )
        .await;
}

/// Runs the post-call function on the summary queue's batches, as Lambda delivers them,
/// until every ended call of `est` is analysed and counted as it is now (jobs of an end
/// Twilio reported wait 20 s on the queue).
pub(crate) async fn drain(stack: &Stack, est: &str) {
    let analyzer =
        callplane::analysis::Analyzer::new(&callplane::config::AnalyzerKind::Builtin, &stack.sdk);
    let est = EstablishmentId::parse(est).unwrap();
    let zone: Tz = ZONE.parse().unwrap();
    for _ in 0..90 {
        let batch = summary_batch(stack).await;
        if !batch["Records"].as_array().unwrap().is_empty() {
            let event: post_call::SqsEvent = serde_json::from_value(batch).unwrap();
            // Two jobs of one call in a batch: one runs, the other is handed back (and is a
            // no-op when it comes again).
            post_call::handle(&stack.app, &analyzer, event).await;
        }
        let calls = stack
            .app
            .store
            .call_history_of(std::slice::from_ref(&est), &Default::default(), 100, None)
            .await
            .unwrap()
            .items;
        let settled = calls.iter().all(|c| {
            c.final_status.is_none()
                || (c.analysis.as_ref().is_some_and(|a| {
                    !matches!(
                        a.status,
                        callplane::domain::analysis::AnalysisStatus::Pending
                            | callplane::domain::analysis::AnalysisStatus::Running
                    )
                }) && callplane::service::reports::mark(c, zone) == c.report)
        });
        if settled {
            return;
        }
    }
    panic!("the post-call worker did not catch up");
}

/// Every call of the establishment, as `GET /calls` lists them.
pub(crate) async fn listed(stack: &Stack, token: &str, est: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = format!("/calls?establishment_id={est}&limit=100");
    loop {
        let body = stack.get(&path, token).await.expect(200).clone();
        all.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["cursor"].as_str() {
            Some(c) => path = format!("/calls?establishment_id={est}&limit=100&cursor={c}"),
            None => return all,
        }
    }
}

/// What one listed call counts for, recounted here from the call as the API shows it.
fn recount(call: &Value) -> Counters {
    let mut c = Counters::default();
    let text = |k: &str| call[k].as_str().unwrap_or_default().to_owned();
    c.one(counter::CALLS);
    let outbound = text("direction") == "outbound";
    c.one(if outbound {
        counter::OUTBOUND
    } else {
        counter::INBOUND
    });
    if !call["started_at"].is_null() {
        c.one(counter::ANSWERED);
    }
    c.one(&format!("st_{}", text("status")));
    if text("status") == "completed" {
        c.one(counter::COMPLETED);
    }
    c.one(&format!("dp_{}", text("disposition")));
    if let Some(d) = call["duration_seconds"].as_u64() {
        let d = d as u32;
        c.one(counter::WITH_DURATION);
        c.add(counter::DURATION_SUM, i64::from(d));
        c.one(&histogram_key(d));
        let minutes = if outbound {
            counter::MINUTES_OUTBOUND
        } else {
            counter::MINUTES_INBOUND
        };
        c.add(minutes, billed_minutes(d));
    }
    if !call["handoff"].is_null() {
        c.one(counter::HANDOFFS);
    }
    if outbound && text("answered_by").starts_with("machine") {
        c.one(counter::VOICEMAIL);
    }
    match call["analysis"]["status"].as_str() {
        Some("succeeded") => {
            c.one(counter::ANALYSED);
            match call["analysis"]["success"].as_bool() {
                Some(true) => c.one(counter::SUCCESS_YES),
                Some(false) => c.one(counter::SUCCESS_NO),
                None => {}
            }
        }
        Some("failed") => c.one(counter::ANALYSIS_FAILED),
        _ => {}
    }
    let mut reasons = 0;
    if let Some(label) = call["sentiment"]["label"].as_str() {
        c.one(match label {
            "positive" => counter::POSITIVE,
            "neutral" => counter::NEUTRAL,
            _ => counter::NEGATIVE,
        });
        reasons += usize::from(label == "negative");
        let score = call["sentiment"]["score"].as_f64().unwrap();
        c.add(counter::SENTIMENT_MILLI, (score * 1000.0).round() as i64);
    }
    c.add(counter::TOOL_CALLS, call["tool_calls"].as_i64().unwrap());
    c.add(counter::TOOL_ERRORS, call["tool_errors"].as_i64().unwrap());
    if call["runtime_errors"].as_u64().unwrap() > 0 {
        c.one(counter::RUNTIME_ERRORS);
        reasons += 1;
    }
    if !call["swept_at"].is_null() {
        c.one(counter::SWEPT);
        reasons += 1;
    }
    reasons += usize::from(!call["handoff"].is_null());
    reasons += usize::from(call["analysis"]["status"] == "failed");
    if reasons > 0 {
        c.one(counter::ATTENTION);
    }
    if !call["campaign_id"].is_null() {
        c.one(counter::CAMPAIGN);
    }
    c
}

/// The local day a listed call began on.
fn day_of(call: &Value, zone: Tz) -> String {
    let at: DateTime<Utc> = call["created_at"].as_str().unwrap().parse().unwrap();
    at.with_timezone(&zone).date_naive().to_string()
}

/// The figures of the listed calls `keep` selects, as JSON.
pub(crate) fn figures_of(calls: &[Value], keep: impl Fn(&Value) -> bool) -> Value {
    let mut sum = Counters::default();
    for call in calls.iter().filter(|c| keep(c)) {
        sum.merge(&recount(call), 1);
    }
    serde_json::to_value(Figures::from(&sum)).unwrap()
}

fn today(zone: Tz) -> String {
    Utc::now().with_timezone(&zone).date_naive().to_string()
}

#[tokio::test]
async fn every_report_figure_equals_a_recount_of_the_calls_the_api_lists() {
    // GIVEN an establishment in New York (DST ended on 1 November 2026: a 25-hour day) with
    // a routed agent, a handoff number and a running runtime
    let stack = Stack::new().await;
    let mut rt = world(&stack, NUMBER).await;
    let zone: Tz = ZONE.parse().unwrap();
    let est = rt.est.clone();
    stack
        .patch(
            &format!("/establishments/{est}"),
            &rt.admin,
            json!({ "timezone": ZONE }),
        )
        .await
        .expect(200);
    stack
        .patch(
            &format!("/establishments/{est}/telephony"),
            &rt.admin,
            json!({ "handoff_e164": HANDOFF }),
        )
        .await
        .expect(200);
    let first_version = rt.version.clone();

    // AND call A, at 01:30 EDT on 1 November: happy, one tool call; the runtime reports its
    // end first, Twilio's callback comes after
    let a = parameter(&incoming(&stack, "CA_rA", CALLER, NUMBER).await, "call_id").unwrap();
    began_at(&stack, &a, "2026-11-01T05:30:00Z").await;
    send(
        &stack,
        &rt,
        vec![
            event(
                &rt,
                "CA_rA",
                "call_started",
                "start",
                json!({ "started_at": Timestamp::now().to_string() }),
            ),
            event(
                &rt,
                "CA_rA",
                "transcript_segment",
                "s0",
                customer(
                    "CA_rA",
                    0,
                    "Thank you so much, that is wonderful and great!",
                ),
            ),
            event(
                &rt,
                "CA_rA",
                "tool_result",
                "t0",
                json!({ "tool_name": "calendar", "tool_call_id": "tc1" }),
            ),
            event(&rt, "CA_rA", "call_ended", "end", ended(40)),
        ],
    )
    .await;
    status(&stack, "", "CA_rA", "completed", &[("CallDuration", "41")]).await;

    // AND call B, at 01:30 EST (the same local hour again): angry, a failed tool call and a
    // runtime error; Twilio reports its end first, the runtime's comes after
    let b = parameter(&incoming(&stack, "CA_rB", CALLER, NUMBER).await, "call_id").unwrap();
    began_at(&stack, &b, "2026-11-01T06:30:00Z").await;
    send(
        &stack,
        &rt,
        vec![
            event(
                &rt,
                "CA_rB",
                "call_started",
                "start",
                json!({ "started_at": Timestamp::now().to_string() }),
            ),
            event(
                &rt,
                "CA_rB",
                "transcript_segment",
                "s0",
                customer(
                    "CA_rB",
                    0,
                    "This is terrible, awful, I hate this horrible service.",
                ),
            ),
            event(
                &rt,
                "CA_rB",
                "tool_result",
                "t0",
                json!({ "tool_name": "crm", "tool_call_id": "tc1", "error": "timeout" }),
            ),
            event(
                &rt,
                "CA_rB",
                "runtime_error",
                "e0",
                json!({ "component": "tts", "message": "voice unavailable", "fatal": false }),
            ),
        ],
    )
    .await;
    status(&stack, "", "CA_rB", "completed", &[("CallDuration", "95")]).await;
    send(
        &stack,
        &rt,
        vec![event(&rt, "CA_rB", "call_ended", "end", ended(94))],
    )
    .await;

    // AND call C, on 31 October (EDT), handed off to a person, with a newer version published
    // before it
    rt.version = stack
        .published(&rt.admin, &rt.agent, "You are even more helpful.")
        .await;
    let c = parameter(&incoming(&stack, "CA_rC", CALLER, NUMBER).await, "call_id").unwrap();
    began_at(&stack, &c, "2026-10-31T22:15:00Z").await;
    stack
        .post(
            &format!("/calls/{c}/handoff"),
            &rt.admin,
            json!({ "reason": "customer_requested_human" }),
        )
        .await
        .expect(200);
    status(&stack, "", "CA_rC", "completed", &[("CallDuration", "200")]).await;

    // AND today: outbound call D answered by a machine, outbound call E nobody answered, and
    // outbound call F Twilio refused
    let place = |key: &'static str| {
        let body = json!({ "establishment_id": est, "agent_id": rt.agent, "to_e164": CALLER,
                           "answering_machine_detection": true,
                           "lead_id": format!("=HYPERLINK(\"http://evil.example/{key}\")") });
        let token = rt.admin.clone();
        let stack = &stack;
        async move {
            let req = http::Request::builder()
                .method(Method::POST)
                .uri("/calls/outbound")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .header("idempotency-key", key)
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            stack.send_raw(req).await
        }
    };
    let d = place("rD").await.expect(201).clone();
    let (d_id, d_sid) = (
        d["call_id"].as_str().unwrap().to_owned(),
        d["provider_call_sid"].as_str().unwrap().to_owned(),
    );
    let d_query = format!("?call_id={d_id}");
    status(&stack, &d_query, &d_sid, "ringing", &[]).await;
    status(&stack, &d_query, &d_sid, "in-progress", &[]).await;
    let amd = stack
        .twilio_hook(
            &format!("/webhooks/twilio/amd-callback?call_id={d_id}"),
            &[
                ("CallSid", d_sid.as_str()),
                ("AnsweredBy", "machine_end_beep"),
                ("MachineDetectionDuration", "2100"),
            ],
            None,
        )
        .await;
    assert_eq!(amd.status, 204);
    status(
        &stack,
        &d_query,
        &d_sid,
        "completed",
        &[("CallDuration", "12")],
    )
    .await;
    // (reported twice)
    status(
        &stack,
        &d_query,
        &d_sid,
        "completed",
        &[("CallDuration", "12")],
    )
    .await;
    let e = place("rE").await.expect(201).clone();
    let (e_id, e_sid) = (
        e["call_id"].as_str().unwrap().to_owned(),
        e["provider_call_sid"].as_str().unwrap().to_owned(),
    );
    status(
        &stack,
        &format!("?call_id={e_id}"),
        &e_sid,
        "no-answer",
        &[("CallDuration", "0")],
    )
    .await;
    stack.twilio.fail_next(&[Failure {
        status: 400,
        code: 21211,
    }]);
    place("rF").await.expect_error(422, "invalid_number");

    // AND the post-call worker has worked the queue
    drain(&stack, &est).await;

    // AND B is analysed again after a late, calmer turn arrived: its contribution is replaced
    send(
        &stack,
        &rt,
        vec![event(
            &rt,
            "CA_rB",
            "transcript_segment",
            "s1",
            customer(
                "CA_rB",
                1,
                "Actually, thank you, that is wonderful, great help, I love it!",
            ),
        )],
    )
    .await;
    let before = stack
        .get(&format!("/calls/{b}"), &rt.admin)
        .await
        .expect(200)["sentiment"]
        .clone();
    stack
        .post_empty(&format!("/calls/{b}/analysis"), &rt.admin)
        .await
        .expect(202);
    drain(&stack, &est).await;
    let after = stack
        .get(&format!("/calls/{b}"), &rt.admin)
        .await
        .expect(200)["sentiment"]
        .clone();
    assert_ne!(
        before["score"], after["score"],
        "the re-run changed B's sentiment"
    );

    let calls = listed(&stack, &rt.admin, &est).await;
    assert_eq!(calls.len(), 6, "A to F");
    let today = today(zone);
    let q = format!("establishment_id={est}&from=2026-10-25&to={today}");

    // WHEN agent performance is read per version THEN each version's figures are the recount
    // of its calls, and its series puts them on their local days
    let perf = stack
        .get(
            &format!("/reports/agent-performance?{q}&group_by=version"),
            &rt.admin,
        )
        .await;
    let perf = perf.expect(200);
    assert_eq!(perf["period"]["time_zone"], ZONE);
    let rows = perf["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for row in rows {
        let version = row["agent_version_id"].as_str().unwrap();
        let mine = |c: &Value| c["agent_version_id"] == version;
        assert_eq!(
            row["figures"],
            figures_of(&calls, mine),
            "version {version}"
        );
        assert_eq!(row["agent_name"], "Concierge");
        for point in row["series"].as_array().unwrap() {
            let day = point["day"].as_str().unwrap();
            let f = figures_of(&calls, |c| mine(c) && day_of(c, zone) == day);
            assert_eq!(point["calls"], f["calls"], "{version} on {day}");
            assert_eq!(point["success_rate"], f["success_rate"]);
            assert_eq!(
                point["average_duration_seconds"],
                f["average_duration_seconds"]
            );
        }
    }
    let versions: Vec<&str> = rows
        .iter()
        .map(|r| r["agent_version_id"].as_str().unwrap())
        .collect();
    assert!(versions.contains(&first_version.as_str()) && versions.contains(&rt.version.as_str()));
    // AND per agent, the agent's figures are every call's
    let per_agent = stack
        .get(
            &format!("/reports/agent-performance?{q}&agent_id={}", rt.agent),
            &rt.admin,
        )
        .await;
    let per_agent = per_agent.expect(200);
    assert_eq!(
        per_agent["rows"][0]["figures"],
        figures_of(&calls, |_| true)
    );
    let figures = &per_agent["rows"][0]["figures"];
    assert_eq!(figures["calls"], 6);
    assert_eq!(figures["handoffs"], 1);
    assert_eq!(figures["voicemail"], 1);
    assert_eq!(figures["tool_calls"], 2);
    assert_eq!(figures["tool_errors"], 1);
    assert_eq!(figures["runtime_errors"], 1);
    assert_eq!(
        figures["by_status"]["failed"], 1,
        "F, which Twilio refused, counts once"
    );
    // AND per day, the DST day holds both 01:30 calls
    let per_day = stack
        .get(
            &format!("/reports/agent-performance?{q}&group_by=day"),
            &rt.admin,
        )
        .await;
    let days: Vec<(String, Value)> = per_day.expect(200)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["day"].as_str().unwrap().to_owned(),
                r["figures"]["calls"].clone(),
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-10-31".to_owned(), json!(1)),
            ("2026-11-01".to_owned(), json!(2)),
            (today.clone(), json!(3)),
        ]
    );

    // WHEN the calls report is read by day, status, direction and disposition THEN each
    // group is the recount of its calls
    for group in ["day", "status", "direction", "disposition"] {
        let report = stack
            .get(&format!("/reports/calls?{q}&group_by={group}"), &rt.admin)
            .await;
        let report = report.expect(200);
        assert_eq!(report["totals"], figures_of(&calls, |_| true), "{group}");
        for row in report["groups"].as_array().unwrap() {
            let key = row["key"].as_str().unwrap();
            let f = figures_of(&calls, |c| match group {
                "day" => day_of(c, zone) == key,
                "status" => c["status"] == key,
                "direction" => c["direction"] == key,
                _ => c["disposition"] == key,
            });
            assert_eq!(row["calls"], f["calls"], "{group} {key}");
            if group == "day" {
                assert_eq!(row["figures"], f);
            }
        }
    }
    // AND by hour across the DST change: 31 Oct to 2 Nov is 73 hours, B and A in the two
    // 01:00 hours of 1 November
    let hourly = stack
        .get(
            &format!(
                "/reports/calls?establishment_id={est}&from=2026-10-31&to=2026-11-02&group_by=hour"
            ),
            &rt.admin,
        )
        .await;
    let hourly = hourly.expect(200);
    let groups = hourly["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 73);
    let busy: Vec<(&str, &Value)> = groups
        .iter()
        .filter(|g| g["calls"] != 0)
        .map(|g| (g["key"].as_str().unwrap(), &g["calls"]))
        .collect();
    assert_eq!(
        busy,
        vec![
            ("2026-10-31T18:00:00-04:00", &json!(1)),
            ("2026-11-01T01:00:00-04:00", &json!(1)),
            ("2026-11-01T01:00:00-05:00", &json!(1)),
        ]
    );

    // WHEN usage is read for November THEN calls and billed minutes (rounded up per call)
    // are the recount's, day by day
    let usage = stack
        .get(
            &format!("/establishments/{est}/usage?month=2026-11"),
            &rt.admin,
        )
        .await;
    let usage = usage.expect(200);
    let november = figures_of(&calls, |c| day_of(c, zone).starts_with("2026-11"));
    assert_eq!(usage["plan"], "stub");
    assert_eq!(usage["billed_minutes"], november["billed_minutes"]);
    assert_eq!(usage["calls"]["inbound"], november["inbound"]);
    assert_eq!(usage["days"].as_array().unwrap().len(), 30);
    let first = &usage["days"][0];
    assert_eq!(first["day"], "2026-11-01");
    assert_eq!(
        first["billed_minutes"],
        json!({ "inbound": 3, "outbound": 0 }),
        "40 s and 94 s"
    );

    // WHEN the dashboard is read for today THEN its figures are today's calls' (D, E, F)
    let kpis = stack
        .get(
            &format!("/dashboard/kpis?establishment_id={est}&range=today"),
            &rt.admin,
        )
        .await;
    let kpis = kpis.expect(200).clone();
    let expected = figures_of(&calls, |c| day_of(c, zone) == today);
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(kpis[k], *v, "dashboard {k}");
    }
    assert_eq!(kpis["calls"], 3);
    assert_eq!(kpis["active_calls"], 0);
    assert_eq!(kpis["campaigns_running"], 0);
    let by_hour: u64 = kpis["by_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(by_hour, 3);

    // AND the needs-attention list holds the calls whose view says why they need a look: B
    // (its runtime error) and C (its handoff), newest first
    let attention = stack
        .get(
            &format!("/dashboard/needs-attention?establishment_id={est}"),
            &rt.admin,
        )
        .await;
    let items = attention.expect(200)["items"].as_array().unwrap().clone();
    let listed_reasons: Vec<(String, Vec<String>)> = items
        .iter()
        .map(|i| {
            (
                i["call_id"].as_str().unwrap().to_owned(),
                serde_json::from_value(i["reasons"].clone()).unwrap(),
            )
        })
        .collect();
    let view_reasons: Vec<(String, Vec<String>)> = calls
        .iter()
        .filter(|c| !c["needs_attention"].as_array().unwrap().is_empty())
        .map(|c| {
            (
                c["call_id"].as_str().unwrap().to_owned(),
                serde_json::from_value(c["needs_attention"].clone()).unwrap(),
            )
        })
        .collect();
    let mut sorted = listed_reasons.clone();
    sorted.sort();
    let mut expected_reasons = view_reasons;
    expected_reasons.sort();
    assert_eq!(sorted, expected_reasons);
    assert!(
        listed_reasons
            .iter()
            .any(|(id, r)| *id == b && r.contains(&"runtime_error".to_owned()))
    );
    assert!(
        listed_reasons
            .iter()
            .any(|(id, r)| *id == c && r == &vec!["handoff".to_owned()])
    );
    assert_eq!(listed_reasons[0].0, c, "C ended last");

    // WHEN the calls are exported THEN the first request starts a job (202), and the same
    // request answers the same export, ready once the post-call worker made it
    let export_path = format!("/reports/calls/export?{q}");
    let started = stack.get(&export_path, &rt.admin).await;
    let started = started.expect(202).clone();
    assert_eq!(started["status"], "pending");
    let ready = loop {
        let batch = summary_batch(&stack).await;
        let event: post_call::SqsEvent = serde_json::from_value(batch).unwrap();
        post_call::handle(
            &stack.app,
            &callplane::analysis::Analyzer::new(
                &callplane::config::AnalyzerKind::Builtin,
                &stack.sdk,
            ),
            event,
        )
        .await;
        let reply = stack.get(&export_path, &rt.admin).await;
        if reply.status == 200 {
            break reply.body.clone();
        }
        assert_eq!(reply.expect(202)["export_id"], started["export_id"]);
    };
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["rows"], 6);
    // AND the download is a CSV of every call, with the formula-looking lead ids neutralised
    // and phone numbers left as they are
    let (code, bytes) = callplane_tests::http_get(ready["download_url"].as_str().unwrap()).await;
    assert_eq!(code, 200);
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        callplane::service::reports::EXPORT_COLUMNS.to_vec()
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut exported: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    let mut ids: Vec<&str> = calls
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    exported.sort();
    ids.sort();
    assert_eq!(exported, ids);
    let d_row = rows.iter().find(|r| r[0] == *d_id).unwrap();
    assert_eq!(&d_row[16], "'=HYPERLINK(\"http://evil.example/rD\")");
    assert_eq!(&d_row[6], CALLER);
    assert_eq!(&d_row[11], "12");
}

/// An establishment with a routed agent and a runtime whose call `sid` is ended and counted.
async fn counted_call(stack: &Stack, rt: &Rt, sid: &str) {
    incoming(stack, sid, CALLER, NUMBER).await;
    send(
        stack,
        rt,
        vec![event(rt, sid, "call_ended", "end", ended(20))],
    )
    .await;
    drain(stack, &rt.est).await;
}

#[tokio::test]
async fn the_dashboard_is_served_from_a_shared_cache_for_15_seconds() {
    // GIVEN an establishment with one counted call, and its dashboard read once
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    stack
        .patch(
            &format!("/establishments/{}", rt.est),
            &rt.admin,
            json!({ "timezone": ZONE }),
        )
        .await
        .expect(200);
    counted_call(&stack, &rt, "CA_k1").await;
    let path = format!("/dashboard/kpis?establishment_id={}", rt.est);
    let (first, computing) = stack.round_trips.during(stack.get(&path, &rt.admin)).await;
    let first = first.expect(200).clone();
    assert_eq!(first["calls"], 1);

    // WHEN another call is counted and the dashboard is read again within 15 s (by another
    // instance of the function: the cache is in the table)
    counted_call(&stack, &rt, "CA_k2").await;
    let other = stack.redeployed(&[]);
    let (second, cached) = other.round_trips.during(other.get(&path, &rt.admin)).await;
    // THEN the same answer comes back from the cache, in two requests (the caller's session
    // and the cache), without reading the aggregates
    let second = second.expect(200).clone();
    assert_eq!(second, first);
    assert_eq!(cached, 2, "computing it took {computing}");
    assert!(computing > cached);

    // WHEN 15 s have passed since it was computed THEN a read computes it anew
    let computed = Timestamp::parse(first["computed_at"].as_str().unwrap()).unwrap();
    let wait = computed.unix() + 16 - Timestamp::now().unix();
    tokio::time::sleep(std::time::Duration::from_secs(wait.max(0) as u64)).await;
    let third = stack.get(&path, &rt.admin).await;
    let third = third.expect(200);
    assert_eq!(third["calls"], 2);
    assert_ne!(third["computed_at"], first["computed_at"]);
}

#[tokio::test]
async fn bad_report_queries_are_400_naming_the_field_and_foreign_ones_404() {
    // GIVEN two establishments, each with an agent, and a viewer of the first
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let viewer = stack
        .member(&rt.admin, &rt.est, "viewer@example.com", "viewer")
        .await;
    let other_est = stack.establishment(&rt.admin, "Elsewhere").await;
    let other_agent = stack.agent(&rt.admin, &other_est, "Stranger").await;
    let stranger = stack
        .member(&rt.admin, &other_est, "stranger@example.com", "admin")
        .await;
    let est = &rt.est;
    let expect_400 = |reply: Reply, field: &str| {
        let message = reply.expect_error(400, "validation_failed");
        assert!(message.contains(field), "{field}: {message}");
    };
    // WHEN the queries are malformed THEN 400 naming the field
    for (path, field) in [
        (
            format!("/reports/calls?establishment_id={est}&range=1y"),
            "range",
        ),
        (
            format!("/reports/calls?establishment_id={est}&group_by=week"),
            "group_by",
        ),
        (
            format!("/reports/calls?establishment_id={est}&from=2026-03-05&to=2026-03-01"),
            "from",
        ),
        (
            format!("/reports/calls?establishment_id={est}&from=2024-01-01&to=2026-03-01"),
            "to",
        ),
        (
            format!("/reports/calls?establishment_id={est}&from=yesterday&to=2026-03-01"),
            "from",
        ),
        (
            format!("/reports/calls?establishment_id={est}&from=2026-03-01"),
            "to",
        ),
        (
            format!("/reports/calls?establishment_id={est}&range=7d&from=2026-03-01&to=2026-03-02"),
            "range",
        ),
        (
            format!(
                "/reports/calls?establishment_id={est}&from=2026-01-01&to=2026-03-01&group_by=hour"
            ),
            "group_by",
        ),
        (
            format!("/reports/agent-performance?establishment_id={est}&group_by=month"),
            "group_by",
        ),
        (
            format!(
                "/reports/agent-performance?establishment_id={est}&from=2026-02-30&to=2026-03-01"
            ),
            "from",
        ),
        (
            format!("/dashboard/kpis?establishment_id={est}&range=90d"),
            "range",
        ),
        (
            format!("/dashboard/needs-attention?establishment_id={est}&limit=0"),
            "limit",
        ),
        (
            format!("/establishments/{est}/usage?month=2026-13"),
            "month",
        ),
        (
            "/reports/calls?establishment_id=nope".to_owned(),
            "establishment_id",
        ),
    ] {
        expect_400(stack.get(&path, &rt.admin).await, field);
    }
    // AND a foreign agent or establishment is 404, and usage is for admins
    stack
        .get(
            &format!("/reports/agent-performance?establishment_id={est}&agent_id={other_agent}"),
            &rt.admin,
        )
        .await
        .expect_error(404, "not_found");
    for path in [
        format!("/dashboard/kpis?establishment_id={est}"),
        format!("/dashboard/needs-attention?establishment_id={est}"),
        format!("/reports/calls?establishment_id={est}"),
        format!("/reports/agent-performance?establishment_id={est}"),
        format!("/establishments/{est}/usage"),
    ] {
        stack
            .get(&path, &stranger)
            .await
            .expect_error(404, "not_found");
    }
    stack
        .get(&format!("/establishments/{est}/usage"), &viewer)
        .await
        .expect_error(403, "forbidden");
    stack
        .get(&format!("/reports/calls?establishment_id={est}"), &viewer)
        .await
        .expect(200);
}
