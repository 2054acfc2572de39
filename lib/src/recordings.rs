//! Bringing an external recording into the bucket: one streamed GET, written to S3 as it
//! arrives (multipart, [`PART_BYTES`] at a time, so memory stays bounded whatever the size),
//! under a size cap and a time limit.
//!
//! Where it may be fetched from: the provider's API (the configured `TWILIO_API_BASE`, with the
//! account's credentials) as configured, and otherwise only `https` URLs whose host resolves
//! to public addresses only — the connection is pinned to the addresses checked, so a DNS
//! answer cannot change between the check and the connect. Redirects are followed by hand
//! (at most [`MAX_REDIRECTS`]), each target checked as an untrusted URL, and credentials are
//! never sent to a host other than the provider's.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use reqwest::Url;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Size of each multipart part but the last (S3's minimum is 5 MiB).
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 3;

/// Where a recording comes from.
#[derive(Clone, Debug)]
pub struct Source {
    pub url: String,
    /// The provider's API base and credentials: a URL under it is fetched as configured
    /// (whatever its address) with HTTP Basic auth.
    pub provider: Option<ProviderAccess>,
}

/// The voice provider's API, as configured.
#[derive(Clone, Debug)]
pub struct ProviderAccess {
    pub api_base: String,
    pub username: String,
    pub password: crate::config::Secret,
}

/// The limits of one copy.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// A copy made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    pub bytes: u64,
    pub content_type: String,
}

/// Why a copy failed: `Permanent` failures are recorded and not retried (a refused address,
/// a 4xx, a file over the cap); `Transient` ones are retried (timeouts, 5xx, 429, S3 errors).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
}

/// Whether `ip` is an address a fetch may never reach: loopback, private, link-local (cloud
/// metadata), shared (CGNAT), unspecified, multicast, broadcast, documentation, and their
/// IPv4-mapped IPv6 forms.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Copies `source` to `key` in `bucket`.
pub async fn copy(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    source: &Source,
    limits: Limits,
) -> std::result::Result<Copied, CopyError> {
    tokio::time::timeout(limits.timeout, copy_within(s3, bucket, key, source, limits))
        .await
        .unwrap_or_else(|_| {
            Err(CopyError::Transient(format!(
                "the download took longer than {} s",
                limits.timeout.as_secs()
            )))
        })
}

