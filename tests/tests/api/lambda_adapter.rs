//! What Lambda hands a function, through the adapter `lambda_http::run` wraps every router in:
//! API Gateway HTTP API (v2) events and function-URL events as AWS sends them (base64 form
//! bodies, stage prefixes, repeated query keys, cookies, a custom domain's host), answered
//! as Lambda returns them.

use base64::Engine as _;
use callplane_tests::{PUBLIC_URL, Stack, twilio};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::{Value, json};

/// Invokes `router` with `event` as the Lambda runtime would; the response as Lambda returns it.
async fn invoke(router: axum::Router, event: Value) -> Value {
    let request: LambdaRequest = serde_json::from_value(event).expect("a Lambda HTTP event");
    let mut adapter = Adapter::from(router);
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .expect("infallible");
    serde_json::to_value(response).expect("serialisable")
}

/// An API Gateway HTTP API (payload 2.0) event.
fn apigw(method: &str, raw_path: &str, query: &str, headers: Value, stage: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "cookies": ["session=abc", "theme=dark"],
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api1",
            "domainName": "api.callplane.example", "domainPrefix": "api",
            "http": { "method": method, "path": raw_path, "protocol": "HTTP/1.1",
                      "sourceIp": "203.0.113.7", "userAgent": "test" },
            "requestId": "req-1", "routeKey": "$default", "stage": stage,
            "time": "02/Dec/2026:03:00:00 +0000", "timeEpoch": 1796180400000u64
        },
        "isBase64Encoded": false
    })
}

fn body_of(response: &Value) -> Value {
    let raw = response["body"].as_str().unwrap_or_default();
    let text = if response["isBase64Encoded"] == true {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap(),
        )
        .unwrap()
    } else {
        raw.to_owned()
    };
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

#[tokio::test]
async fn api_gateway_events_reach_the_routes_and_answers_are_lambda_responses() {
    // GIVEN a stack with an establishment and its admin's token
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let bearer =
        json!({ "authorization": format!("Bearer {admin}"), "host": "api.callplane.example" });

    // WHEN each function is asked for its health through the adapter
    for (name, router) in callplane_tests::functions(&stack.app) {
        let health = invoke(router, apigw("GET", "/healthz", "", json!({}), "$default")).await;
        // THEN each answers as Lambda returns it
        assert_eq!(health["statusCode"], 200, "{name}: {health}");
        assert_eq!(body_of(&health)["status"], "ok", "{name}");
    }

    // WHEN GET /me arrives on the $default stage
    let me = invoke(
        auth::router(stack.app.clone()),
        apigw("GET", "/me", "", bearer.clone(), "$default"),
    )
    .await;
    // THEN it is answered as Lambda returns it: status, JSON content type, the body
    assert_eq!(me["statusCode"], 200, "{me}");
    assert_eq!(me["headers"]["content-type"], "application/json");
    assert_eq!(body_of(&me)["user"]["email"], callplane_tests::ADMIN_EMAIL);

    // WHEN a list arrives with repeated and encoded query keys and cookies
    let calls = invoke(
        calls::router(stack.app.clone()),
        apigw(
            "GET",
            "/calls",
            &format!(
                "establishment_id={est}&direction=inbound&limit=5&from=2026-01-01T00%3A00%3A00Z"
            ),
            bearer.clone(),
            "$default",
        ),
    )
    .await;
    // THEN the query is read as sent
    assert_eq!(calls["statusCode"], 200, "{}", body_of(&calls));
    assert_eq!(body_of(&calls)["items"], json!([]));

    // WHEN a bad request arrives THEN the error envelope comes back through Lambda
    let bad = invoke(
        calls::router(stack.app.clone()),
        apigw("GET", "/calls", "limit=0", bearer.clone(), "$default"),
    )
    .await;
    assert_eq!(bad["statusCode"], 400);
    assert_eq!(body_of(&bad)["error"]["code"], "validation_failed");

    // WHEN the API is deployed on a named stage (rawPath carries /prod) without saying so
    let staged_event = apigw("GET", "/prod/me", "", bearer, "prod");
    let unknown = invoke(auth::router(stack.app.clone()), staged_event.clone()).await;
    // THEN no route matches: the function must be told its base path
    assert_eq!(unknown["statusCode"], 404);
    // WHEN it is deployed with API_BASE_PATH=/prod
    let prod = stack.redeployed(&[("API_BASE_PATH", "/prod")]);
    let staged = invoke(auth::router(prod.app.clone()), staged_event).await;
    let direct = invoke(
        auth::router(prod.app.clone()),
        apigw("GET", "/healthz", "", json!({}), "$default"),
    )
    .await;
    // THEN the route is found under the prefix, and still without it
    assert_eq!(staged["statusCode"], 200, "{}", body_of(&staged));
    assert_eq!(
        body_of(&staged)["user"]["email"],
        callplane_tests::ADMIN_EMAIL
    );
    assert_eq!(direct["statusCode"], 200);
}

