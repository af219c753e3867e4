//! Private rooms' passwords: kept only as Argon2id hashes (in the PHC string format), and
//! checked against them.
//!
//! A hash costs tens of milliseconds of a core and 19 MiB of memory (OWASP's parameters for
//! Argon2id), so it never runs on a room's task or the async runtime's threads: it runs on the
//! blocking pool, at most [`AT_ONCE`] at a time, so that a crowd of joins with passwords costs
//! a bounded share of the machine. The argon2 crate compares the computed hash with the stored
//! one in constant time.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use tokio::sync::Semaphore;

/// Hashes computed at once, across the whole server.
const AT_ONCE: usize = 2;

static HASHING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(AT_ONCE));

/// Runs `f` on the blocking pool, as one of the [`AT_ONCE`] hashes allowed.
async fn hashing<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _permit = HASHING.acquire().await.ok()?;
    tokio::task::spawn_blocking(f).await.ok()
}

/// The PHC string of `password` under a fresh random salt; none if hashing failed.
pub async fn hash(password: String) -> Option<String> {
    hashing(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).ok()?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .ok()
            .map(|h| h.to_string())
    })
    .await
    .flatten()
}

/// Whether `password` is the one `phc` was made from.
pub async fn verify(password: String, phc: std::sync::Arc<str>) -> bool {
    hashing(move || {
        PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_is_kept_as_a_salted_argon2id_hash_that_only_it_matches() {
        let a = hash("open sesame".into()).await.unwrap();
        let b = hash("open sesame".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(!a.contains("open sesame"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("open sesame".into(), a.clone().into()).await);
        assert!(!verify("open sesame!".into(), a.into()).await);
        assert!(!verify("x".into(), "not a hash".into()).await);
    }
}
