//! S3: big objects live here, DynamoDB keeps the reference.

use crate::error::{Error, Result};
use aws_sdk_s3::primitives::ByteStream;

/// The bucket.
#[derive(Clone, Debug)]
pub struct Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl Blobs {
    /// Blobs in `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The S3 client (streaming copies use it directly: `recordings`).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// One cheap call that tells whether the bucket answers (readiness checks): no retries,
    /// a short timeout.
    pub async fn probe(&self) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .timeout_config(crate::aws::probe_timeouts()),
            )
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(())
    }

    /// Writes an object.
    pub async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(())
    }

    /// Reads an object; `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.body.collect().await.map_err(Error::internal)?.to_vec(),
            )),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// A URL that lets its holder GET `key` until `ttl` has passed (SigV4 query signing; no
    /// request is made).
    pub async fn presigned_get(&self, key: &str, ttl: std::time::Duration) -> Result<String> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(ttl)?)
            .await
            .map_err(Error::internal)?;
        Ok(request.uri().to_owned())
    }

    /// A URL that lets its holder PUT `key` until `ttl` has passed (SigV4 query signing; no
    /// request is made).
    pub async fn presigned_put(&self, key: &str, ttl: std::time::Duration) -> Result<String> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(ttl)?)
            .await
            .map_err(Error::internal)?;
        Ok(request.uri().to_owned())
    }

    /// An object's size and ETag (one HeadObject); `None` if there is none.
    pub async fn head(&self, key: &str) -> Result<Option<(u64, String)>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some((
                u64::try_from(out.content_length.unwrap_or(0)).unwrap_or(0),
                out.e_tag.unwrap_or_default(),
            ))),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// An object's body as a stream, if it still has ETag `etag` (so two reads of one import
    /// see the same file); `None` if it is gone or was replaced.
    pub async fn open(&self, key: &str, etag: &str) -> Result<Option<ByteStream>> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.body)),
            Err(e)
                if e.as_service_error().is_some_and(|e| e.is_no_such_key())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 412) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// Keys under `prefix`, in key order (first 1000).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(out
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| o.key)
            .collect())
    }
}

/// Presigning that expires after `ttl` (SigV4 query signing; no request is made).
fn presigning(ttl: std::time::Duration) -> Result<aws_sdk_s3::presigning::PresigningConfig> {
    aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl).map_err(Error::internal)
}
