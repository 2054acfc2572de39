//! `make bench`: what the API description costs a function. Per function, the median time to
//! build its router (what a cold start pays: routes from the annotations' paths and methods
//! only), then the one-off cost of rendering its own part on the first `GET /openapi.json`,
//! and of generating the whole document. Runs with the cold-start bench's environment (no
//! AWS call is made).

use std::time::{Duration, Instant};

/// A function's `router(state)`.
type RouterOf = fn(callplane::AppState) -> axum::Router;
/// A function's described routes (`api()`).
type ApiOf = fn() -> utoipa_axum::router::OpenApiRouter<callplane::AppState>;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = callplane::App::from_env().await?;
    println!(
        "| function | router build, median of 200 (µs) | building its described routes, median of 50 (µs) | first /openapi.json of its own part (ms) |"
    );
    println!("|---|---|---|---|");
    let routers: [(&str, RouterOf, ApiOf); 12] = [
        ("auth", auth::router, auth::api),
        (
            "establishments",
            establishments::router,
            establishments::api,
        ),
        ("agents", agents::router, agents::api),
        ("runtimes", runtimes::router, runtimes::api),
        ("calls", calls::router, calls::api),
        (
            "twilio-webhooks",
            twilio_webhooks::router,
            twilio_webhooks::api,
        ),
        ("ingest", ingest::router, ingest::api),
        ("leads", leads::router, leads::api),
        ("campaigns", campaigns::router, campaigns::api),
        ("reports", reports::router, reports::api),
        ("integrations", integrations::router, integrations::api),
        ("tool-proxy", tool_proxy::router, tool_proxy::api),
    ];
    for (name, router_of, api_of) in routers {
        let samples: Vec<Duration> = (0..200)
            .map(|_| {
                let started = Instant::now();
                let router = router_of(app.clone());
                let took = started.elapsed();
                drop(router);
                took
            })
            .collect();
        let eager: Vec<Duration> = (0..50)
            .map(|_| {
                let started = Instant::now();
                let api = api_of().split_for_parts();
                let took = started.elapsed();
                drop(api);
                took
            })
            .collect();
        let started = Instant::now();
        let reply = callplane_tests::call(
            router_of(app.clone()),
            http::Request::get("/openapi.json").body(axum::body::Body::empty())?,
        )
        .await;
        anyhow::ensure!(
            reply.status == 200,
            "{name}: /openapi.json answered {}",
            reply.status
        );
        println!(
            "| {name} | {} | {} | {:.1} |",
            median(samples).as_micros(),
            median(eager).as_micros(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    let started = Instant::now();
    let whole = callplane_tests::openapi_document();
    println!(
        "| the whole document (make openapi) | — | {:.1} ({} KB) |",
        started.elapsed().as_secs_f64() * 1e3,
        whole.len() / 1024
    );
    Ok(())
}
