//! Health endpoints: every function answers liveness, readiness and build info without
//! credentials; readiness turns 503 naming what is unreachable.

use callplane::App;
use callplane_tests::{Stack, call, functions};
use http::{Method, Request};
use std::sync::Arc;

fn get(path: &str) -> Request<axum::body::Body> {
    Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(axum::body::Body::empty())
        .unwrap()
}

#[tokio::test]
async fn every_function_answers_liveness_readiness_and_info_without_credentials() {
    // GIVEN a stack whose table, bucket and queues are up
    let stack = Stack::new().await;
    for (name, router) in stack.functions() {
        // WHEN each function is asked, with no token
        let live = call(router.clone(), get("/healthz")).await;
        let health = call(router.clone(), get("/health")).await;
        let ready = call(router.clone(), get("/readyz")).await;
        let info = call(router.clone(), get("/info")).await;
        // THEN it is alive, ready, and says what build it is
        assert_eq!(live.expect(200)["status"], "ok", "{name}");
        assert_eq!(health.expect(200)["status"], "ok", "{name}");
        assert_eq!(ready.expect(200)["ready"], true, "{name}: {}", ready.body);
        assert_eq!(ready.body["issues"], serde_json::json!([]), "{name}");
        let info = info.expect(200);
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"), "{name}");
        let commit = info["commit"].as_str().unwrap();
        assert!(
            commit == "unknown"
                || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{name}: {commit}"
        );
    }
    // AND through the router table (API Gateway, make dev) too
    stack
        .send(Method::GET, "/readyz", None, None)
        .await
        .expect(200);
}

#[tokio::test]
async fn readiness_is_503_naming_what_is_unreachable() {
    // GIVEN functions whose AWS endpoint does not answer (nothing listens on the port)
    let stack = Stack::new().await;
    let dead = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    let app = Arc::new(App::new(stack.app.config.clone(), &dead));
    for (name, router) in functions(&app) {
        // WHEN readiness is asked
        let ready = call(router.clone(), get("/readyz")).await;
        // THEN 503, ready false, and the table and bucket named (the queue where configured)
        assert_eq!(ready.status.as_u16(), 503, "{name}: {}", ready.body);
        assert_eq!(ready.body["ready"], false);
        let issues = ready.body["issues"].to_string();
        assert!(issues.contains("table unreachable"), "{name}: {issues}");
        assert!(issues.contains("bucket unreachable"), "{name}: {issues}");
        assert!(
            issues.contains("summary queue unreachable"),
            "{name}: {issues}"
        );
        // AND liveness is still 200: the process is up
        call(router, get("/healthz")).await.expect(200);
    }
}

/// A `MakeWriter` collecting log output in memory.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn each_request_is_one_log_line_with_its_route_status_and_ids_and_no_secrets() {
    // GIVEN a stack and JSON logs captured as Lambda writes them
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // WHEN a member reads the establishment's live calls, and an unknown route is asked
    stack
        .get(&format!("/calls/active?establishment_id={est}"), &admin)
        .await
        .expect(200);
    stack.get("/no/such/route", &admin).await.expect(404);

    // THEN each request is one line: route template, status, latency and the establishment
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let active = &lines[0]["fields"];
    assert_eq!(active["route"], "/calls/active");
    assert_eq!(active["status"], 200);
    assert_eq!(active["establishment_id"], est.as_str());
    assert!(active["latency_ms"].is_u64());
    assert_eq!(lines[1]["fields"]["status"], 404);
    // AND no token reaches the logs
    assert!(!text.contains(&admin), "the bearer token was logged");
}
