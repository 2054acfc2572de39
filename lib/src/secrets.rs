//! Secrets at rest (PRD §8 `integration_tokens`, D.8; issue 16 item 3): envelope encryption.
//! A value is sealed with AES-256-GCM (aws-lc-rs) under a data key that KMS `GenerateDataKey`
//! made under the platform's key, with an encryption context naming what the value belongs to
//! (establishment, purpose, record). The context is given to KMS (which refuses to decrypt the
//! data key under another one) and bound into the GCM tag as associated data, so a sealed value
//! copied to another record does not open. Data keys are kept per instance: one
//! `GenerateDataKey` per context to seal, one `Decrypt` per data key to open, then none.

use crate::error::{Error, Result};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a sealed value belongs to; part of its encryption.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Context(BTreeMap<String, String>);

impl Context {
    /// A value of `purpose` (`integration`, `runtime_env`) of record `record` of
    /// establishment `establishment`.
    pub fn new(establishment: &str, purpose: &str, record: &str) -> Self {
        Self(BTreeMap::from([
            ("establishment_id".to_owned(), establishment.to_owned()),
            ("purpose".to_owned(), purpose.to_owned()),
            ("record".to_owned(), record.to_owned()),
        ]))
    }

    /// The context as GCM associated data: its pairs in key order.
    fn aad(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A sealed value, as stored (no part of it is secret without KMS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The data key, encrypted by KMS under the context (base64).
    pub key: String,
    /// The GCM nonce (base64).
    pub nonce: String,
    /// Ciphertext and tag (base64).
    pub data: String,
}

/// A data key in the clear, kept in memory only.
struct DataKey {
    plain: Vec<u8>,
    encrypted: String,
}

/// Seals and opens values with the platform's KMS key.
pub struct Envelope {
    kms: aws_sdk_kms::Client,
    key_id: String,
    sealing: Mutex<HashMap<Context, std::sync::Arc<DataKey>>>,
    opening: Mutex<HashMap<(String, Context), Vec<u8>>>,
    kms_calls: AtomicUsize,
    random: SystemRandom,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn refused(why: impl std::fmt::Display) -> Error {
    Error::internal(format!("a secret could not be opened: {why}"))
}

impl Envelope {
    /// Over KMS key `key_id` (an id, ARN or alias).
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
            sealing: Mutex::new(HashMap::new()),
            opening: Mutex::new(HashMap::new()),
            kms_calls: AtomicUsize::new(0),
            random: SystemRandom::new(),
        }
    }

    /// KMS requests this instance has made.
    pub fn kms_calls(&self) -> usize {
        self.kms_calls.load(Ordering::Relaxed)
    }

    fn kms_context(context: &Context) -> Option<HashMap<String, String>> {
        Some(context.0.clone().into_iter().collect())
    }

    /// The data key this instance seals `context`'s values with (made once).
    async fn sealing_key(&self, context: &Context) -> Result<std::sync::Arc<DataKey>> {
        if let Some(key) = self.lock_sealing().get(context) {
            return Ok(key.clone());
        }
        self.kms_calls.fetch_add(1, Ordering::Relaxed);
        let made = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Self::kms_context(context))
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("KMS did not make a data key: {e}")))?;
        let (Some(plain), Some(encrypted)) = (made.plaintext, made.ciphertext_blob) else {
            return Err(Error::internal("KMS answered a data key without its parts"));
        };
        let key = std::sync::Arc::new(DataKey {
            plain: plain.into_inner(),
            encrypted: B64.encode(encrypted.into_inner()),
        });
        self.lock_sealing().insert(context.clone(), key.clone());
        Ok(key)
    }

    fn lock_sealing(&self) -> std::sync::MutexGuard<'_, HashMap<Context, std::sync::Arc<DataKey>>> {
        self.sealing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_opening(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Context), Vec<u8>>> {
        self.opening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seals `plain` for `context`.
    pub async fn seal(&self, context: &Context, plain: &[u8]) -> Result<Sealed> {
        let key = self.sealing_key(context).await?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(Error::internal)?;
        let cipher =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key.plain).map_err(Error::internal)?);
        let mut data = plain.to_vec();
        cipher
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.aad().as_bytes()),
                &mut data,
            )
            .map_err(Error::internal)?;
        Ok(Sealed {
            key: key.encrypted.clone(),
            nonce: B64.encode(nonce),
            data: B64.encode(data),
        })
    }

    /// Opens `sealed` as a value of `context`; an error when it was sealed for another one
    /// (or altered).
    pub async fn open(&self, context: &Context, sealed: &Sealed) -> Result<Vec<u8>> {
        let cache_key = (sealed.key.clone(), context.clone());
        let cached = self.lock_opening().get(&cache_key).cloned();
        let plain_key = match cached {
            Some(key) => key,
            None => {
                let encrypted = B64.decode(&sealed.key).map_err(refused)?;
                self.kms_calls.fetch_add(1, Ordering::Relaxed);
                let opened = self
                    .kms
                    .decrypt()
                    .key_id(&self.key_id)
                    .ciphertext_blob(Blob::new(encrypted))
                    .set_encryption_context(Self::kms_context(context))
                    .send()
                    .await
                    .map_err(|e| refused(format!("KMS refused its data key: {e}")))?;
                let key = opened
                    .plaintext
                    .ok_or_else(|| refused("KMS answered no key"))?
                    .into_inner();
                self.lock_opening().insert(cache_key, key.clone());
                key
            }
        };
        let nonce: [u8; NONCE_LEN] = B64
            .decode(&sealed.nonce)
            .map_err(refused)?
            .try_into()
            .map_err(|_| refused("a nonce of the wrong length"))?;
        let mut data = B64.decode(&sealed.data).map_err(refused)?;
        let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &plain_key).map_err(refused)?);
        let plain = cipher
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.aad().as_bytes()),
                &mut data,
            )
            .map_err(|_| refused("it was sealed for another record, or altered"))?;
        Ok(plain.to_vec())
    }
}
