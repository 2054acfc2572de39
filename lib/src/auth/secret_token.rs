//! Single-use secret tokens (invitations, password resets): 256 random bits, base64url. Only
//! the SHA-256 of a token is stored, so a table dump reveals no usable token. Also: tokens
//! derived from a server secret (runtime ingest tokens), and constant-time hash comparison.

use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};

/// A new token and the hash to store for it.
pub fn generate() -> Result<(String, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(e.to_string()))?;
    let token = B64.encode(bytes);
    let hash = hash(&token);
    Ok((token, hash))
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A token derived from `secret` for `purpose` and `subject` (HMAC-SHA256, base64url): the
/// server can hand it to whoever needs it again (a host re-creating a container) without
/// storing it; only its hash is stored, to check it.
/// Purpose string of derived ingest tokens.
const INGEST_TOKEN_PURPOSE: &str = "callplane runtime ingest token v1";

/// A runtime's ingest token: derived from `INGEST_TOKEN_SECRET`, so the control plane can hand
/// it to the host again (to re-create the container) without storing it; the ingest function
/// checks a presented token against it and against the hash stored at provisioning.
pub fn ingest_token(
    config: &crate::config::Config,
    runtime: &crate::ids::RuntimeId,
) -> Result<String> {
    derived(
        config.ingest_token_secret.expose().as_bytes(),
        INGEST_TOKEN_PURPOSE,
        runtime.as_str(),
    )
}

pub fn derived(secret: &[u8], purpose: &str, subject: &str) -> Result<String> {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(secret).map_err(|e| Error::internal(e.to_string()))?;
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(subject.as_bytes());
    Ok(B64.encode(mac.finalize().into_bytes()))
}

/// Whether `token` hashes to `stored`, compared in constant time.
pub fn matches(token: &str, stored: &str) -> bool {
    let computed = hash(token);
    computed.len() == stored.len()
        && computed
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tokens_are_stable_per_subject_and_match_only_their_hash() {
        // GIVEN two subjects under one secret
        let secret = b"a-secret-of-at-least-thirty-two-bytes!";
        let a = derived(secret, "purpose", "rt_a").unwrap();
        // WHEN derived again, for another subject, or under another purpose
        // THEN the same subject gives the same token and anything else another one
        assert_eq!(a, derived(secret, "purpose", "rt_a").unwrap());
        assert_ne!(a, derived(secret, "purpose", "rt_b").unwrap());
        assert_ne!(a, derived(secret, "other", "rt_a").unwrap());
        // AND only the token matches its stored hash
        assert!(matches(&a, &hash(&a)));
        assert!(!matches("guess", &hash(&a)));
        assert!(!matches(&a, "short"));
    }
}
