//! A small SMTP submission client (RFC 5321 with STARTTLS, RFC 4954 `AUTH PLAIN`, RFC 8314
//! implicit TLS) for establishments that send email through their own server. It speaks the
//! dialogue, checks each reply code, and maps failures to [`ProviderError`]: a 535 is a
//! refused login, other 5xx a refusal, 4xx and I/O a retryable unavailability, and the whole
//! exchange is bounded by the provider timeout.

use crate::domain::Email;
use crate::domain::integration::{SmtpSecurity, SmtpSettings};
use crate::providers::ProviderError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A message to submit.
#[derive(Clone, Debug)]
pub struct SmtpMessage {
    pub to: Email,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub reply_to: Option<Email>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = BufReader<Box<dyn Io>>;

fn unavailable(message: impl Into<String>, maybe_done: bool) -> ProviderError {
    ProviderError {
        maybe_done,
        ..ProviderError::new("provider_unavailable", message, true)
    }
}

/// Reads one (possibly multi-line) reply: its code and its last line.
async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
) -> Result<(u16, String), ProviderError> {
    for _ in 0..100 {
        let mut line = String::new();
        let n = conn.read_line(&mut line).await.map_err(|e| {
            unavailable(format!("the SMTP server closed the connection: {e}"), false)
        })?;
        if n == 0 || line.len() < 3 || line.len() > 1000 {
            return Err(unavailable("the SMTP server sent no valid reply", false));
        }
        let code: u16 = line[..3]
            .parse()
            .map_err(|_| unavailable("the SMTP server sent no valid reply", false))?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, line.get(4..).unwrap_or("").trim().to_owned()));
        }
    }
    Err(unavailable("the SMTP server's reply is too long", false))
}

/// Sends a command and expects a reply in `expected`.
async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    line: &str,
    expected: &[u16],
    what: &str,
) -> Result<String, ProviderError> {
    conn.get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| unavailable(format!("writing to the SMTP server failed: {e}"), false))?;
    expect(conn, expected, what).await
}

async fn expect<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    expected: &[u16],
    what: &str,
) -> Result<String, ProviderError> {
    let (code, text) = reply(conn).await?;
    if expected.contains(&code) {
        return Ok(text);
    }
    let message = format!("{what}: the SMTP server answered {code} {text}")
        .chars()
        .take(300)
        .collect::<String>();
    Err(match code {
        535 | 534 | 530 => ProviderError::new("integration_unauthorized", message, false),
        500..=599 => ProviderError::new("provider_rejected", message, false),
        _ => unavailable(message, false),
    })
}

/// TLS to the server with the system's roots, over the aws-lc-rs provider already linked;
/// built once per instance (reading the system's roots is file I/O).
fn tls_config() -> Result<Arc<rustls::ClientConfig>, ProviderError> {
    static CONFIG: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| unavailable(format!("TLS is not available: {e}"), false))
}

async fn tls(host: &str, stream: TcpStream) -> Result<Box<dyn Io>, ProviderError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| unavailable(format!("`{host}` is not a TLS server name"), false))?;
    let stream = tokio_rustls::TlsConnector::from(tls_config()?)
        .connect(name, stream)
        .await
        .map_err(|e| unavailable(format!("TLS with the SMTP server failed: {e}"), false))?;
    Ok(Box::new(stream))
}

/// Connects, greets, secures and logs in.
async fn session(settings: &SmtpSettings, password: &str) -> Result<Conn, ProviderError> {
    let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
        .await
        .map_err(|e| unavailable(format!("the SMTP server could not be reached: {e}"), false))?;
    let mut conn: Conn = match settings.security {
        SmtpSecurity::Tls => {
            let mut conn = BufReader::new(tls(&settings.host, tcp).await?);
            expect(&mut conn, &[220], "greeting").await?;
            command(&mut conn, "EHLO callplane", &[250], "EHLO").await?;
            conn
        }
        SmtpSecurity::None => {
            let mut conn: Conn = BufReader::new(Box::new(tcp));
            expect(&mut conn, &[220], "greeting").await?;
            command(&mut conn, "EHLO callplane", &[250], "EHLO").await?;
            conn
        }
        SmtpSecurity::Starttls => {
            let mut plain = BufReader::new(tcp);
            expect(&mut plain, &[220], "greeting").await?;
            command(&mut plain, "EHLO callplane", &[250], "EHLO").await?;
            command(&mut plain, "STARTTLS", &[220], "STARTTLS").await?;
            if !plain.buffer().is_empty() {
                return Err(unavailable("the SMTP server sent data before TLS", false));
            }
            let mut conn = BufReader::new(tls(&settings.host, plain.into_inner()).await?);
            command(&mut conn, "EHLO callplane", &[250], "EHLO").await?;
            conn
        }
    };
    if !settings.username.is_empty() {
        let token = B64.encode(format!("\0{}\0{password}", settings.username));
        command(&mut conn, &format!("AUTH PLAIN {token}"), &[235], "login").await?;
    }
    Ok(conn)
}

