//! Sign-in and identity: people with passwords (Argon2id) and roles, sessions behind a
//! random 256-bit cookie token stored only as its SHA-256 with idle and absolute expiry,
//! API keys with scopes for machine clients, a sign-in rate limit per account and per
//! address, and an append-only audit of every change. Tables: `V3__auth.sql`.
//!
//! One way in: [`Auth`] (built on the registry's database). Produces [`Identity`]s for the
//! API, which checks them against its policy table (`api/policy.rs`). Secrets (passwords,
//! tokens, keys) never reach logs, errors or `Debug`.

mod limiter;
mod password;
mod roles;
mod store;

use std::net::IpAddr;
use std::sync::Arc;

use deadpool_postgres::Pool;
use sha2::{Digest, Sha256};

pub use password::{MIN_PASSWORD_LEN, check_strength};
pub use roles::{Role, Scope};
pub use store::{KeyInfo, UserInfo};

use crate::config::AuthSettings;
use limiter::SignInLimiter;

/// The cookie that carries a session token.
pub const SESSION_COOKIE: &str = "sitcenter_session";
/// The header a cookie session's state-changing requests must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the sign-in store is unavailable: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("the sign-in store is unavailable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// Wrong user, wrong password or a disabled account: one answer for all three.
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("too many sign-in attempts; try again in {retry_after_s} s")]
    Throttled { retry_after_s: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("no user `{0}`")]
    UnknownUser(String),
    #[error("user `{0}` exists already")]
    UserExists(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed")]
    Join,
}

/// Who is making a request, as the server established it.
#[derive(Clone, Debug, PartialEq)]
pub enum Identity {
    User {
        id: i64,
        name: String,
        roles: Vec<Role>,
        language: String,
        /// The session's CSRF token, which its state-changing requests must echo.
        csrf: String,
    },
    Key {
        id: String,
        name: String,
        scopes: Vec<Scope>,
    },
}

impl Identity {
    /// The actor recorded in the registry: `user:<name>` or `key:<name>`.
    pub fn actor(&self) -> String {
        match self {
            Identity::User { name, .. } => format!("user:{name}"),
            Identity::Key { name, .. } => format!("key:{name}"),
        }
    }

    pub fn has_role(&self, role: Role) -> bool {
        matches!(self, Identity::User { roles, .. } if roles.contains(&role))
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        matches!(self, Identity::Key { scopes, .. } if scopes.contains(&scope))
    }
}

/// A session just opened: the token goes into the cookie, the CSRF token to the page.
pub struct NewSession {
    pub token: String,
    pub csrf: String,
    pub identity: Identity,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("token", &"redacted")
            .field("identity", &self.identity.actor())
            .finish()
    }
}

/// The sign-in service. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    pool: Pool,
    settings: Arc<AuthSettings>,
    limiter: Arc<SignInLimiter>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("settings", &self.settings)
            .finish()
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::rng(), buf.as_mut_slice());
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes off the async runtime (Argon2id takes tens of milliseconds by design).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AuthError::Join)
}

