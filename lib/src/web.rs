//! Outgoing HTTP clients (Twilio, LLM providers, the host agent's control-plane calls, the
//! local event source): reqwest over rustls with the aws-lc-rs provider the AWS SDK already
//! links, so no second crypto library is built. reqwest panics on a client built before a
//! provider is installed; building through here makes that impossible to forget.

/// A client builder with the crypto provider installed (process-wide; installing it again is
/// harmless, and its "already installed" answer is ignored).
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
}
