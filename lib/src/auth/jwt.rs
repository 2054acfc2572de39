use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::time::Timestamp;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

/// Signs and verifies access tokens. Only HS256 is accepted: `alg: none` and every other
/// algorithm are refused by construction.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The key before the last rotation: verifies, never signs.
    previous: Option<DecodingKey>,
    validation: Validation,
    issuer: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    iat: i64,
    exp: i64,
    jti: String,
    /// The user's token generation at issue time (see `UserRecord::token_generation`).
    #[serde(default, rename = "gen")]
    generation: u32,
}

/// A verified caller: who they are and which token they used.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: UserId,
    /// The token's id, for revocation.
    pub jti: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Must equal the user's current token generation.
    pub generation: u32,
}

/// A freshly issued access token.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
}

impl JwtKeys {
    /// Keys from the service secret (checked to be at least 32 bytes by `Config`), and the
    /// one it replaced, whose tokens stay valid until they expire.
    pub fn new(secret: &[u8], previous: Option<&[u8]>, issuer: &str, ttl_secs: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "iat"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            previous: previous.map(DecodingKey::from_secret),
            validation,
            issuer: issuer.to_owned(),
            ttl_secs,
        }
    }

    /// Issues a token for `user` in its current token `generation`.
    pub fn issue(&self, user: &UserId, generation: u32) -> Result<IssuedToken> {
        let now = Timestamp::now().unix();
        let claims = Claims {
            sub: user.to_string(),
            iss: self.issuer.clone(),
            iat: now,
            exp: now + self.ttl_secs,
            jti: ulid::Ulid::new().to_string(),
            generation,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::internal)?;
        Ok(IssuedToken {
            token,
            expires_in: self.ttl_secs,
        })
    }

    /// Verifies signature, algorithm, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<Principal> {
        let decoded = match (
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation),
            &self.previous,
        ) {
            (Err(e), Some(previous)) if *e.kind() == ErrorKind::InvalidSignature => {
                jsonwebtoken::decode::<Claims>(token, previous, &self.validation)
            }
            (decoded, _) => decoded,
        };
        let data = decoded.map_err(|e| {
            Error::Unauthorized(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "the access token has expired; log in again",
                    ErrorKind::InvalidIssuer => "the access token was not issued by this service",
                    _ => "the access token is invalid",
                }
                .into(),
            )
        })?;
        let user_id = UserId::parse(&data.claims.sub)
            .map_err(|_| Error::Unauthorized("the access token is invalid".into()))?;
        Ok(Principal {
            user_id,
            jti: data.claims.jti,
            issued_at: data.claims.iat,
            expires_at: data.claims.exp,
            generation: data.claims.generation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_round_trip_and_forgeries_are_refused() {
        // GIVEN a token issued for a user
        let keys = JwtKeys::new(SECRET, None, "callplane", 3600);
        let user = UserId::new();
        let issued = keys.issue(&user, 0).unwrap();
        // THEN it verifies to that user
        assert_eq!(keys.verify(&issued.token).unwrap().user_id, user);

        // WHEN the payload is swapped for another user's, keeping the signature
        let parts: Vec<&str> = issued.token.split('.').collect();
        let forged_payload = B64.encode(format!(
            r#"{{"sub":"{}","iss":"callplane","iat":1,"exp":9999999999,"jti":"x"}}"#,
            UserId::new()
        ));
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        // THEN it is refused
        assert!(matches!(
            keys.verify(&tampered),
            Err(Error::Unauthorized(_))
        ));

        // WHEN the header says alg none and the signature is dropped
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert!(matches!(keys.verify(&none), Err(Error::Unauthorized(_))));

        // WHEN signed by another issuer's key or for another issuer
        assert!(
            JwtKeys::new(b"another-secret-another-secret-xx", None, "callplane", 3600)
                .verify(&issued.token)
                .is_err()
        );
        let other_issuer = JwtKeys::new(SECRET, None, "someone-else", 3600)
            .issue(&user, 0)
            .unwrap();
        let err = keys.verify(&other_issuer.token).unwrap_err();
        assert!(
            err.to_string().contains("not issued by this service"),
            "{err}"
        );
    }

    #[test]
    fn a_rotated_key_still_verifies_its_tokens_but_never_signs() {
        // GIVEN a token signed with the old key
        const NEW: &[u8] = b"the-new-key-the-new-key-the-new-k";
        let user = UserId::new();
        let old_token = JwtKeys::new(SECRET, None, "callplane", 3600)
            .issue(&user, 0)
            .unwrap()
            .token;
        // WHEN the key is rotated with the old one kept as previous
        let rotated = JwtKeys::new(NEW, Some(SECRET), "callplane", 3600);
        // THEN the old token is still accepted, and new tokens are signed with the new key
        assert_eq!(rotated.verify(&old_token).unwrap().user_id, user);
        let new_token = rotated.issue(&user, 0).unwrap().token;
        assert!(
            JwtKeys::new(SECRET, None, "callplane", 3600)
                .verify(&new_token)
                .is_err()
        );
        assert!(
            JwtKeys::new(NEW, None, "callplane", 3600)
                .verify(&new_token)
                .is_ok()
        );
        // AND once the previous key is dropped the old token is refused
        assert!(
            JwtKeys::new(NEW, None, "callplane", 3600)
                .verify(&old_token)
                .is_err()
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        // GIVEN a token whose exp is an hour ago
        let keys = JwtKeys::new(SECRET, None, "callplane", 3600);
        let claims = Claims {
            sub: UserId::new().to_string(),
            iss: "callplane".into(),
            iat: 1,
            exp: Timestamp::now().unix() - 3600,
            jti: "j".into(),
            generation: 0,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        // THEN verification says it expired
        let err = keys.verify(&token).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }
}
