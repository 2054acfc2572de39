//! Opaque list cursors. A cursor carries DynamoDB's `LastEvaluatedKey` and a fingerprint of
//! the query it came from, signed with HMAC-SHA256: a tampered cursor, or one from another
//! query (another establishment, another filter), is refused as `400 validation_failed`.

use crate::error::{Error, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks cursors.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec")
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    /// The query this cursor belongs to.
    q: String,
    /// `LastEvaluatedKey`, string attributes only (all our keys are strings).
    k: BTreeMap<String, String>,
}

impl CursorCodec {
    /// A codec keyed from the service secret (domain-separated from token signing).
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"callplane/cursor/v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// Encodes the key where the next page starts, bound to `query`.
    pub fn encode(
        &self,
        query: &str,
        last_key: &HashMap<String, AttributeValue>,
    ) -> Result<String> {
        let k = last_key
            .iter()
            .map(|(name, v)| match v {
                AttributeValue::S(s) => Ok((name.clone(), s.clone())),
                _ => Err(Error::internal(format!(
                    "non-string key attribute {name} in cursor"
                ))),
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        let body = serde_json::to_vec(&Payload {
            q: query.to_owned(),
            k,
        })
        .map_err(Error::internal)?;
        let mut mac = self.mac();
        mac.update(&body);
        let sig = mac.finalize().into_bytes();
        Ok(format!("{}.{}", B64.encode(body), B64.encode(sig)))
    }

    /// Decodes a cursor given back by a client for `query`.
    pub fn decode(&self, query: &str, cursor: &str) -> Result<HashMap<String, AttributeValue>> {
        let bad = || Error::invalid("cursor", "is not a cursor this list returned");
        let (body, sig) = cursor.split_once('.').ok_or_else(bad)?;
        let body = B64.decode(body).map_err(|_| bad())?;
        let sig = B64.decode(sig).map_err(|_| bad())?;
        let mut mac = self.mac();
        mac.update(&body);
        mac.verify_slice(&sig).map_err(|_| bad())?;
        let payload: Payload = serde_json::from_slice(&body).map_err(|_| bad())?;
        if payload.q != query {
            return Err(bad());
        }
        Ok(payload
            .k
            .into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_bound_to_their_query_and_tamper_proof() {
        // GIVEN a cursor for one establishment's member list
        let codec = CursorCodec::new(b"0123456789abcdef0123456789abcdef");
        let key = HashMap::from([("pk".to_owned(), AttributeValue::S("EST#a".into()))]);
        let cursor = codec.encode("members:est_a", &key).unwrap();
        // THEN it decodes for that query only
        assert_eq!(codec.decode("members:est_a", &cursor).unwrap(), key);
        assert!(codec.decode("members:est_b", &cursor).is_err());
        // AND any flipped character is refused
        let mut tampered = cursor.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert!(
            codec
                .decode("members:est_a", std::str::from_utf8(&tampered).unwrap())
                .is_err()
        );
        assert!(codec.decode("members:est_a", "garbage").is_err());
        // AND a cursor signed with another key is refused
        let other = CursorCodec::new(b"another-secret-another-secret-xx");
        assert!(other.decode("members:est_a", &cursor).is_err());
    }
}
