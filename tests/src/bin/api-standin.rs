//! `make fuzz`'s API: a fresh test stack (resources in the emulator at `AWS_ENDPOINT_URL`,
//! the Twilio stand-in, a bootstrapped admin) holding one establishment whose number routes
//! to a published agent (plus a draft), a runtime started on an in-process runtime-sim and
//! reported ready, a call in progress with a transcript and a tool call, and a lead imported by
//! a completed import job (with one rejected row); every function
//! served on one port as the router table maps paths. Prints one JSON line (`url`, the
//! admin's `token` and those ids), then serves until killed.

use callplane::time::Timestamp;
use callplane_tests::world::{incoming, parameter, routed, running_runtime, runtime_sim};
use serde_json::json;

const NUMBER: &str = "+14155550199";
const CALLER: &str = "+14155550198";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = callplane_tests::Stack::new().await;
    let (token, establishment_id, agent_id) = routed(&stack, NUMBER).await;
    let version_id = stack.draft(&token, &agent_id, "Draft prompt").await;
    let (port, _sim) = runtime_sim().await;
    let (runtime_id, _, ingest_token) =
        running_runtime(&stack, &token, &establishment_id, port).await;
    let twiml = incoming(&stack, "CAfuzz00000000000000000000000001", CALLER, NUMBER).await;
    let call_id = parameter(&twiml, "call_id").ok_or_else(|| anyhow::anyhow!("no call_id"))?;
    let published = parameter(&twiml, "agent_version_id").unwrap_or_default();
    let at = |secs: i64| Timestamp::now().plus_secs(secs - 60).to_string();
    let events = [
        ("call_started", json!({ "started_at": at(0) })),
        (
            "transcript_segment",
            json!({ "segment_id": "seg_00001", "speaker": "customer", "text": "I need an appointment.",
                    "started_at": at(1), "ended_at": at(3), "confidence": 0.93 }),
        ),
        (
            "tool_called",
            json!({ "tool_name": "book_slot", "tool_call_id": "tc-1", "arguments": { "day": "monday" } }),
        ),
        (
            "tool_result",
            json!({ "tool_name": "book_slot", "tool_call_id": "tc-1", "result": { "ok": true }, "error": null }),
        ),
    ];
    for (i, (kind, payload)) in events.into_iter().enumerate() {
        let envelope = json!({
            "runtime_id": runtime_id, "establishment_id": establishment_id,
            "agent_id": agent_id, "agent_version_id": published,
            "call": { "provider": "twilio", "provider_call_sid": "CAfuzz00000000000000000000000001",
                      "direction": "inbound", "from_e164": CALLER, "to_e164": NUMBER },
            "event": { "id": format!("evt_{i}"), "type": kind, "occurred_at": at(i as i64),
                       "idempotency_key": format!("fuzz-{i}"), "payload": payload }
        });
        stack
            .send(
                http::Method::POST,
                "/ingest/call-events",
                Some(&ingest_token),
                Some(envelope),
            )
            .await
            .expect(202);
    }
    let phone_number_id = stack
        .get(
            &format!("/establishments/{establishment_id}/phone-numbers"),
            &token,
        )
        .await
        .expect(200)["items"][0]["id"]
        .clone();
    // A lead, imported through the import job, and the job with a rejected row.
    let upload = format!("uploads/{establishment_id}/leads/fuzz/leads.csv");
    stack
        .app
        .blobs
        .put(
            &upload,
            b"phone,name,plan\n+14155550142,Ada Lovelace,gold\nnot-a-number,Bad Row,\n".to_vec(),
            "text/csv",
        )
        .await?;
    let job_id = stack
        .post(
            "/leads/import",
            &token,
            json!({ "establishment_id": establishment_id, "s3_key": upload }),
        )
        .await
        .expect(202)["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    callplane::service::lead_import::run(&stack.app, &callplane::ids::ImportJobId::parse(&job_id)?)
        .await?;
    let lead_id = stack
        .get(
            &format!("/leads?establishment_id={establishment_id}"),
            &token,
        )
        .await
        .expect(200)["items"][0]["id"]
        .clone();
    // A campaign of the agent's published version.
    let published = stack
        .get(&format!("/agents/{agent_id}"), &token)
        .await
        .expect(200)["active_version_id"]
        .clone();
    let campaign_id = stack
        .post(
            "/campaigns",
            &token,
            json!({
                "establishment_id": establishment_id, "name": "Fuzz campaign", "agent_id": agent_id,
                "agent_version_id": published, "lead_filter": {}, "pace": { "calls_per_minute": 6 },
                "schedule": { "timezone": "America/New_York", "days": ["mon","tue","wed","thu","fri"],
                              "start": "09:00", "end": "17:00" }
            }),
        )
        .await
        .expect(201)["id"]
        .clone();
    // An integration (the platform's SES sender: no provider to reach).
    let integration_id = stack
        .post(
            &format!("/establishments/{establishment_id}/integrations"),
            &token,
            json!({ "type": "email", "display_name": "Fuzz mail", "auth": { "mode": "ses" } }),
        )
        .await
        .expect(201)["integration_id"]
        .clone();
    let url = stack.serve_api().await;
    println!(
        "{}",
        json!({
            "url": url,
            "token": token,
            "establishment_id": establishment_id,
            "agent_id": agent_id,
            "version_id": version_id,
            "phone_number_id": phone_number_id,
            "runtime_id": runtime_id,
            "call_id": call_id,
            "job_id": job_id,
            "lead_id": lead_id,
            "campaign_id": campaign_id,
            "integration_id": integration_id,
        })
    );
    std::future::pending::<()>().await;
    Ok(())
}
