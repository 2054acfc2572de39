//! Credentials: argon2id password hashes, HS256 access tokens (`iss`, `exp`, `iat`, `jti`) and
//! single-use secret tokens for invitations and password resets (stored only as SHA-256).

mod jwt;
pub mod password;
pub mod secret_token;

pub use jwt::{IssuedToken, JwtKeys, Principal};
pub use password::Password;
