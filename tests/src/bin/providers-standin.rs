//! `make dev`'s integration providers: the tests' wire-faithful stand-ins
//! (`callplane_tests::providers`) for Google OAuth (a consent page that allows at once) and
//! Calendar, the WhatsApp Cloud API, HubSpot and an SMTP server, on fixed ports. Prints the
//! environment that points the API at them. Usage: `providers-standin HTTP_PORT SMTP_PORT`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || anyhow::anyhow!("usage: providers-standin HTTP_PORT SMTP_PORT");
    let http: u16 = args.next().ok_or_else(usage)?.parse()?;
    let smtp: u16 = args.next().ok_or_else(usage)?.parse()?;
    let providers = callplane_tests::providers::FakeProviders::start_on(
        &format!("127.0.0.1:{http}"),
        &format!("127.0.0.1:{smtp}"),
    )
    .await;
    eprintln!(
        "providers stand-in on {} (SMTP on 127.0.0.1:{}); WhatsApp token {}, phone number id {}; HubSpot token {}; SMTP login {} / {}",
        providers.base_url,
        providers.smtp_port,
        callplane_tests::providers::WHATSAPP_TOKEN,
        callplane_tests::providers::WHATSAPP_NUMBER_ID,
        callplane_tests::providers::HUBSPOT_TOKEN,
        callplane_tests::providers::SMTP_USER,
        callplane_tests::providers::SMTP_PASSWORD,
    );
    for (name, value) in providers.env() {
        // The callback and the frontend's origins are the dev stack's own, not the tests'.
        if !matches!(
            name,
            "OAUTH_CALLBACK_URL" | "INTEGRATION_REDIRECT_ORIGINS" | "TOOL_TIMEOUT_SECS"
        ) {
            println!("{name}={value}");
        }
    }
    // The last line: `make dev` reads the environment once it sees it.
    println!("# ready");
    std::future::pending::<()>().await;
    Ok(())
}