async fn copy_within(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    source: &Source,
    limits: Limits,
) -> std::result::Result<Copied, CopyError> {
    let mut url = Url::parse(&source.url)
        .map_err(|e| CopyError::Permanent(format!("the recording URL is not a URL: {e}")))?;
    let mut first = true;
    for _hop in 0..=MAX_REDIRECTS {
        let provider = source
            .provider
            .as_ref()
            .filter(|p| first && url.as_str().starts_with(&format!("{}/", p.api_base)));
        first = false;
        let client = client_for(&url, provider.is_some(), limits.timeout).await?;
        let mut request = client.get(url.clone());
        if let Some(p) = provider {
            request = request.basic_auth(&p.username, Some(p.password.expose()));
        }
        let response = request
            .send()
            .await
            .map_err(|e| CopyError::Transient(format!("fetching the recording: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| CopyError::Permanent(format!("{status} without a Location")))?;
            url = url
                .join(location)
                .map_err(|e| CopyError::Permanent(format!("redirected to a bad URL: {e}")))?;
            continue;
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(CopyError::Transient(format!(
                "the recording's host answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(CopyError::Permanent(format!(
                "the recording's host answered {status}"
            )));
        }
        if response
            .content_length()
            .is_some_and(|n| n > limits.max_bytes)
        {
            return Err(too_big(limits));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        return upload(s3, bucket, key, response, &content_type, limits).await;
    }
    Err(CopyError::Permanent(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

fn too_big(limits: Limits) -> CopyError {
    CopyError::Permanent(format!(
        "the recording is larger than {} bytes",
        limits.max_bytes
    ))
}

/// A client that reaches only `url`'s checked addresses and follows no redirect. The
/// provider's configured API is trusted as configured; anything else must be https to
/// public addresses.
async fn client_for(
    url: &Url,
    trusted: bool,
    timeout: Duration,
) -> std::result::Result<reqwest::Client, CopyError> {
    let builder = crate::web::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout);
    if trusted {
        return builder
            .build()
            .map_err(|e| CopyError::Transient(e.to_string()));
    }
    let host = url
        .host_str()
        .ok_or_else(|| CopyError::Permanent("the recording URL has no host".into()))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| CopyError::Transient(format!("resolving {host}: {e}")))?
            .collect(),
    };
    if addrs.is_empty() || addrs.iter().any(|a| is_private(a.ip())) {
        return Err(CopyError::Permanent(format!(
            "refused {}: it resolves to a private address",
            redacted(url)
        )));
    }
    if url.scheme() != "https" {
        return Err(CopyError::Permanent(format!(
            "refused {}: only https URLs are fetched",
            redacted(url)
        )));
    }
    builder
        .resolve_to_addrs(bare, &addrs)
        .build()
        .map_err(|e| CopyError::Transient(e.to_string()))
}

/// `url` without its query (presigned URLs carry credentials there).
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

/// A failed S3 call: transient (retried by the job).
fn s3_error(e: impl std::fmt::Debug) -> CopyError {
    CopyError::Transient(format!("writing to the bucket: {e:?}"))
}

/// A multipart upload in progress.
struct Multipart<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    key: &'a str,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl<'a> Multipart<'a> {
    async fn start(
        s3: &'a aws_sdk_s3::Client,
        bucket: &'a str,
        key: &'a str,
        content_type: &str,
    ) -> std::result::Result<Self, CopyError> {
        let created = s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(s3_error)?;
        let upload_id = created.upload_id.ok_or_else(|| s3_error("no upload id"))?;
        Ok(Self {
            s3,
            bucket,
            key,
            upload_id,
            parts: Vec::new(),
        })
    }

    /// Uploads the next part.
    async fn add(&mut self, body: Vec<u8>) -> std::result::Result<(), CopyError> {
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let part = self
            .s3
            .upload_part()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(s3_error)?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag)
                .build(),
        );
        Ok(())
    }

    /// Uploads `last` and completes the object.
    async fn finish(&mut self, last: Vec<u8>) -> std::result::Result<(), CopyError> {
        self.add(last).await?;
        self.s3
            .complete_multipart_upload()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    /// Drops the parts uploaded (best effort: a lifecycle rule collects what an abort misses).
    async fn abort(&self) {
        let _ = self
            .s3
            .abort_multipart_upload()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
    }
}

/// Streams `response` into the object: one PutObject when it fits in a part, else a multipart
/// upload (aborted on any failure, so no orphaned parts are left to bill).
async fn upload(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    mut response: reqwest::Response,
    content_type: &str,
    limits: Limits,
) -> std::result::Result<Copied, CopyError> {
    let mut buffer: Vec<u8> = Vec::with_capacity(PART_BYTES);
    let mut total: u64 = 0;
    let mut multipart: Option<Multipart<'_>> = None;
    let streamed: std::result::Result<(), CopyError> = async {
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CopyError::Transient(format!("reading the recording: {e}")))?
        {
            total += chunk.len() as u64;
            if total > limits.max_bytes {
                return Err(too_big(limits));
            }
            buffer.extend_from_slice(&chunk);
            if buffer.len() >= PART_BYTES {
                let body = std::mem::replace(&mut buffer, Vec::with_capacity(PART_BYTES));
                let upload = match &mut multipart {
                    Some(m) => m,
                    None => {
                        multipart.insert(Multipart::start(s3, bucket, key, content_type).await?)
                    }
                };
                upload.add(body).await?;
            }
        }
        Ok(())
    }
    .await;
    let written = match (streamed, multipart) {
        (Err(e), None) => Err(e),
        (Ok(()), None) => s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(buffer))
            .send()
            .await
            .map(|_| ())
            .map_err(s3_error),
        (streamed, Some(mut upload)) => {
            let done = match streamed {
                Ok(()) => upload.finish(buffer).await,
                Err(e) => Err(e),
            };
            if done.is_err() {
                upload.abort().await;
            }
            done
        }
    };
    written.map(|()| Copied {
        bytes: total,
        content_type: content_type.to_owned(),
    })
}

/// The extension of a recording's object: from its content type, else its URL's path, else
/// `bin`.
pub fn extension(content_type: &str, url: &str) -> &'static str {
    let by_type = match content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => Some("wav"),
        "audio/mpeg" | "audio/mp3" => Some("mp3"),
        "audio/ogg" | "audio/opus" => Some("ogg"),
        "audio/webm" => Some("webm"),
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => Some("m4a"),
        "audio/flac" => Some("flac"),
        _ => None,
    };
    by_type
        .or_else(|| {
            let path = Url::parse(url).ok()?.path().to_ascii_lowercase();
            ["wav", "mp3", "ogg", "webm", "m4a", "flac"]
                .into_iter()
                .find(|ext| path.ends_with(&format!(".{ext}")))
        })
        .unwrap_or("bin")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused_public_ones_are_not() {
        // GIVEN addresses of every kind
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "198.18.0.1",
        ] {
            // THEN each private one is refused
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "54.239.28.85",
            "2606:4700:4700::1111",
            "100.128.0.1",
        ] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_extension_comes_from_the_content_type_then_the_path() {
        assert_eq!(extension("audio/x-wav", "https://x/a"), "wav");
        assert_eq!(
            extension("audio/mpeg; charset=binary", "https://x/a.wav"),
            "mp3"
        );
        assert_eq!(
            extension("application/octet-stream", "https://x/rec.OGG?sig=1"),
            "ogg"
        );
        assert_eq!(extension("text/html", "https://x/rec"), "bin");
    }
}
