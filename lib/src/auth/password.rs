use crate::error::{Error, Result};
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use serde::Deserialize;
use std::sync::OnceLock;

/// A password as a user typed it: 10 to 128 characters. Never printed, never stored.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Password(String);

impl utoipa::PartialSchema for Password {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .min_length(Some(Self::MIN))
            .max_length(Some(Self::MAX))
            .into()
    }
}
impl utoipa::ToSchema for Password {}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Shortest accepted password.
    pub const MIN: usize = 10;
    /// Longest accepted password (bounds hashing work).
    pub const MAX: usize = 128;

    /// Checks the length policy.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(format!(
                "password must be {} to {} characters",
                Self::MIN,
                Self::MAX
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A password supplied for verification only (login): any length up to the maximum, so
    /// that a policy change never locks anyone out.
    pub fn for_login(raw: &str) -> Self {
        Self(raw.chars().take(Self::MAX).collect())
    }
}

impl TryFrom<String> for Password {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

/// argon2id with the crate's defaults (OWASP: m = 19 MiB, t = 2, p = 1), as a PHC string.
/// CPU-bound: runs on the blocking pool.
pub async fn hash(password: &Password) -> Result<String> {
    let password = password.0.clone();
    tokio::task::spawn_blocking(move || {
        let salt = new_salt()?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(e.to_string()))
    })
    .await
    .map_err(Error::internal)?
}

/// Whether `password` matches `phc`. With `phc == None` it verifies against a fixed dummy
/// hash and returns false, so an unknown email costs the same time as a wrong password.
pub async fn verify(password: &Password, phc: Option<&str>) -> bool {
    let password = password.0.clone();
    let phc = phc.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| dummy_hash().to_owned());
        let ok = PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        ok && known
    })
    .await
    .unwrap_or(false)
}

fn new_salt() -> Result<SaltString> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(e.to_string()))?;
    SaltString::encode_b64(&bytes).map_err(|e| Error::internal(e.to_string()))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"callplane-dummy!").expect("16 bytes is a valid salt");
        Argon2::default()
            .hash_password(b"callplane-timing-equaliser", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        // GIVEN a hashed password
        let pw = Password::parse("correct horse battery").unwrap();
        let phc = hash(&pw).await.unwrap();
        // THEN it is an argon2id PHC string that verifies only the right password
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify(&pw, Some(&phc)).await);
        assert!(!verify(&Password::for_login("wrong password!"), Some(&phc)).await);
        assert!(!verify(&pw, None).await);
        assert!(Password::parse("short").is_err());
        assert!(!format!("{pw:?}").contains("horse"));
    }
}
