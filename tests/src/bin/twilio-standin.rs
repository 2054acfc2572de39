//! `make dev`'s Twilio: the tests' wire-faithful stand-in (`callplane_tests::twilio`) on a
//! fixed port, whose account owns every number it is asked about, so numbers register and
//! outbound calls are placed without a Twilio account. It accepts the stand-in's account SID
//! and auth token (`make dev` uses them). Usage: `twilio-standin PORT`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: twilio-standin PORT"))?
        .parse()?;
    let twilio =
        callplane_tests::twilio::FakeTwilio::start_on(&format!("127.0.0.1:{port}"), true).await;
    println!("Twilio stand-in on {}", twilio.base_url);
    std::future::pending::<()>().await;
    Ok(())
}