impl Auth {
    /// Sign-in over the registry's database (its pool runs as the service role, which may
    /// read and change users, sessions and keys and append to the audit).
    pub fn new(pool: Pool, settings: AuthSettings) -> Self {
        Self {
            pool,
            limiter: Arc::new(SignInLimiter::new(
                settings.attempts_per_account,
                settings.attempts_per_address,
            )),
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Signs `name` in with `password` from `address`. Wrong user, wrong password and a
    /// disabled account get the same error after the same work.
    pub async fn sign_in(
        &self,
        name: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        self.limiter.check(name, address)?;
        let user = store::user_by_name(&self.pool, name).await?;
        let (phc, usable) = match &user {
            Some(u) => (u.password_hash.clone(), !u.disabled),
            None => (password::decoy().to_owned(), false),
        };
        let typed = password.to_owned();
        let matches = blocking(move || password::verify(&typed, &phc)).await?;
        let Some(user) = user.filter(|_| matches && usable) else {
            store::audit(
                &self.pool,
                &format!("user:{name}"),
                "sign_in_refused",
                "",
                &address.to_string(),
            )
            .await?;
            return Err(AuthError::BadCredentials);
        };
        let token = random_hex(32);
        let csrf = random_hex(32);
        store::open_session(
            &self.pool,
            &sha256(token.as_bytes()),
            user.id,
            &csrf,
            &address.to_string(),
            self.settings.session_absolute,
        )
        .await?;
        store::audit(
            &self.pool,
            &format!("user:{}", user.name),
            "sign_in",
            "",
            &address.to_string(),
        )
        .await?;
        Ok(NewSession {
            token,
            identity: Identity::User {
                id: user.id,
                name: user.name,
                roles: user.roles,
                language: user.language,
                csrf: csrf.clone(),
            },
            csrf,
        })
    }

    /// The identity behind a session token, if the session is open, not idle past its limit
    /// and its user not disabled; refreshes its last use.
    pub async fn session(&self, token: &str) -> Result<Option<Identity>, AuthError> {
        if token.len() != 64 {
            return Ok(None);
        }
        store::session(
            &self.pool,
            &sha256(token.as_bytes()),
            self.settings.session_idle,
        )
        .await
    }

    /// The identity of an enabled user named by a trusted proxy's header (no session of ours:
    /// the proxy signs people in; their roles are ours). `csrf` is empty: such writes are
    /// guarded by the same-origin check instead.
    pub async fn proxy_user(&self, name: &str) -> Result<Option<Identity>, AuthError> {
        Ok(store::user_by_name(&self.pool, name)
            .await?
            .filter(|u| !u.disabled)
            .map(|u| Identity::User {
                id: u.id,
                name: u.name,
                roles: u.roles,
                language: u.language,
                csrf: String::new(),
            }))
    }

    pub async fn sign_out(&self, token: &str, actor: &str) -> Result<(), AuthError> {
        store::revoke_session(&self.pool, &sha256(token.as_bytes())).await?;
        store::audit(&self.pool, actor, "sign_out", "", "").await
    }

    /// The identity behind an API key `sk_<id>_<secret>` (compared in constant time).
    pub async fn key(&self, raw: &str) -> Result<Option<Identity>, AuthError> {
        let Some((id, secret)) = raw
            .strip_prefix("sk_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        if id.is_empty() || id.len() > 32 || secret.len() != 64 {
            return Ok(None);
        }
        store::key(&self.pool, id, &sha256(secret.as_bytes())).await
    }

    pub async fn add_user(
        &self,
        actor: &str,
        name: &str,
        display_name: &str,
        roles: &[Role],
        password: &str,
    ) -> Result<(), AuthError> {
        check_name(name)?;
        check_strength(password).map_err(AuthError::Invalid)?;
        if roles.is_empty() {
            return Err(AuthError::Invalid("a user needs at least one role".into()));
        }
        let typed = password.to_owned();
        let phc = blocking(move || password::hash(&typed)).await??;
        store::add_user(&self.pool, name, display_name, roles, &phc).await?;
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        store::audit(&self.pool, actor, "user_added", name, &roles.join(",")).await
    }

    pub async fn set_password(
        &self,
        actor: &str,
        name: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        check_strength(password).map_err(AuthError::Invalid)?;
        let typed = password.to_owned();
        let phc = blocking(move || password::hash(&typed)).await??;
        store::set_password(&self.pool, name, &phc).await?;
        store::audit(&self.pool, actor, "password_changed", name, "").await
    }

    pub async fn set_roles(
        &self,
        actor: &str,
        name: &str,
        roles: &[Role],
    ) -> Result<(), AuthError> {
        if roles.is_empty() {
            return Err(AuthError::Invalid("a user needs at least one role".into()));
        }
        store::set_roles(&self.pool, name, roles).await?;
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        store::audit(&self.pool, actor, "roles_changed", name, &roles.join(",")).await
    }

    /// Disables `name` and revokes every session of theirs at once.
    pub async fn disable(&self, actor: &str, name: &str) -> Result<(), AuthError> {
        store::disable(&self.pool, name).await?;
        store::audit(&self.pool, actor, "user_disabled", name, "").await
    }

    pub async fn set_language(&self, name: &str, language: &str) -> Result<(), AuthError> {
        if !["ru", "kk", "en"].contains(&language) {
            return Err(AuthError::Invalid(format!(
                "language `{language}` is not one of ru, kk, en"
            )));
        }
        store::set_language(&self.pool, name, language).await
    }

    pub async fn users(&self) -> Result<Vec<UserInfo>, AuthError> {
        store::users(&self.pool).await
    }

    /// A new API key: the full key is returned once and stored only hashed.
    pub async fn add_key(
        &self,
        actor: &str,
        name: &str,
        scopes: &[Scope],
    ) -> Result<String, AuthError> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(AuthError::Invalid(
                "a key needs a name of 1-200 bytes".into(),
            ));
        }
        if scopes.is_empty() {
            return Err(AuthError::Invalid("a key needs at least one scope".into()));
        }
        let id = random_hex(8);
        let secret = random_hex(32);
        store::add_key(&self.pool, &id, name, scopes, &sha256(secret.as_bytes())).await?;
        let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        store::audit(&self.pool, actor, "key_added", name, &scopes.join(",")).await?;
        Ok(format!("sk_{id}_{secret}"))
    }

    pub async fn revoke_key(&self, actor: &str, id: &str) -> Result<(), AuthError> {
        store::revoke_key(&self.pool, id).await?;
        store::audit(&self.pool, actor, "key_revoked", id, "").await
    }

    pub async fn keys(&self) -> Result<Vec<KeyInfo>, AuthError> {
        store::keys(&self.pool).await
    }
}

fn check_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(
            "a user name is 1-64 lowercase letters, digits, `.`, `_` or `-`, starting with a letter or digit".into(),
        ))
    }
}

#[cfg(test)]
mod tests;
