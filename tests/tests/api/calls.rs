//! Calls (PRD M2): the Twilio webhooks (signatures, every policy branch, retries, callbacks in
//! any order), outbound calls against the Twilio stand-in (idempotency, Twilio's errors),
//! handoff, the do-not-call list, WhatsApp's webhook checks, roles and tenancy. The M2
//! acceptance test streams a call into a runtime-sim over a real WebSocket.

use callplane::domain::NumberProvider;
use callplane_tests::twilio::{Failure, LostAnswer};
use callplane_tests::world::{
    HOST, health, incoming, parameter, routed, running_runtime, runtime_sim,
};
use callplane_tests::{Reply, Stack};
use chrono::Datelike;
use futures::{SinkExt, StreamExt};
use http::Method;
use serde_json::{Value, json};

const NUMBER: &str = "+14155552671";
const CALLER: &str = "+14155552672";
const HANDOFF: &str = "+14155552673";
const OTHER_NUMBER: &str = "+14155552674";

/// The call recorded for a Twilio CallSid, as the API shows it.
async fn call_of_sid(stack: &Stack, token: &str, sid: &str) -> Value {
    let guard = stack
        .app
        .store
        .call_by_sid(NumberProvider::Twilio, sid)
        .await
        .unwrap()
        .expect("a call for this CallSid");
    stack
        .get(&format!("/calls/{}", guard.call_id), token)
        .await
        .expect(200)
        .clone()
}

async fn status_callback(
    stack: &Stack,
    query: &str,
    sid: &str,
    status: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut params = vec![("CallSid", sid), ("CallStatus", status)];
    params.extend_from_slice(extra);
    stack
        .twilio_hook(
            &format!("/webhooks/twilio/call-status{query}"),
            &params,
            None,
        )
        .await
}

