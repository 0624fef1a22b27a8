//! Agents' credentials and sessions: argon2 password hashes (computed by the bounded
//! [`PasswordHasher`]), server-side session tokens (cookie or Bearer), the `Origin` rule for
//! cookie-carried mutations, who is signed in ([`CurrentAgent`], [`CurrentAdmin`]), and login
//! throttling ([`LoginThrottle`]).

mod hasher;
mod setup_token;
mod throttle;

pub use hasher::{HashError, PasswordHasher};
pub use setup_token::SetupToken;
pub use throttle::{Attempt, Blocked, LoginThrottle, Refused, address_key, client_address};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::AppError;
use crate::model::{Agent, Role};

pub const SESSION_COOKIE: &str = "smsdesk_session";
pub const SESSION_DAYS: i64 = 30;

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    verify_password_in(&mut Vec::new(), password, hash)
}

/// [`verify_password`] in the caller's working memory, grown to what the hash's parameters
/// need and kept for the next call: allocating ~19 MiB per call leaves much of it resident
/// in the allocator's per-thread arenas.
pub fn verify_password_in(memory: &mut Vec<Block>, password: &str, hash: &str) -> bool {
    let mut check = || -> Option<bool> {
        let hash = PasswordHash::new(hash).ok()?;
        let (salt, expected) = (hash.salt?, hash.hash?);
        let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).ok()?;
        let mut salt_bytes = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_bytes).ok()?;
        if memory.len() < params.block_count() {
            memory.resize(params.block_count(), Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..])
            .ok()?;
        Some(bool::from(out.ct_eq(expected.as_bytes())))
    };
    check().unwrap_or(false)
}

/// A hash to verify against when the email is unknown, so both cases take as long.
/// Computed on first use, which blocks: call it where hashing runs.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

/// A new session token (given to the client) and its hash (kept in the database).
pub fn new_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

/// The session token a request carries, and whether it came in the cookie.
pub fn request_token(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((bearer.trim().to_owned(), false));
    }
    cookie_token(headers).map(|t| (t, true))
}

pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SESSION_DAYS * 24 * 3600,
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether `headers` carry an `Origin` we serve.
pub fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| state.config.allowed_origins.iter().any(|a| a == o))
}

/// The signed-in agent of a request. Cookie-carried requests that change state must come
/// from one of our own origins.
pub struct CurrentAgent(pub Agent);

impl FromRequestParts<AppState> for CurrentAgent {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let (token, from_cookie) = request_token(&parts.headers).ok_or(AppError::Unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if from_cookie && !safe && !origin_allowed(state, &parts.headers) {
            return Err(AppError::Forbidden(
                "cookie-authenticated requests must come from this site (Origin header)".into(),
            ));
        }
        state
            .services
            .store
            .session_agent(&token_hash(&token))
            .await?
            .map(CurrentAgent)
            .ok_or(AppError::Unauthorized)
    }
}

/// The signed-in agent of a request, who must be an admin (`403` otherwise).
pub struct CurrentAdmin(pub Agent);

impl FromRequestParts<AppState> for CurrentAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let CurrentAgent(agent) = CurrentAgent::from_request_parts(parts, state).await?;
        if agent.role != Role::Admin {
            return Err(AppError::Forbidden(
                "only an admin may manage agents".into(),
            ));
        }
        Ok(Self(agent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password(
            "x",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ"
        ));
    }

    #[test]
    fn checking_in_reused_memory_agrees_with_argon2() {
        use argon2::password_hash::PasswordVerifier;
        // Other parameters and algorithms than ours, as another tool may have stored them.
        let small = Params::new(64, 1, 1, None).unwrap();
        let hashes = [
            hash_password("correct horse").unwrap(),
            Argon2::new(Algorithm::Argon2i, Version::V0x10, small.clone())
                .hash_password(
                    b"correct horse",
                    &SaltString::from_b64("c2FsdHNhbHQ").unwrap(),
                )
                .unwrap()
                .to_string(),
            Argon2::from(Params::new(128, 2, 2, Some(16)).unwrap())
                .hash_password(
                    b"correct horse",
                    &SaltString::from_b64("c2FsdHNhbHQ").unwrap(),
                )
                .unwrap()
                .to_string(),
        ];
        let mut memory = Vec::new();
        for hash in &hashes {
            let parsed = PasswordHash::new(hash).unwrap();
            for password in ["correct horse", "correct horsf", ""] {
                let expected = Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok();
                assert_eq!(
                    verify_password_in(&mut memory, password, hash),
                    expected,
                    "{password:?} against {hash}"
                );
            }
        }
        assert_eq!(
            memory.len(),
            Params::DEFAULT.block_count(),
            "grown once, kept"
        );
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; smsdesk_session=tok; b=2".parse().unwrap(),
        );
        assert_eq!(request_token(&h), Some(("tok".into(), true)));
        h.insert(header::AUTHORIZATION, "Bearer xyz".parse().unwrap());
        assert_eq!(request_token(&h), Some(("xyz".into(), false)));
    }
}