#[tokio::test]
async fn a_twilio_webhook_through_a_function_url_is_verified_against_the_public_url() {
    // GIVEN a stack and Twilio's call-status callback for a call we do not know, signed for
    // the public URL Twilio was given (a custom domain in front of the function URL)
    let stack = Stack::new().await;
    let params = [
        ("CallSid".to_owned(), "CA_adapter_1".to_owned()),
        ("CallStatus".to_owned(), "ringing".to_owned()),
        ("AccountSid".to_owned(), twilio::ACCOUNT_SID.to_owned()),
    ];
    let signature = callplane::telephony::twilio::signature::sign(
        twilio::AUTH_TOKEN,
        &format!("{PUBLIC_URL}/webhooks/twilio/call-status"),
        &params,
    );
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &params {
        form.append_pair(k, v);
    }
    let body = base64::engine::general_purpose::STANDARD.encode(form.finish());
    let event = |signature: &str| {
        json!({
            "version": "2.0", "routeKey": "$default",
            "rawPath": "/webhooks/twilio/call-status", "rawQueryString": "",
            "headers": {
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": signature,
                "host": "abc123.lambda-url.us-east-1.on.aws",
                "x-forwarded-proto": "https", "user-agent": "TwilioProxy/1.1"
            },
            "requestContext": {
                "accountId": "anonymous", "apiId": "abc123",
                "domainName": "abc123.lambda-url.us-east-1.on.aws", "domainPrefix": "abc123",
                "http": { "method": "POST", "path": "/webhooks/twilio/call-status",
                          "protocol": "HTTP/1.1", "sourceIp": "54.172.60.1", "userAgent": "TwilioProxy/1.1" },
                "requestId": "req-2", "routeKey": "$default", "stage": "$default",
                "time": "02/Dec/2026:03:00:00 +0000", "timeEpoch": 1796180400000u64
            },
            "body": body,
            "isBase64Encoded": true
        })
    };

    // WHEN it arrives base64-encoded through the function URL
    let accepted = invoke(
        twilio_webhooks::router(stack.app.clone()),
        event(&signature),
    )
    .await;
    // THEN the signature holds against the public URL and the callback is taken (204)
    assert_eq!(accepted["statusCode"], 204, "{}", body_of(&accepted));

    // WHEN the signature is wrong THEN 403 with the envelope
    let refused = invoke(
        twilio_webhooks::router(stack.app.clone()),
        event("bm9wZQ=="),
    )
    .await;
    assert_eq!(refused["statusCode"], 403);
    assert_eq!(body_of(&refused)["error"]["code"], "forbidden");
}

#[tokio::test]
async fn rest_api_events_with_multi_value_queries_and_headers_reach_the_routes() {
    // GIVEN a stack with an establishment, asked through an API Gateway REST (v1) proxy event
    // on its `prod` stage, with the query and headers in their multi-value forms
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let event = json!({
        "resource": "/{proxy+}",
        "path": "/calls",
        "httpMethod": "GET",
        "headers": { "Authorization": format!("Bearer {admin}"), "Host": "api.callplane.example" },
        "multiValueHeaders": {
            "Authorization": [format!("Bearer {admin}")],
            "Host": ["api.callplane.example"],
            "Accept": ["application/json", "text/plain"]
        },
        "queryStringParameters": { "establishment_id": est, "limit": "5" },
        "multiValueQueryStringParameters": { "establishment_id": [est], "limit": ["5"] },
        "pathParameters": { "proxy": "calls" },
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "abc", "stage": "prod",
            "requestId": "req-3", "requestTimeEpoch": 1796180400000u64,
            "identity": { "sourceIp": "203.0.113.7", "userAgent": "test" },
            "resourcePath": "/{proxy+}", "httpMethod": "GET", "apiId": "api1"
        },
        "body": null,
        "isBase64Encoded": false
    });

    // WHEN the function is deployed with its stage as base path
    let prod = stack.redeployed(&[("API_BASE_PATH", "/prod")]);
    let answer = invoke(calls::router(prod.app.clone()), event).await;

    // THEN the list is answered, as a REST API response
    assert_eq!(answer["statusCode"], 200, "{}", body_of(&answer));
    assert_eq!(body_of(&answer)["items"], json!([]));
    assert!(
        answer["multiValueHeaders"]["content-type"].is_array(),
        "{answer}"
    );
}

