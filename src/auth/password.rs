//! Password hashes: Argon2id (RFC 9106) with the OWASP-recommended parameters, m = 19 MiB,
//! t = 2, p = 1 (`argon2::Params::DEFAULT`), in PHC string form so that parameters can be
//! raised later without invalidating stored hashes. About 25 ms per hash on the reference
//! machine: always called off the async runtime.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted (NIST SP 800-63B: at least 8; we ask for 12).
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted (bounds the hashing work an anonymous request can cause).
pub const MAX_PASSWORD_LEN: usize = 256;

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Checks the password's length; says what is wrong without echoing it.
pub fn check_strength(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "the password must have at most {MAX_PASSWORD_LEN} bytes"
        ));
    }
    Ok(())
}

/// The PHC string of `password` under a fresh random salt.
pub fn hash(password: &str) -> Result<String, super::AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| super::AuthError::Hash(e.to_string()))
}

/// Whether `password` matches `phc`; a malformed stored hash matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    PasswordHash::new(phc)
        .map(|parsed| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash no password matches, verified against when the user does not exist, so that a
/// wrong user name costs the same time as a wrong password.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash(&format!("{:032x}", rand::random::<u128>())).unwrap_or_else(|_| "$argon2id$".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_is_argon2id() {
        let h = hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(hash("correct horse battery").expect("hash"), h, "salted");
        assert!(!verify("anything at all", decoy()));
    }

    #[test]
    fn weak_and_huge_passwords_are_refused_without_echoing_them() {
        let short = check_strength("short").expect_err("too short");
        assert!(!short.contains("short"));
        assert!(check_strength(&"x".repeat(300)).is_err());
        assert!(check_strength("twelve chars").is_ok());
    }
}