async fn bounded<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, ProviderError>>,
    maybe_done: bool,
) -> Result<T, ProviderError> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(ProviderError {
                maybe_done,
                ..ProviderError::new(
                    "provider_timeout",
                    format!(
                        "the SMTP server did not finish within {} s",
                        timeout.as_secs()
                    ),
                    true,
                )
            })
        })
}

/// Logs in and out (`/test`).
pub async fn check(
    settings: &SmtpSettings,
    password: &str,
    timeout: Duration,
) -> Result<Value, ProviderError> {
    bounded(
        timeout,
        async {
            let mut conn = session(settings, password).await?;
            let _ = command(&mut conn, "QUIT", &[221], "QUIT").await;
            Ok(json!({"transport": "smtp", "host": settings.host, "login": !settings.username.is_empty()}))
        },
        false,
    )
    .await
}

/// Submits one message.
pub async fn send(
    settings: &SmtpSettings,
    password: &str,
    from_name: Option<&str>,
    message: &SmtpMessage,
    timeout: Duration,
) -> Result<Value, ProviderError> {
    let id = format!("{}@callplane", ulid::Ulid::new());
    let data = render(&settings.from, from_name, message, &id);
    bounded(
        timeout,
        async {
            let mut conn = session(settings, password).await?;
            command(
                &mut conn,
                &format!("MAIL FROM:<{}>", settings.from),
                &[250],
                "MAIL FROM",
            )
            .await?;
            command(
                &mut conn,
                &format!("RCPT TO:<{}>", message.to),
                &[250, 251],
                "RCPT TO",
            )
            .await?;
            command(&mut conn, "DATA", &[354], "DATA").await?;
            conn.get_mut()
                .write_all(data.as_bytes())
                .await
                .map_err(|e| unavailable(format!("writing the message failed: {e}"), true))?;
            let queued = command(&mut conn, ".", &[250], "message")
                .await
                .map_err(|e| ProviderError {
                    maybe_done: e.code != "provider_rejected",
                    ..e
                })?;
            let _ = command(&mut conn, "QUIT", &[221], "QUIT").await;
            Ok(json!({"message_id": format!("<{id}>"), "server_reply": queued}))
        },
        true,
    )
    .await
}

/// A header value: ASCII as is, anything else as an RFC 2047 encoded word.
fn header_text(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() {
        clean
    } else {
        format!("=?UTF-8?B?{}?=", B64.encode(clean.as_bytes()))
    }
}

/// A body part: CRLF line ends, dot-stuffed (RFC 5321 §4.5.2), base64 for non-ASCII.
fn part(content_type: &str, body: &str) -> String {
    if body.is_ascii() {
        let lines: Vec<String> = body
            .lines()
            .map(|l| {
                if l.starts_with('.') {
                    format!(".{l}")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        format!(
            "Content-Type: {content_type}; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{}\r\n",
            lines.join("\r\n")
        )
    } else {
        let encoded = B64.encode(body.as_bytes());
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "Content-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        )
    }
}

/// The message as DATA sends it (headers, body, no final dot).
fn render(from: &Email, from_name: Option<&str>, m: &SmtpMessage, id: &str) -> String {
    let from = match from_name {
        Some(name) => format!("{} <{from}>", header_text(name)),
        None => from.to_string(),
    };
    let mut headers = format!(
        "From: {from}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n",
        m.to,
        header_text(&m.subject),
        chrono::Utc::now().to_rfc2822(),
    );
    if let Some(reply_to) = &m.reply_to {
        headers.push_str(&format!("Reply-To: {reply_to}\r\n"));
    }
    let body = match (&m.text, &m.html) {
        (Some(text), Some(html)) => {
            let boundary = format!("=_callplane_{}", ulid::Ulid::new());
            format!(
                "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n{}--{boundary}\r\n{}--{boundary}--\r\n",
                part("text/plain", text),
                part("text/html", html)
            )
        }
        (None, Some(html)) => part("text/html", html),
        (text, None) => part("text/plain", text.as_deref().unwrap_or("")),
    };
    format!("{headers}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_starting_with_a_dot_is_stuffed_and_non_ascii_is_encoded() {
        // GIVEN a message whose text has a line starting with a dot and a non-ASCII subject
        let m = SmtpMessage {
            to: Email::parse("guest@example.com").unwrap(),
            subject: "Réservation".into(),
            text: Some("hello\n.hidden\nbye".into()),
            html: None,
            reply_to: None,
        };
        // WHEN it is rendered
        let data = render(
            &Email::parse("desk@example.com").unwrap(),
            Some("Front desk"),
            &m,
            "x",
        );
        // THEN the dot line is doubled and the subject is an encoded word
        assert!(data.contains("\r\n..hidden\r\n"), "{data}");
        assert!(data.contains("Subject: =?UTF-8?B?"), "{data}");
        assert!(
            data.contains("From: Front desk <desk@example.com>"),
            "{data}"
        );
    }
}
