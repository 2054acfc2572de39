//! The mail port. In AWS mail goes out through SES; in the local stack it is written to the
//! bucket under `outbox/` (one JSON file per message; the log names the object, never the
//! text, which holds single-use tokens), so a person or a test can read invitations and reset
//! links.

use crate::blobs::Blobs;
use crate::domain::Email;
use crate::error::{Error, Result};
use crate::time::Timestamp;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use serde::Serialize;

/// Key prefix of the local outbox.
pub const OUTBOX_PREFIX: &str = "outbox/";

/// One plain-text message. Its text carries single-use links (invitations, password resets):
/// `Debug` and the logs leave it out.
#[derive(Clone, Serialize)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    pub text: String,
    /// An HTML alternative (tool-proxy email).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Where replies go (an establishment's own address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Email>,
    /// The sender's display name before the platform's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Where mail goes.
#[derive(Clone, Debug)]
pub enum Mailer {
    /// The bucket's `outbox/`.
    Outbox { blobs: Blobs, from: String },
    /// Amazon SES v2.
    Ses {
        client: aws_sdk_sesv2::Client,
        from: String,
    },
}

#[derive(Serialize)]
struct OutboxMessage<'a> {
    from: &'a str,
    #[serde(flatten)]
    mail: &'a Mail,
    created_at: Timestamp,
}

impl Mailer {
    /// Sends `mail`.
    pub async fn send(&self, mail: &Mail) -> Result<()> {
        match self {
            Mailer::Outbox { blobs, from } => {
                let key = format!("{OUTBOX_PREFIX}{}.json", ulid::Ulid::new());
                let body = serde_json::to_vec_pretty(&OutboxMessage {
                    from,
                    mail,
                    created_at: Timestamp::now(),
                })
                .map_err(Error::internal)?;
                blobs.put(&key, body, "application/json").await?;
                // The text holds single-use tokens: it stays in the (private) outbox object.
                tracing::info!(to = %mail.to, subject = %mail.subject, outbox_key = %key, "mail written to outbox");
                Ok(())
            }
            Mailer::Ses { client, from } => {
                let text = |data: &str| {
                    Content::builder()
                        .data(data)
                        .charset("UTF-8")
                        .build()
                        .map_err(Error::internal)
                };
                let mut body = Body::builder().text(text(&mail.text)?);
                if let Some(html) = &mail.html {
                    body = body.html(text(html)?);
                }
                let message = Message::builder()
                    .subject(text(&mail.subject)?)
                    .body(body.build())
                    .build();
                let from = match &mail.from_name {
                    // RFC 5322 display name, quoted (SES encodes non-ASCII itself).
                    Some(name) => format!("\"{}\" <{from}>", name.replace(['"', '\\'], "")),
                    None => from.clone(),
                };
                client
                    .send_email()
                    .from_email_address(from)
                    .set_reply_to_addresses(mail.reply_to.as_ref().map(|r| vec![r.to_string()]))
                    .destination(
                        Destination::builder()
                            .to_addresses(mail.to.as_str())
                            .build(),
                    )
                    .content(EmailContent::builder().simple(message).build())
                    .send()
                    .await
                    .map_err(Error::internal)?;
                Ok(())
            }
        }
    }
}
