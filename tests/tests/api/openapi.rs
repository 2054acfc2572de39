//! The API description cannot drift: docs/openapi.json is what the code declares, it lists
//! every route of the router table and of the SAM template with the methods the template
//! routes, each function's part holds only its own routes, and the document is served.

use callplane_tests::{Stack, described, openapi_document, openapi_path, router_table};
use http::Method;
use serde_json::Value;
use std::collections::BTreeSet;

const HEALTH: [&str; 5] = ["/healthz", "/health", "/readyz", "/info", "/openapi.json"];

fn committed() -> String {
    std::fs::read_to_string(openapi_path()).unwrap()
}

/// `(path, METHOD)` of every operation in a document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(|method| (path.clone(), method.to_uppercase()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn paths(doc: &Value) -> BTreeSet<String> {
    operations(doc).into_iter().map(|(path, _)| path).collect()
}

#[test]
fn the_committed_description_is_what_the_code_declares() {
    // GIVEN the description the code declares
    let generated = openapi_document();
    // THEN docs/openapi.json is byte for byte that document
    assert!(
        committed() == generated,
        "docs/openapi.json is stale: run `make openapi` and commit it"
    );
}

#[test]
fn every_route_of_the_router_table_and_the_template_is_described_with_its_methods() {
    // GIVEN the committed description, the router table and the SAM template
    let doc: Value = serde_json::from_str(&committed()).unwrap();
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .unwrap();
    // THEN the described paths are exactly the router table's
    let table: BTreeSet<String> = router_table().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths(&doc), table);
    // AND every API Gateway route of the template is an operation, and every operation not
    // served through a function URL is routed by API Gateway with its method
    let api_gateway: BTreeSet<(String, String)> = template
        .lines()
        .filter(|l| l.contains("Type: HttpApi"))
        .map(|l| {
            let path = l.split("Path: ").nth(1).unwrap().split(',').next().unwrap();
            let method = l
                .split("Method: ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            (path.trim_matches('"').to_owned(), method.to_owned())
        })
        .collect();
    let url_routes: BTreeSet<String> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- Path: "))
        .map(str::to_owned)
        .collect();
    let through_api_gateway: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .filter(|(path, _)| !url_routes.contains(path))
        .collect();
    assert_eq!(through_api_gateway, api_gateway);
    // AND every reference resolves
    let text = committed();
    for reference in text.split("\"$ref\": \"#/").skip(1) {
        let pointer = reference.split('"').next().unwrap();
        assert!(
            doc.pointer(&format!("/{pointer}")).is_some(),
            "#/{pointer} is referred to but not defined"
        );
    }
    // AND every operation names its error answers and a summary
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            if !HEALTH.contains(&path.as_str()) {
                assert!(
                    statuses.iter().any(|s| s.starts_with('4')),
                    "{method} {path} describes no error answer"
                );
            }
        }
    }
}

#[test]
fn each_functions_part_holds_exactly_the_routes_the_table_gives_it() {
    for (function, api) in described() {
        // GIVEN a function's described routes
        let part = serde_json::to_value(callplane::http::describe(function, api)).unwrap();
        // THEN they are the table's routes of that function, plus the health endpoints
        let mut expected: BTreeSet<String> = router_table()
            .into_iter()
            .filter(|(_, f)| f == function)
            .map(|(p, _)| p)
            .collect();
        expected.extend(HEALTH.map(str::to_owned));
        assert_eq!(paths(&part), expected, "{function}");
        // AND every operation of it is tagged with the function (health with `health`)
        for (path, item) in part["paths"].as_object().unwrap() {
            for op in item.as_object().unwrap().values() {
                let tag = if HEALTH.contains(&path.as_str()) {
                    "health"
                } else {
                    function
                };
                assert_eq!(op["tags"], serde_json::json!([tag]), "{path}");
            }
        }
    }
}

#[tokio::test]
async fn the_api_serves_the_whole_description_and_function_urls_their_own_part() {
    // GIVEN a stack
    let stack = Stack::new().await;
    // WHEN /openapi.json is asked of the API, with no token
    let whole = stack.send(Method::GET, "/openapi.json", None, None).await;
    // THEN it is the committed document, as JSON
    whole.expect(200);
    assert_eq!(
        whole.headers["content-type"], "application/json",
        "content type"
    );
    let committed: Value = serde_json::from_str(&committed()).unwrap();
    assert_eq!(whole.body, committed);
    assert_eq!(whole.body["openapi"], "3.1.0");
    for (function, router) in stack.functions() {
        if !matches!(function, "ingest" | "twilio-webhooks") {
            continue;
        }
        // WHEN a function URL is asked for it
        let req = http::Request::get("/openapi.json")
            .body(axum::body::Body::empty())
            .unwrap();
        let part = callplane_tests::call(router, req).await;
        // THEN it answers its own part: its routes and the health endpoints, nothing else
        part.expect(200);
        let own: BTreeSet<String> = router_table()
            .into_iter()
            .filter(|(_, f)| f == function)
            .map(|(p, _)| p)
            .chain(HEALTH.map(str::to_owned))
            .collect();
        assert_eq!(paths(&part.body), own, "{function}");
        // AND it carries the security schemes and the error envelope its operations refer to
        assert!(
            part.body["components"]["securitySchemes"]
                .get("ingest_token")
                .is_some()
        );
        assert!(
            part.body["components"]["schemas"]
                .get("ErrorEnvelope")
                .is_some()
        );
    }
}