#[tokio::test]
async fn a_multipart_leads_upload_arrives_base64_encoded_and_is_imported() {
    // GIVEN an establishment and a CSV as a browser sends it: multipart/form-data, which API
    // Gateway hands Lambda base64-encoded
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Leads via Lambda").await;
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"establishment_id\"\r\n\r\n{est}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"leads.csv\"\r\nContent-Type: text/csv\r\n\r\n\
         telefone;nome\r\n+55 11 98765-4321;Ana\r\n(11) 3456-7890;Bruno\r\n\r\n--{boundary}--\r\n"
    );
    let mut event = apigw(
        "POST",
        "/leads/import",
        "",
        json!({
            "authorization": format!("Bearer {admin}"),
            "content-type": format!("multipart/form-data; boundary={boundary}"),
        }),
        "$default",
    );
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    event["isBase64Encoded"] = json!(true);

    // WHEN it goes through the adapter, and the import queue's message to the worker
    let accepted = invoke(leads::router(stack.app.clone()), event).await;
    assert_eq!(accepted["statusCode"], 202, "{}", body_of(&accepted));
    let job = body_of(&accepted)["job_id"].as_str().unwrap().to_owned();
    let batch = callplane_tests::world::queue_batch(&stack, "lead-import-jobs").await;
    let response = lead_import::handle(&stack.app, serde_json::from_value(batch).unwrap()).await;
    assert!(response.batch_item_failures.is_empty());

    // THEN both rows are leads, the national one read in the establishment's region (pt-BR)
    let status = stack.get(&format!("/leads/import/{job}"), &admin).await;
    assert_eq!(status.expect(200)["created"], 2, "{}", status.body);
    let leads = stack
        .get(&format!("/leads?establishment_id={est}&q=%2B55"), &admin)
        .await;
    let numbers: Vec<&str> = leads.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["phone_e164"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, vec!["+551134567890", "+5511987654321"]);
}

#[tokio::test]
async fn a_tool_call_through_the_tool_proxys_function_url_is_answered_and_retried_once() {
    // GIVEN a live call on a running runtime, and the caller's opt-out as the runtime sends
    // it to the tool proxy's function URL (a JSON body, the ingest token, a tool-call id)
    let stack = Stack::new().await;
    let rt = super::ingest::world(&stack, super::ingest::NUMBER).await;
    let sid = "CA_adapter_tool_1";
    callplane_tests::world::incoming(&stack, sid, super::ingest::CALLER, super::ingest::NUMBER)
        .await;
    let event = json!({
        "version": "2.0", "routeKey": "$default",
        "rawPath": "/tool-proxy/dnc/add", "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "authorization": format!("Bearer {}", rt.token),
            "idempotency-key": "tc_adapter_1",
            "host": "tools123.lambda-url.us-east-1.on.aws",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "anonymous", "apiId": "tools123",
            "domainName": "tools123.lambda-url.us-east-1.on.aws", "domainPrefix": "tools123",
            "http": { "method": "POST", "path": "/tool-proxy/dnc/add",
                      "protocol": "HTTP/1.1", "sourceIp": "10.0.0.8", "userAgent": "runtime" },
            "requestId": "req-tool", "routeKey": "$default", "stage": "$default",
            "time": "02/Dec/2026:03:00:00 +0000", "timeEpoch": 1796180400000u64
        },
        "body": json!({"provider_call_sid": sid, "reason": "asked"}).to_string(),
        "isBase64Encoded": false
    });
    // WHEN Lambda hands it to the function, twice (a retry after a lost answer)
    let first = invoke(tool_proxy::router(stack.app.clone()), event.clone()).await;
    let again = invoke(tool_proxy::router(stack.app.clone()), event).await;
    // THEN both are the same 200 answer in the proxy's shape
    assert_eq!(first["statusCode"], 200, "{}", body_of(&first));
    assert_eq!(body_of(&first)["ok"], true);
    assert_eq!(body_of(&first)["result"]["e164"], super::ingest::CALLER);
    assert_eq!(body_of(&again), body_of(&first));
    // AND the list holds the number once
    let list = stack
        .get(
            &format!("/establishments/{}/do-not-call", rt.est),
            &rt.admin,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}
