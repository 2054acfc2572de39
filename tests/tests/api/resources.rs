//! The map stays true: the router table (`Cargo.toml`), the SAM template and the functions'
//! routers agree on every route; the resource definition the tests and `make dev` use agrees
//! with the template; queues have working dead-letter redrive.

use callplane::resources::{GSIS, KEYS_ONLY_GSIS, LSIS, QUEUES};
use callplane_tests::{Stack, router_table};
use http::Method;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_routed_path_is_in_the_sam_template_and_every_template_path_is_routed() {
    // GIVEN the router table and the template
    let table = router_table();
    let template = read("infra/template.yaml");
    let template_paths: std::collections::BTreeSet<String> = template
        .split("Path: ")
        .skip(1)
        .map(|rest| {
            rest.split([',', '\n'])
                .next()
                .unwrap()
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .collect();
    let table_paths: std::collections::BTreeSet<String> =
        table.iter().map(|(p, _)| p.clone()).collect();
    // THEN they list the same paths
    assert_eq!(table_paths, template_paths);
    // AND each function named in the table is a function in the template
    for (_, function) in &table {
        assert!(
            template.contains(&format!("Binary: {function}")),
            "{function} missing from the template"
        );
    }
}

#[test]
fn the_template_declares_the_table_and_queues_the_code_creates() {
    let template = read("infra/template.yaml");
    for (index, pk, sk) in GSIS {
        assert!(template.contains(&format!("IndexName: {index}")), "{index}");
        let declared = template
            .split(&format!("IndexName: {index}\n"))
            .nth(1)
            .and_then(|rest| rest.split("IndexName:").next())
            .unwrap_or_default();
        let projection = if KEYS_ONLY_GSIS.contains(index) {
            "ProjectionType: KEYS_ONLY"
        } else {
            "ProjectionType: ALL"
        };
        assert!(declared.contains(projection), "{index}: {projection}");
        assert!(
            template.contains(&format!("AttributeName: {pk}, KeyType: HASH")),
            "{pk}"
        );
        assert!(
            template.contains(&format!("AttributeName: {sk}, KeyType: RANGE")),
            "{sk}"
        );
    }
    for (index, sk) in LSIS {
        assert!(template.contains(&format!("IndexName: {index}")), "{index}");
        assert!(
            template.contains(&format!(
                "- {{ AttributeName: pk, KeyType: HASH }}\n            - {{ AttributeName: {sk}, KeyType: RANGE }}"
            )),
            "{sk}"
        );
        assert!(
            template.contains(&format!("AttributeName: {sk}, AttributeType: S")),
            "{sk}"
        );
    }
    assert!(template.contains(&format!(
        "AttributeName: {}\n        Enabled: true",
        callplane::store::keys::TTL
    )));
    for (queue, max_receives) in QUEUES {
        let logical: String = queue
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        assert!(
            template.contains(&format!("  {logical}Queue:")),
            "{logical}Queue"
        );
        assert!(template.contains(&format!("deadLetterTargetArn: !GetAtt {logical}Dlq.Arn\n        maxReceiveCount: {max_receives}")), "{logical}Dlq");
    }
}

#[tokio::test]
async fn every_routed_path_reaches_a_handler_of_its_function() {
    // GIVEN a stack
    let stack = Stack::new().await;
    let token = stack.admin().await;
    for (path, function) in router_table() {
        let concrete = path
            .replace("{id}", &callplane::ids::EstablishmentId::new().to_string())
            .replace("{user_id}", &callplane::ids::UserId::new().to_string())
            .replace("{agent_id}", &callplane::ids::AgentId::new().to_string())
            .replace(
                "{version_id}",
                &callplane::ids::AgentVersionId::new().to_string(),
            )
            .replace(
                "{phone_number_id}",
                &callplane::ids::PhoneNumberId::new().to_string(),
            )
            .replace(
                "{runtime_id}",
                &callplane::ids::RuntimeId::new().to_string(),
            )
            .replace(
                "{command_id}",
                &callplane::ids::CommandId::new().to_string(),
            )
            .replace("{call_id}", &callplane::ids::CallId::new().to_string())
            .replace("{job_id}", &callplane::ids::ImportJobId::new().to_string())
            .replace("{lead_id}", &callplane::ids::LeadId::new().to_string())
            .replace(
                "{campaign_id}",
                &callplane::ids::CampaignId::new().to_string(),
            )
            .replace(
                "{integration_id}",
                &callplane::ids::IntegrationId::new().to_string(),
            )
            .replace("{e164}", "%2B14155552671")
            .replace("{host_id}", "host-x");
        assert!(!concrete.contains('{'), "no sample id for {path}");
        // WHEN the path is requested (with a method it may not serve)
        let reply = stack.send(Method::GET, &concrete, Some(&token), None).await;
        // THEN the function knows the route: never the "route not found" fallback
        let unknown_route =
            reply.status == 404 && reply.body["error"]["message"] == "route not found";
        assert!(
            !unknown_route,
            "{path} is not served by {function}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn queues_deliver_and_have_dead_letter_queues() {
    // GIVEN the summary queue of a fresh stack
    let stack = Stack::new().await;
    let url = stack.provisioned.queue_urls["summary-jobs"].clone();
    let sqs = aws_sdk_sqs_client(&stack).await;
    let queue = callplane::queues::Queue::new(sqs.clone(), &url);
    // WHEN a job is sent
    let id = queue
        .send(&serde_json::json!({ "call_id": "call_x" }))
        .await
        .unwrap();
    // THEN it is received intact and can be deleted
    let received = queue.receive(10, 1).await.unwrap();
    assert_eq!(received.len(), 1, "{id}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&received[0].1).unwrap()["call_id"],
        "call_x"
    );
    queue.delete(&received[0].0).await.unwrap();
    // AND the queue redrives to its dead-letter queue
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy =
        attrs.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy].clone();
    assert!(policy.contains("summary-jobs-dlq"), "{policy}");
    // AND its maxReceiveCount is read from the policy as the host agent reads it, for every
    // queue as the resources define it
    for (name, max_receives) in QUEUES {
        let queue =
            callplane::queues::Queue::new(sqs.clone(), &stack.provisioned.queue_urls[*name]);
        assert_eq!(
            queue.max_receive_count().await.unwrap(),
            Some(u32::try_from(*max_receives).unwrap()),
            "{name}"
        );
    }
}

async fn aws_sdk_sqs_client(stack: &Stack) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&stack.sdk)
}
