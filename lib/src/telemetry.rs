//! Logging: JSON lines inside Lambda (CloudWatch), each with the invocation's span (its request
//! id), human-readable elsewhere; `RUST_LOG` filters, `info` by default. One line per request
//! comes from `http::log_request`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; call once at the top of `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder
            .json()
            // The Lambda runtime's invocation span carries the request id (and X-Ray trace):
            // every line of an invocation says which one it belongs to.
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .init();
    } else {
        builder.init();
    }
}