#[tokio::test]
async fn m2_the_webhook_streams_each_number_to_its_own_runtime_and_the_call_arrives_there() {
    // GIVEN two establishments, each with a number, a published agent and a ready runtime
    // served by its own runtime-sim
    let stack = Stack::new().await;
    let (admin, est_a, agent_a) = routed(&stack, NUMBER).await;
    let est_b = stack.establishment(&admin, "Other").await;
    let agent_b = stack.agent(&admin, &est_b, "Other agent").await;
    stack.published(&admin, &agent_b, "Other.").await;
    stack
        .number(&admin, &est_b, OTHER_NUMBER, &agent_b)
        .await
        .expect(201);
    let (port_a, sim_a) = runtime_sim().await;
    let (port_b, sim_b) = runtime_sim().await;
    let (runtime_a, _, _) = running_runtime(&stack, &admin, &est_a, port_a).await;
    running_runtime(&stack, &admin, &est_b, port_b).await;

    // WHEN Twilio posts an incoming call to A's number
    let round_trips_before = stack.round_trips.get();
    let twiml = incoming(&stack, "CA0001", CALLER, NUMBER).await;
    let trips = stack.round_trips.get() - round_trips_before;

    // THEN the TwiML streams to A's runtime with the call's parameters, in 3 round trips
    assert!(
        twiml.contains(&format!(
            "<Connect><Stream url=\"wss://127.0.0.1:{port_a}/media-stream\">"
        )),
        "{twiml}"
    );
    assert_eq!(trips, 3, "incoming-call webhook round trips");
    let call_id = parameter(&twiml, "call_id").unwrap();
    assert_eq!(parameter(&twiml, "establishment_id").unwrap(), est_a);
    assert_eq!(parameter(&twiml, "agent_id").unwrap(), agent_a);
    assert!(
        parameter(&twiml, "agent_version_id")
            .unwrap()
            .starts_with("agv_")
    );
    assert_eq!(
        parameter(&twiml, "max_call_duration_seconds").unwrap(),
        "900"
    );
    // AND the call is recorded, in progress on that runtime
    let call = stack.get(&format!("/calls/{call_id}"), &admin).await;
    let call = call.expect(200);
    assert_eq!(call["status"], "in_progress");
    assert_eq!(call["direction"], "inbound");
    assert_eq!(call["disposition"], "runtime");
    assert_eq!(call["runtime_id"], runtime_a.as_str());
    assert_eq!(call["provider_call_sid"], "CA0001");
    assert_eq!(call["from_e164"], CALLER);
    assert_eq!(call["sentiment"], Value::Null);

    // WHEN Twilio opens the media stream (TLS ends in front of the host; plain ws here)
    let url = format!("ws://127.0.0.1:{port_a}/media-stream");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let custom: serde_json::Map<String, Value> = ["call_id", "establishment_id", "agent_id"]
        .iter()
        .map(|n| (n.to_string(), json!(parameter(&twiml, n).unwrap())))
        .collect();
    for message in [
        json!({ "event": "connected", "protocol": "Call", "version": "1.0.0" }),
        json!({ "event": "start", "sequenceNumber": "1", "streamSid": "MZ01",
                "start": { "streamSid": "MZ01", "callSid": "CA0001", "accountSid": "AC1",
                           "tracks": ["inbound"], "customParameters": custom,
                           "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 } } }),
        json!({ "event": "media", "sequenceNumber": "2", "streamSid": "MZ01",
                "media": { "track": "inbound", "chunk": "1", "timestamp": "5", "payload": "fw==" } }),
        json!({ "event": "stop", "sequenceNumber": "3", "streamSid": "MZ01",
                "stop": { "accountSid": "AC1", "callSid": "CA0001" } }),
    ] {
        ws.send(tokio_tungstenite::tungstenite::Message::text(
            message.to_string(),
        ))
        .await
        .unwrap();
    }
    // The sim closes the socket after `stop`.
    while ws.next().await.is_some_and(|m| m.is_ok()) {}

    // THEN runtime A handled exactly this call, with its parameters, and B saw nothing
    {
        let (a, b) = (sim_a.lock().unwrap(), sim_b.lock().unwrap());
        assert_eq!(a.total_calls_handled, 1);
        assert_eq!(a.calls[0].custom_parameters["call_id"], call_id.as_str());
        assert_eq!(a.calls[0].media_frames, 1);
        assert!(a.calls[0].ended);
        assert_eq!(b.total_calls_handled, 0);
    }

    // WHEN Twilio reports the call completed THEN the call is final with its duration
    status_callback(&stack, "", "CA0001", "completed", &[("CallDuration", "42")])
        .await
        .expect(204);
    let call = stack.get(&format!("/calls/{call_id}"), &admin).await;
    let call = call.expect(200);
    assert_eq!(call["status"], "completed");
    assert_eq!(call["duration_seconds"], 42);
    assert_eq!(call["end_reason"], "completed");
}

/// A day rule that is never open today in São Paulo (the test establishments' zone).
fn closed_today() -> Value {
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Sao_Paulo)
        .weekday();
    let other = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [today.succ().succ().num_days_from_monday() as usize];
    json!([{ "days": [other], "start": "08:00", "end": "18:00" }])
}

#[tokio::test]
async fn every_policy_branch_answers_as_specified() {
    // GIVEN a routed number, no runtime yet, no handoff number
    let stack = Stack::new().await;
    let (admin, est, _) = routed(&stack, NUMBER).await;
    let telephony = format!("/establishments/{est}/telephony");

    // WHEN a caller on the blacklist calls THEN the call is rejected and recorded as such
    stack
        .patch(&telephony, &admin, json!({ "blacklist_e164": [CALLER] }))
        .await
        .expect(200);
    let twiml = incoming(&stack, "CA-black", CALLER, NUMBER).await;
    assert!(
        twiml.ends_with("<Response><Reject reason=\"rejected\"/></Response>"),
        "{twiml}"
    );
    let call = call_of_sid(&stack, &admin, "CA-black").await;
    assert_eq!(
        (call["status"].as_str(), call["disposition"].as_str()),
        (Some("rejected"), Some("blacklisted"))
    );
    stack
        .patch(&telephony, &admin, json!({ "blacklist_e164": [] }))
        .await
        .expect(200);

    // WHEN a caller on the do-not-call list calls THEN it is rejected too
    stack
        .post(
            &format!("/establishments/{est}/do-not-call"),
            &admin,
            json!({ "e164": CALLER, "reason": "asked" }),
        )
        .await
        .expect(201);
    let twiml = incoming(&stack, "CA-dnc", CALLER, NUMBER).await;
    assert!(twiml.contains("<Reject reason=\"rejected\"/>"), "{twiml}");
    assert_eq!(
        call_of_sid(&stack, &admin, "CA-dnc").await["disposition"],
        "do_not_call"
    );
    let other_caller = "+14155550199";

    // WHEN a call comes outside business hours with no handoff number THEN Say + Hangup
    stack
        .patch(
            &telephony,
            &admin,
            json!({ "business_hours": closed_today() }),
        )
        .await
        .expect(200);
    let twiml = incoming(&stack, "CA-closed1", other_caller, NUMBER).await;
    assert!(
        twiml.contains("<Say>Thank you for calling. We are closed right now. Please call again"),
        "{twiml}"
    );
    assert!(twiml.ends_with("<Hangup/></Response>"), "{twiml}");
    assert_eq!(
        call_of_sid(&stack, &admin, "CA-closed1").await["disposition"],
        "closed_hangup"
    );
    // AND with a handoff number THEN Say + Dial to it, recorded as a handoff
    stack
        .patch(&telephony, &admin, json!({ "handoff_e164": HANDOFF }))
        .await
        .expect(200);
    let twiml = incoming(&stack, "CA-closed2", other_caller, NUMBER).await;
    assert!(
        twiml.contains("<Say>Thank you for calling. We are closed right now, so we are connecting"),
        "{twiml}"
    );
    assert!(
        twiml.contains(&format!(
            "<Dial timeout=\"30\"><Number>{HANDOFF}</Number></Dial>"
        )),
        "{twiml}"
    );
    let call = call_of_sid(&stack, &admin, "CA-closed2").await;
    assert_eq!(call["status"], "handoff_initiated");
    assert_eq!(call["handoff"]["e164"], HANDOFF);
    assert_eq!(call["handoff"]["reason"], "outside_business_hours");

    // WHEN the establishment is open but has no runtime THEN Dial to the handoff number
    stack
        .patch(&telephony, &admin, json!({ "business_hours": [] }))
        .await
        .expect(200);
    let twiml = incoming(&stack, "CA-nort", other_caller, NUMBER).await;
    assert!(
        twiml.ends_with(&format!(
            "<Response><Dial timeout=\"30\"><Number>{HANDOFF}</Number></Dial></Response>"
        )),
        "{twiml}"
    );
    let call = call_of_sid(&stack, &admin, "CA-nort").await;
    assert_eq!(call["disposition"], "unavailable_handoff");
    assert!(
        call["handoff"]["reason"]
            .as_str()
            .unwrap()
            .contains("no runtime"),
        "{call}"
    );

    // WHEN the runtime exists but is not ready, or is draining THEN Dial as well
    let (port, _sim) = runtime_sim().await;
    let (runtime, token, _) = running_runtime(&stack, &admin, &est, port).await;
    let host = format!("{HOST}-{port}");
    health(&stack, &host, &token, &runtime, &est, false, false).await;
    let twiml = incoming(&stack, "CA-notready", other_caller, NUMBER).await;
    assert!(twiml.contains("<Dial"), "{twiml}");
    assert!(
        call_of_sid(&stack, &admin, "CA-notready").await["handoff"]["reason"]
            .as_str()
            .unwrap()
            .contains("llm: unreachable")
    );
    health(&stack, &host, &token, &runtime, &est, true, true).await;
    let twiml = incoming(&stack, "CA-draining", other_caller, NUMBER).await;
    assert!(twiml.contains("<Dial"), "{twiml}");
    assert!(
        call_of_sid(&stack, &admin, "CA-draining").await["handoff"]["reason"]
            .as_str()
            .unwrap()
            .contains("draining")
    );
    // AND without a handoff number THEN an apology and Hangup
    stack
        .patch(&telephony, &admin, json!({ "handoff_e164": null }))
        .await
        .expect(200);
    let twiml = incoming(&stack, "CA-sorry", other_caller, NUMBER).await;
    assert!(
        twiml.contains("<Say>We are sorry, we cannot take your call right now."),
        "{twiml}"
    );
    assert!(twiml.ends_with("<Hangup/></Response>"));
    assert_eq!(
        call_of_sid(&stack, &admin, "CA-sorry").await["disposition"],
        "unavailable_hangup"
    );

    // WHEN the runtime is ready again THEN the call streams to it
    health(&stack, &host, &token, &runtime, &est, true, false).await;
    let twiml = incoming(&stack, "CA-ok", other_caller, NUMBER).await;
    assert!(twiml.contains("<Connect><Stream"), "{twiml}");

    // WHEN an unknown number or a disabled number is called THEN Reject and no call record
    let twiml = incoming(&stack, "CA-unknown", other_caller, "+14155550100").await;
    assert!(twiml.contains("<Reject"), "{twiml}");
    let phones = stack
        .get(&format!("/establishments/{est}/phone-numbers"), &admin)
        .await;
    let phone = phones.expect(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stack
        .patch(
            &format!("/phone-numbers/{phone}"),
            &admin,
            json!({ "enabled": false }),
        )
        .await
        .expect(200);
    let twiml = incoming(&stack, "CA-disabled", other_caller, NUMBER).await;
    assert!(twiml.contains("<Reject"), "{twiml}");
    for sid in ["CA-unknown", "CA-disabled"] {
        assert!(
            stack
                .app
                .store
                .call_by_sid(NumberProvider::Twilio, sid)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_webhooks_are_403_and_change_nothing() {
    // GIVEN a routed number
    let stack = Stack::new().await;
    let (_, _, _) = routed(&stack, NUMBER).await;
    let params = [("CallSid", "CA-sig"), ("From", CALLER), ("To", NUMBER)];
    let path = "/webhooks/twilio/incoming-call";
    let other_url = callplane::telephony::twilio::signature::sign(
        callplane_tests::twilio::AUTH_TOKEN,
        "https://evil.example.com/webhooks/twilio/incoming-call",
        &params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    );
    let tampered = callplane::telephony::twilio::signature::sign(
        callplane_tests::twilio::AUTH_TOKEN,
        &format!("{}{path}", callplane_tests::PUBLIC_URL),
        &[
            ("CallSid".into(), "CA-sig".into()),
            ("From".into(), CALLER.into()),
            ("To".into(), OTHER_NUMBER.into()),
        ],
    );
    // WHEN the signature is missing, wrong, made for another URL, or for other parameters
    for signature in [
        "",
        "bm90IGEgc2lnbmF0dXJl",
        other_url.as_str(),
        tampered.as_str(),
    ] {
        let reply = stack.twilio_hook(path, &params, Some(signature)).await;
        // THEN each is 403 with the envelope
        reply.expect_error(403, "forbidden");
    }
    let status = stack
        .twilio_hook(
            "/webhooks/twilio/call-status",
            &[("CallSid", "CA-sig"), ("CallStatus", "completed")],
            Some("AAAA"),
        )
        .await;
    status.expect_error(403, "forbidden");
    // AND no call was recorded
    assert!(
        stack
            .app
            .store
            .call_by_sid(NumberProvider::Twilio, "CA-sig")
            .await
            .unwrap()
            .is_none()
    );
    // AND the correctly signed request goes through, also when signed with the :443 form
    let with_port = callplane::telephony::twilio::signature::sign(
        callplane_tests::twilio::AUTH_TOKEN,
        &format!("https://hooks.callplane.test:443{path}"),
        &params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    );
    stack
        .twilio_hook(path, &params, Some(&with_port))
        .await
        .expect(200);
    // AND a signed request missing a field Twilio always sends is 400 naming it
    let reply = stack
        .twilio_hook(path, &[("CallSid", "CA-nofield"), ("From", CALLER)], None)
        .await;
    assert!(
        reply
            .expect_error(400, "validation_failed")
            .starts_with("To:")
    );
    let reply = stack
        .twilio_hook(
            "/webhooks/twilio/call-status",
            &[("CallSid", "CA-sig"), ("CallStatus", "exploded")],
            None,
        )
        .await;
    assert!(
        reply
            .expect_error(400, "validation_failed")
            .contains("exploded")
    );
}

#[tokio::test]
async fn a_twilio_retry_of_the_same_call_sid_gets_the_same_answer_and_no_second_call() {
    // GIVEN a routed number with a ready runtime and a first delivery of a call
    let stack = Stack::new().await;
    let (admin, est, _) = routed(&stack, NUMBER).await;
    let (port, _sim) = runtime_sim().await;
    running_runtime(&stack, &admin, &est, port).await;
    let first = incoming(&stack, "CA-retry", CALLER, NUMBER).await;
    // WHEN Twilio retries it, sequentially and then 5 times at once
    let again = incoming(&stack, "CA-retry", CALLER, NUMBER).await;
    let concurrent =
        futures::future::join_all((0..5).map(|_| incoming(&stack, "CA-retry", CALLER, NUMBER)))
            .await;
    // THEN every answer is the first one, naming the same call
    assert_eq!(again, first);
    assert!(concurrent.iter().all(|t| *t == first));
    let call = call_of_sid(&stack, &admin, "CA-retry").await;
    assert_eq!(
        call["call_id"].as_str(),
        parameter(&first, "call_id").as_deref()
    );
    // AND the active-call index holds exactly one call for the establishment
    let active = stack
        .app
        .store
        .client()
        .query()
        .table_name(stack.app.store.table())
        .index_name("gsi2")
        .key_condition_expression("gsi2pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("EST#{est}#ACTIVE")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(active.count(), 1);
}

/// Places an outbound call as `token`; returns the reply.
async fn outbound(
    stack: &Stack,
    token: &str,
    key: Option<&str>,
    body: Value,
) -> (Reply, Option<String>) {
    let mut req = http::Request::builder()
        .method(Method::POST)
        .uri("/calls/outbound")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let reply = stack
        .send_raw(req.body(axum::body::Body::from(body.to_string())).unwrap())
        .await;
    let replayed = reply
        .headers
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (reply, replayed)
}

fn outbound_body(est: &str, agent: &str, to: &str) -> Value {
    json!({ "establishment_id": est, "agent_id": agent, "to_e164": to,
            "lead_id": "lead-7", "metadata": { "campaign": "spring" }, "answering_machine_detection": true })
}

#[tokio::test]
async fn an_outbound_call_is_placed_through_twilio_and_its_status_progresses_in_any_callback_order()
{
    // GIVEN an establishment with a number, a published agent and a ready runtime
    let stack = Stack::new().await;
    let (admin, est, agent) = routed(&stack, NUMBER).await;
    let (port, _sim) = runtime_sim().await;
    let (runtime, _, _) = running_runtime(&stack, &admin, &est, port).await;
    let operator = stack
        .member(&admin, &est, "op@example.com", "operator")
        .await;

    // WHEN an operator places a call
    let (reply, replayed) =
        outbound(&stack, &operator, None, outbound_body(&est, &agent, CALLER)).await;
    // THEN it is created queued with Twilio's CallSid
    let call = reply.expect(201).clone();
    assert_eq!(replayed, None);
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    assert_eq!(call["status"], "queued");
    assert_eq!(call["direction"], "outbound");
    assert_eq!(
        (call["from_e164"].as_str(), call["to_e164"].as_str()),
        (Some(NUMBER), Some(CALLER))
    );
    assert_eq!(call["runtime_id"], runtime.as_str());
    assert_eq!(call["metadata"], json!({ "campaign": "spring" }));
    let sid = call["provider_call_sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("CA"));
    // AND Twilio received what its API expects
    let sent = stack.twilio.sent();
    assert_eq!(sent.len(), 1);
    let create = &sent[0];
    assert_eq!(
        create.path,
        format!(
            "/2010-04-01/Accounts/{}/Calls.json",
            callplane_tests::twilio::ACCOUNT_SID
        )
    );
    assert_eq!(create.param("To"), Some(CALLER));
    assert_eq!(create.param("From"), Some(NUMBER));
    assert_eq!(create.param("TimeLimit"), Some("900"));
    assert_eq!(
        create.param("StatusCallback").unwrap(),
        format!(
            "{}/webhooks/twilio/call-status?call_id={call_id}",
            callplane_tests::PUBLIC_URL
        )
    );
    assert_eq!(
        create.all("StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(create.param("MachineDetection"), Some("Enable"));
    assert_eq!(create.param("AsyncAmd"), Some("true"));
    let twiml = create.param("Twiml").unwrap();
    assert!(
        twiml.contains(&format!(
            "<Stream url=\"wss://127.0.0.1:{port}/media-stream\">"
        )),
        "{twiml}"
    );
    assert_eq!(
        parameter(twiml, "call_id").as_deref(),
        Some(call_id.as_str())
    );

    // WHEN callbacks arrive: ringing, answered, then completed, a late ringing and duplicates
    let q = format!("?call_id={call_id}");
    let call_path = format!("/calls/{call_id}");
    let show = || stack.get(&call_path, &operator);
    status_callback(&stack, &q, &sid, "ringing", &[("SequenceNumber", "1")])
        .await
        .expect(204);
    assert_eq!(show().await.expect(200)["status"], "ringing");
    status_callback(&stack, &q, &sid, "in-progress", &[("SequenceNumber", "2")])
        .await
        .expect(204);
    let live = show().await;
    assert_eq!(live.expect(200)["status"], "in_progress");
    assert!(live.body["started_at"].is_string());
    stack
        .twilio_hook(
            &format!("/webhooks/twilio/amd-callback{q}"),
            &[
                ("CallSid", &sid),
                ("AnsweredBy", "human"),
                ("MachineDetectionDuration", "2100"),
            ],
            None,
        )
        .await
        .expect(204);
    status_callback(
        &stack,
        &q,
        &sid,
        "completed",
        &[("CallDuration", "65"), ("SequenceNumber", "3")],
    )
    .await
    .expect(204);
    status_callback(&stack, &q, &sid, "ringing", &[("SequenceNumber", "1")])
        .await
        .expect(204);
    status_callback(&stack, &q, &sid, "in-progress", &[("SequenceNumber", "2")])
        .await
        .expect(204);
    status_callback(&stack, &q, &sid, "busy", &[])
        .await
        .expect(204);
    // THEN the call is completed with its duration and AMD result, never moved back
    let done = show().await;
    let done = done.expect(200);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["duration_seconds"], 65);
    assert_eq!(done["answered_by"], "human");
    assert!(done["ended_at"].is_string());
    // AND a recording callback (by CallSid only, as Twilio sends it) stores the reference
    stack
        .twilio_hook(
            "/webhooks/twilio/recording-status",
            &[
                ("CallSid", &sid),
                ("RecordingSid", "RE123"),
                ("RecordingStatus", "completed"),
                (
                    "RecordingUrl",
                    "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE123",
                ),
                ("RecordingDuration", "64"),
                ("RecordingChannels", "2"),
            ],
            None,
        )
        .await
        .expect(204);
    let recorded = show().await;
    assert_eq!(
        recorded.expect(200)["recording"],
        json!({ "recording_sid": "RE123", "status": "completed", "duration_seconds": 64, "channels": 2 })
    );
}

#[tokio::test]
async fn outbound_calls_are_idempotent_per_key() {
    // GIVEN a ready establishment
    let stack = Stack::new().await;
    let (admin, est, agent) = routed(&stack, NUMBER).await;
    let (port, _sim) = runtime_sim().await;
    running_runtime(&stack, &admin, &est, port).await;
    let body = outbound_body(&est, &agent, CALLER);
    // WHEN the same request is sent three times with one key
    let (first, _) = outbound(&stack, &admin, Some("key-1"), body.clone()).await;
    let (second, replayed) = outbound(&stack, &admin, Some("key-1"), body.clone()).await;
    // THEN it is one call, placed once, and the replay says so
    assert_eq!(second.expect(201)["call_id"], first.expect(201)["call_id"]);
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(stack.twilio.sent().len(), 1);
    // WHEN the key is reused with another body THEN 422 and nothing is placed
    let mut other = body.clone();
    other["lead_id"] = json!("lead-8");
    let (reused, _) = outbound(&stack, &admin, Some("key-1"), other).await;
    reused.expect_error(422, "idempotency_key_reused");
    assert_eq!(stack.twilio.sent().len(), 1);
    // AND a bad key is 400
    let (bad, _) = outbound(&stack, &admin, Some("key with spaces"), body).await;
    assert!(
        bad.expect_error(400, "validation_failed")
            .contains("Idempotency-Key")
    );
}

#[tokio::test]
async fn twilio_errors_become_clear_envelopes() {
    // GIVEN a ready establishment
    let stack = Stack::new().await;
    let (admin, est, agent) = routed(&stack, NUMBER).await;
    let (port, _sim) = runtime_sim().await;
    running_runtime(&stack, &admin, &est, port).await;
    let body = outbound_body(&est, &agent, CALLER);

    // WHEN Twilio refuses the number (21211) THEN 422 invalid_number and the call failed
    stack.twilio.fail_next(&[Failure {
        status: 400,
        code: 21211,
    }]);
    let (reply, _) = outbound(&stack, &admin, Some("k-invalid"), body.clone()).await;
    assert!(reply.expect_error(422, "invalid_number").contains("21211"));
    // AND a replay answers the same without asking Twilio again
    let (replay, _) = outbound(&stack, &admin, Some("k-invalid"), body.clone()).await;
    replay.expect_error(422, "invalid_number");
    assert_eq!(stack.twilio.sent().len(), 1);

    // WHEN Twilio rate-limits every attempt THEN 503 after 3 attempts
    stack.twilio.fail_next(
        &[Failure {
            status: 429,
            code: 20429,
        }; 3],
    );
    let (reply, _) = outbound(&stack, &admin, Some("k-busy"), body.clone()).await;
    reply.expect_error(503, "unavailable");
    assert_eq!(stack.twilio.sent().len(), 4);
    // AND the key is released: the client's retry places the call
    let (retry, _) = outbound(&stack, &admin, Some("k-busy"), body.clone()).await;
    assert_eq!(retry.expect(201)["status"], "queued");
    assert_eq!(stack.twilio.sent().len(), 5);

    // WHEN one attempt is rate-limited THEN the backoff retry succeeds
    stack.twilio.fail_next(&[Failure {
        status: 429,
        code: 20429,
    }]);
    let (reply, _) = outbound(&stack, &admin, None, body.clone()).await;
    reply.expect(201);
    assert_eq!(stack.twilio.sent().len(), 7);

    // WHEN Twilio fails with a 5xx THEN 503, and the failed call says why
    stack.twilio.fail_next(&[Failure {
        status: 500,
        code: 20500,
    }]);
    let (reply, _) = outbound(&stack, &admin, None, body).await;
    reply.expect_error(503, "unavailable");
}

#[tokio::test]
async fn outbound_calls_respect_policy_roles_and_tenancy() {
    // GIVEN a ready establishment, a viewer, and another tenant
    let stack = Stack::new().await;
    let (admin, est, agent) = routed(&stack, NUMBER).await;
    let (port, _sim) = runtime_sim().await;
    let (runtime, token, _) = running_runtime(&stack, &admin, &est, port).await;
    let viewer = stack
        .member(&admin, &est, "viewer@example.com", "viewer")
        .await;
    let stranger = stack
        .member(
            &admin,
            &stack.establishment(&admin, "Else").await,
            "x@example.com",
            "admin",
        )
        .await;
    let body = outbound_body(&est, &agent, CALLER);

    // THEN a viewer is 403 and a stranger 404, and nothing reaches Twilio
    outbound(&stack, &viewer, None, body.clone())
        .await
        .0
        .expect_error(403, "forbidden");
    outbound(&stack, &stranger, None, body.clone())
        .await
        .0
        .expect_error(404, "not_found");
    // AND a callee on the do-not-call list or the blacklist is 422
    stack
        .post(
            &format!("/establishments/{est}/do-not-call"),
            &admin,
            json!({ "e164": CALLER }),
        )
        .await
        .expect(201);
    outbound(&stack, &admin, None, body.clone())
        .await
        .0
        .expect_error(422, "do_not_call");
    stack
        .patch(
            &format!("/establishments/{est}/telephony"),
            &admin,
            json!({ "blacklist_e164": [OTHER_NUMBER] }),
        )
        .await
        .expect(200);
    outbound(
        &stack,
        &admin,
        None,
        outbound_body(&est, &agent, OTHER_NUMBER),
    )
    .await
    .0
    .expect_error(422, "blacklisted");
    // AND a caller id that is not the establishment's is 422
    let mut foreign_from = outbound_body(&est, &agent, HANDOFF);
    foreign_from["from_e164"] = json!("+14155550123");
    outbound(&stack, &admin, None, foreign_from)
        .await
        .0
        .expect_error(422, "invalid_caller_id");
    // AND an unknown agent is 404, bad input 400
    outbound(
        &stack,
        &admin,
        None,
        outbound_body(&est, "agt_01ARZ3NDEKTSV4RRFFQ69G5FAV", HANDOFF),
    )
    .await
    .0
    .expect_error(404, "not_found");
    let mut bad = outbound_body(&est, &agent, "0800");
    outbound(&stack, &admin, None, bad.clone())
        .await
        .0
        .expect_error(400, "validation_failed");
    bad["to_e164"] = json!(HANDOFF);
    bad["metadata"] = json!("not an object");
    outbound(&stack, &admin, None, bad)
        .await
        .0
        .expect_error(400, "validation_failed");
    // AND a runtime that is not ready is 409
    health(
        &stack,
        &format!("{HOST}-{port}"),
        &token,
        &runtime,
        &est,
        false,
        false,
    )
    .await;
    outbound(&stack, &admin, None, outbound_body(&est, &agent, HANDOFF))
        .await
        .0
        .expect_error(409, "conflict");
    assert!(stack.twilio.sent().is_empty());
}

#[tokio::test]
async fn handoff_transfers_a_call_in_progress_to_the_handoff_number() {
    // GIVEN an inbound call streaming to a ready runtime, and an operator
    let stack = Stack::new().await;
    let (admin, est, _) = routed(&stack, NUMBER).await;
    let (port, _sim) = runtime_sim().await;
    running_runtime(&stack, &admin, &est, port).await;
    let operator = stack
        .member(&admin, &est, "op@example.com", "operator")
        .await;
    let viewer = stack
        .member(&admin, &est, "viewer@example.com", "viewer")
        .await;
    let twiml = incoming(&stack, "CA-hand", CALLER, NUMBER).await;
    let call_id = parameter(&twiml, "call_id").unwrap();
    let path = format!("/calls/{call_id}/handoff");
    let reason = json!({ "reason": "customer_requested_human" });

    // WHEN there is no handoff number THEN 422
    stack
        .post(&path, &operator, reason.clone())
        .await
        .expect_error(422, "no_handoff_number");
    stack
        .patch(
            &format!("/establishments/{est}/telephony"),
            &admin,
            json!({ "handoff_e164": HANDOFF }),
        )
        .await
        .expect(200);
    // AND a viewer is 403, a bad body 400
    stack
        .post(&path, &viewer, reason.clone())
        .await
        .expect_error(403, "forbidden");
    stack
        .post(&path, &operator, json!({ "reason": "" }))
        .await
        .expect_error(400, "validation_failed");

    // WHEN Twilio says the call is over (21220) THEN 409 and the call stays in progress
    stack.twilio.fail_next(&[Failure {
        status: 400,
        code: 21220,
    }]);
    stack
        .post(&path, &operator, reason.clone())
        .await
        .expect_error(409, "conflict");
    assert_eq!(
        stack
            .get(&format!("/calls/{call_id}"), &operator)
            .await
            .expect(200)["status"],
        "in_progress"
    );

    // WHEN the operator hands off THEN the answer is A.5's and Twilio got a Dial
    let reply = stack.post(&path, &operator, reason.clone()).await;
    assert_eq!(
        reply.expect(200),
        &json!({ "call_id": call_id, "status": "handoff_initiated", "handoff_e164": HANDOFF })
    );
    let update = stack.twilio.sent().pop().unwrap();
    assert!(
        update.path.ends_with("/Calls/CA-hand.json"),
        "{}",
        update.path
    );
    assert_eq!(
        update.param("Twiml"),
        Some(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial timeout=\"30\"><Number>{HANDOFF}</Number></Dial></Response>").as_str())
    );
    let call = stack.get(&format!("/calls/{call_id}"), &operator).await;
    assert_eq!(
        call.expect(200)["handoff"]["reason"],
        "customer_requested_human"
    );
    assert!(
        stack
            .audit_actions(&admin, &est)
            .await
            .contains(&"call.handoff".to_owned())
    );
    // AND a second handoff is 409, and a late in-progress callback does not undo it
    stack
        .post(&path, &operator, reason.clone())
        .await
        .expect_error(409, "conflict");
    status_callback(&stack, "", "CA-hand", "in-progress", &[])
        .await
        .expect(204);
    assert_eq!(
        stack
            .get(&format!("/calls/{call_id}"), &operator)
            .await
            .expect(200)["status"],
        "handoff_initiated"
    );
    // AND another tenant's admin gets 404 for the call
    let stranger = stack
        .member(
            &admin,
            &stack.establishment(&admin, "Else").await,
            "x@example.com",
            "admin",
        )
        .await;
    stack
        .post(&path, &stranger, reason)
        .await
        .expect_error(404, "not_found");
    stack
        .get(&format!("/calls/{call_id}"), &stranger)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn the_do_not_call_list_is_managed_by_role_and_audited() {
    // GIVEN an establishment with an operator and a viewer
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let operator = stack
        .member(&admin, &est, "op@example.com", "operator")
        .await;
    let viewer = stack
        .member(&admin, &est, "viewer@example.com", "viewer")
        .await;
    let list = format!("/establishments/{est}/do-not-call");
    // WHEN an operator adds a number twice THEN 201 then 200, one entry
    stack
        .post(
            &list,
            &operator,
            json!({ "e164": CALLER, "reason": "opted out on a call" }),
        )
        .await
        .expect(201);
    stack
        .post(&list, &operator, json!({ "e164": CALLER }))
        .await
        .expect(200);
    let page = stack.get(&list, &viewer).await;
    let items = page.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["e164"], CALLER);
    assert_eq!(items[0]["reason"], "opted out on a call");
    // AND a viewer cannot add, an operator cannot remove, bad numbers are 400
    stack
        .post(&list, &viewer, json!({ "e164": HANDOFF }))
        .await
        .expect_error(403, "forbidden");
    let entry = format!("{list}/{}", CALLER.replace('+', "%2B"));
    stack
        .send(Method::DELETE, &entry, Some(&operator), None)
        .await
        .expect_error(403, "forbidden");
    stack
        .post(&list, &operator, json!({ "e164": "12345" }))
        .await
        .expect_error(400, "validation_failed");
    // WHEN an admin removes it THEN 204, then 404
    stack
        .send(Method::DELETE, &entry, Some(&admin), None)
        .await
        .expect(204);
    stack
        .send(Method::DELETE, &entry, Some(&admin), None)
        .await
        .expect_error(404, "not_found");
    assert!(
        stack.get(&list, &viewer).await.expect(200)["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let actions = stack.audit_actions(&admin, &est).await;
    assert!(
        actions.starts_with(&[
            "do_not_call.removed".to_owned(),
            "do_not_call.added".to_owned()
        ]),
        "{actions:?}"
    );
}

#[tokio::test]
async fn whatsapp_webhooks_verify_the_subscription_and_the_body_signature() {
    // GIVEN the stack's WhatsApp verify token and app secret
    let stack = Stack::new().await;
    let stack = &stack;
    let verify = |token: &str| {
        let path = format!(
            "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        );
        async move { stack.send(Method::GET, &path, None, None).await }
    };
    // THEN the challenge is echoed for our token only
    assert_eq!(
        verify("wa-verify-token").await.expect(200),
        &json!(1158201444)
    );
    verify("wrong").await.expect_error(403, "forbidden");
    // AND an event is accepted only with the body's signature
    let post = |signature: &'static str| async move {
        let req = http::Request::builder()
            .method(Method::POST)
            .uri("/webhooks/whatsapp")
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(axum::body::Body::from("test"))
            .unwrap();
        stack.send_raw(req).await
    };
    // (`test` is not JSON: a valid signature on it gets past the check and fails parsing)
    post("sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221")
        .await
        .expect_error(400, "validation_failed");
    post("sha256=0000").await.expect_error(403, "forbidden");
}

#[tokio::test]
async fn an_outbound_call_whose_answer_twilio_lost_is_placed_once_however_often_it_is_retried() {
    // GIVEN a ready establishment
    let stack = Stack::new().await;
    let (admin, est, agent) = routed(&stack, NUMBER).await;
    let (port, _sim) = runtime_sim().await;
    running_runtime(&stack, &admin, &est, port).await;
    let body = outbound_body(&est, &agent, CALLER);

    // WHEN Twilio creates the call but answers 500, then the client retries with the key
    stack.twilio.lose_next_answers(&[LostAnswer::ServerError]);
    let (first, _) = outbound(&stack, &admin, Some("k-500"), body.clone()).await;
    let (retry, replayed) = outbound(&stack, &admin, Some("k-500"), body.clone()).await;
    // THEN the call was found in Twilio's call list: one call, with Twilio's CallSid
    let placed = first.expect(201).clone();
    assert_eq!(stack.twilio.calls_created(), 1);
    assert!(
        placed["provider_call_sid"]
            .as_str()
            .unwrap()
            .starts_with("CA"),
        "{placed}"
    );
    assert_eq!(retry.expect(201)["call_id"], placed["call_id"]);
    assert_eq!(replayed.as_deref(), Some("true"));

    // WHEN Twilio creates the call but its answer never comes (the client times out)
    stack
        .twilio
        .lose_next_answers(&[LostAnswer::Stall(std::time::Duration::from_secs(3))]);
    let (first, _) = outbound(&stack, &admin, Some("k-timeout"), body.clone()).await;
    let (retry, _) = outbound(&stack, &admin, Some("k-timeout"), body.clone()).await;
    // THEN again one call at Twilio, answered to both
    let placed = first.expect(201).clone();
    assert_eq!(stack.twilio.calls_created(), 2);
    assert_eq!(retry.expect(201)["call_id"], placed["call_id"]);

    // WHEN the answer is lost and Twilio's call list lags behind
    stack.twilio.lag_call_list(true);
    stack.twilio.lose_next_answers(&[LostAnswer::ServerError]);
    let (first, _) = outbound(&stack, &admin, Some("k-lag"), body.clone()).await;
    // THEN the client is told to retry with the key, and the call shows as unconfirmed
    assert!(
        first
            .expect_error(503, "unavailable")
            .contains("same Idempotency-Key"),
        "{}",
        first.body
    );
    let listed = stack
        .get(
            &format!("/calls?establishment_id={est}&direction=outbound"),
            &admin,
        )
        .await;
    let unconfirmed = listed.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["unconfirmed_since"].is_string())
        .cloned()
        .expect("an unconfirmed call");
    let call_id = unconfirmed["call_id"].as_str().unwrap().to_owned();
    // AND a retry inside the grace period is a 409 that places nothing
    let (early, _) = outbound(&stack, &admin, Some("k-lag"), body.clone()).await;
    early.expect_error(409, "conflict");
    assert_eq!(stack.twilio.calls_created(), 3);
    // WHEN Twilio's status callback arrives (its URL carries our call id)
    let created_sid = format!("CA{:032x}", 3);
    status_callback(
        &stack,
        &format!("?call_id={call_id}"),
        &created_sid,
        "initiated",
        &[],
    )
    .await
    .expect(204);
    // THEN the retry answers that call, confirmed, and Twilio still has three calls
    let (settled, _) = outbound(&stack, &admin, Some("k-lag"), body.clone()).await;
    let settled = settled.expect(201).clone();
    assert_eq!(settled["call_id"], call_id.as_str());
    assert_eq!(settled["provider_call_sid"], created_sid.as_str());
    assert!(settled.get("unconfirmed_since").is_none(), "{settled}");
    assert_eq!(stack.twilio.calls_created(), 3);

    // WHEN Twilio answers 500 *without* creating the call, and its list shows nothing
    stack.twilio.fail_next(&[Failure {
        status: 500,
        code: 20500,
    }]);
    let (first, _) = outbound(&stack, &admin, Some("k-never"), body.clone()).await;
    first.expect_error(503, "unavailable");
    // AND the grace period has passed (the call's unconfirmed stamp is moved back)
    let never = stack
        .get(
            &format!("/calls?establishment_id={est}&direction=outbound"),
            &admin,
        )
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["unconfirmed_since"].is_string())
        .cloned()
        .expect("an unconfirmed call");
    let stale = chrono::Utc::now() - chrono::Duration::seconds(120);
    let id = callplane::ids::CallId::parse(never["call_id"].as_str().unwrap()).unwrap();
    stack
        .tamper(
            &callplane::store::keys::call(&id),
            &[(
                "unconfirmed_since",
                aws_sdk_dynamodb::types::AttributeValue::S(
                    stale.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
            )],
        )
        .await;
    // THEN a retry learns the call was never created and releases the key; the next places it
    let (released, _) = outbound(&stack, &admin, Some("k-never"), body.clone()).await;
    assert!(
        released
            .expect_error(503, "unavailable")
            .contains("never created")
    );
    let (placed, replayed) = outbound(&stack, &admin, Some("k-never"), body.clone()).await;
    assert_eq!(placed.expect(201)["status"], "queued");
    assert_eq!(replayed, None);
    assert_eq!(stack.twilio.calls_created(), 4);
    let old = stack
        .get(
            &format!("/calls/{}", never["call_id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_eq!(old.expect(200)["status"], "failed");
}

#[tokio::test]
async fn only_numbers_of_the_twilio_account_register_and_registering_points_them_at_us() {
    // GIVEN an establishment with a published agent
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Nova").await;
    stack.published(&admin, &agent, "v1").await;
    let numbers = format!("/establishments/{est}/phone-numbers");
    let register = |e164: &str| {
        stack.post(
            &numbers,
            &admin,
            json!({ "provider": "twilio", "e164": e164, "routing_agent_id": agent }),
        )
    };

    // WHEN a number that is not the account's is registered
    let foreign = register(OTHER_NUMBER).await;
    // THEN 422 number_not_in_account, and nothing is stored
    foreign.expect_error(422, "number_not_in_account");
    let listed = stack
        .get(&format!("/establishments/{est}/phone-numbers"), &admin)
        .await;
    assert_eq!(listed.expect(200)["items"].as_array().unwrap().len(), 0);

    // WHEN one of the account's numbers is registered
    stack.twilio.own_number(NUMBER);
    let created = register(NUMBER).await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();
    // THEN Twilio sends its calls and their status callbacks to our webhooks
    let at_twilio = stack.twilio.number(NUMBER).unwrap();
    assert_eq!(
        at_twilio.voice_url,
        format!(
            "{}/webhooks/twilio/incoming-call",
            callplane_tests::PUBLIC_URL
        )
    );
    assert_eq!(
        at_twilio.status_callback,
        format!(
            "{}/webhooks/twilio/call-status",
            callplane_tests::PUBLIC_URL
        )
    );

    // WHEN it is deleted THEN Twilio no longer calls us for it
    stack
        .send(
            Method::DELETE,
            &format!("/phone-numbers/{id}"),
            Some(&admin),
            None,
        )
        .await
        .expect(204);
    let at_twilio = stack.twilio.number(NUMBER).unwrap();
    assert_eq!(at_twilio.voice_url, "");
    assert_eq!(at_twilio.status_callback, "");
}

#[tokio::test]
async fn without_an_establishment_the_call_lists_cover_every_establishment_of_the_caller() {
    // GIVEN an admin of two establishments, each with a live call, and a viewer of only one
    let stack = Stack::new().await;
    let (admin, est_a, _) = routed(&stack, NUMBER).await;
    let (port_a, _sim_a) = runtime_sim().await;
    running_runtime(&stack, &admin, &est_a, port_a).await;
    let est_b = stack.establishment(&admin, "Borealis").await;
    let agent_b = stack.agent(&admin, &est_b, "Nova").await;
    stack.published(&admin, &agent_b, "v1").await;
    stack
        .number(&admin, &est_b, OTHER_NUMBER, &agent_b)
        .await
        .expect(201);
    let (port_b, _sim_b) = runtime_sim().await;
    running_runtime(&stack, &admin, &est_b, port_b).await;
    incoming(&stack, "CA_list_a1", CALLER, NUMBER).await;
    incoming(&stack, "CA_list_b1", CALLER, OTHER_NUMBER).await;
    incoming(&stack, "CA_list_a2", CALLER, NUMBER).await;
    let viewer = stack
        .member(&admin, &est_b, "viewer-b@example.com", "viewer")
        .await;

    // WHEN the admin lists live calls without establishment_id, one per page
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/calls/active?limit=1&cursor={c}"),
            None => "/calls/active?limit=1".to_owned(),
        };
        let page = stack.get(&path, &admin).await.expect(200).clone();
        for call in page["items"].as_array().unwrap() {
            seen.push((
                call["establishment_id"].as_str().unwrap().to_owned(),
                call["created_at"].as_str().unwrap().to_owned(),
            ));
        }
        cursor = page["cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    // THEN every live call of both establishments comes once, newest first
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen.iter().filter(|(e, _)| *e == est_a).count(), 2);
    assert_eq!(seen.iter().filter(|(e, _)| *e == est_b).count(), 1);
    assert!(seen.windows(2).all(|w| w[0].1 >= w[1].1), "{seen:?}");
    // AND the history without establishment_id has them all too
    let history = stack.get("/calls?direction=inbound", &admin).await;
    assert_eq!(history.expect(200)["items"].as_array().unwrap().len(), 3);
    // AND the viewer of one establishment sees only its call
    let theirs = stack.get("/calls/active", &viewer).await;
    let items = theirs.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["establishment_id"], est_b.as_str());
    // AND a cursor of another query is refused
    let foreign = stack
        .get(&format!("/calls/active?cursor={}", "x".repeat(20)), &admin)
        .await;
    foreign.expect_error(400, "validation_failed");
}
