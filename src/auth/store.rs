//! The SQL of sign-in: users, sessions, keys, audit (tables in `V3__auth.sql`).

use std::time::Duration;

use deadpool_postgres::Pool;
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::{AuthError, Identity, Role, Scope};

pub(super) struct StoredUser {
    pub id: i64,
    pub name: String,
    pub roles: Vec<Role>,
    pub language: String,
    pub password_hash: String,
    pub disabled: bool,
}

/// A user as admins see them (never the hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub disabled: bool,
    pub language: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// An API key as admins see it (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked: bool,
}

fn roles(raw: Vec<String>) -> Vec<Role> {
    raw.iter().filter_map(|r| Role::parse(r).ok()).collect()
}

fn scopes(raw: Vec<String>) -> Vec<Scope> {
    raw.iter().filter_map(|s| Scope::parse(s).ok()).collect()
}

fn role_names(roles: &[Role]) -> Vec<&'static str> {
    roles.iter().map(|r| r.as_str()).collect()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub(super) async fn user_by_name(pool: &Pool, name: &str) -> Result<Option<StoredUser>, AuthError> {
    if name.is_empty() || name.len() > 64 || name.contains('\0') {
        return Ok(None);
    }
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT id, name, roles, language, password_hash, disabled FROM auth_users WHERE name = $1",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| StoredUser {
        id: r.get(0),
        name: r.get(1),
        roles: roles(r.get(2)),
        language: r.get(3),
        password_hash: r.get(4),
        disabled: r.get(5),
    }))
}

pub(super) async fn open_session(
    pool: &Pool,
    token_hash: &[u8; 32],
    user_id: i64,
    csrf: &str,
    address: &str,
    absolute: Duration,
) -> Result<(), AuthError> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO auth_sessions (token_hash, user_id, csrf_token, address, expires_at) \
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
            &[
                &token_hash.as_slice(),
                &user_id,
                &csrf,
                &address,
                &secs(absolute),
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn session(
    pool: &Pool,
    token_hash: &[u8; 32],
    idle: Duration,
) -> Result<Option<Identity>, AuthError> {
    let client = pool.get().await?;
    // One statement: only an open, unexpired, recently used session of an enabled user
    // is found, and its last use moves forward.
    let row = client
        .query_opt(
            "UPDATE auth_sessions s SET last_seen_at = now() FROM auth_users u \
             WHERE s.token_hash = $1 AND s.user_id = u.id AND NOT u.disabled \
               AND s.revoked_at IS NULL AND s.expires_at > now() \
               AND s.last_seen_at > now() - make_interval(secs => $2) \
             RETURNING u.id, u.name, u.roles, u.language, s.csrf_token",
            &[&token_hash.as_slice(), &secs(idle)],
        )
        .await?;
    Ok(row.map(|r| Identity::User {
        id: r.get(0),
        name: r.get(1),
        roles: roles(r.get(2)),
        language: r.get(3),
        csrf: r.get(4),
    }))
}

pub(super) async fn revoke_session(pool: &Pool, token_hash: &[u8; 32]) -> Result<(), AuthError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE auth_sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
            &[&token_hash.as_slice()],
        )
        .await?;
    Ok(())
}

pub(super) async fn key(
    pool: &Pool,
    id: &str,
    secret_hash: &[u8; 32],
) -> Result<Option<Identity>, AuthError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT name, scopes, secret_hash FROM auth_api_keys WHERE id = $1 AND revoked_at IS NULL",
            &[&id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let stored: Vec<u8> = row.get(2);
    if !bool::from(stored.as_slice().ct_eq(secret_hash.as_slice())) {
        return Ok(None);
    }
    client
        .execute(
            "UPDATE auth_api_keys SET last_used_at = now() WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(Some(Identity::Key {
        id: id.to_owned(),
        name: row.get(0),
        scopes: scopes(row.get(1)),
    }))
}

pub(super) async fn add_user(
    pool: &Pool,
    name: &str,
    display_name: &str,
    roles: &[Role],
    phc: &str,
) -> Result<(), AuthError> {
    let client = pool.get().await?;
    let added = client
        .execute(
            "INSERT INTO auth_users (name, display_name, roles, password_hash) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
            &[&name, &display_name, &role_names(roles), &phc],
        )
        .await?;
    if added == 0 {
        return Err(AuthError::UserExists(name.to_owned()));
    }
    Ok(())
}

async fn update_user(
    pool: &Pool,
    sql: &str,
    name: &str,
    value: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<(), AuthError> {
    let client = pool.get().await?;
    if client.execute(sql, &[&name, value]).await? == 0 {
        return Err(AuthError::UnknownUser(name.to_owned()));
    }
    Ok(())
}

pub(super) async fn set_password(pool: &Pool, name: &str, phc: &str) -> Result<(), AuthError> {
    update_user(
        pool,
        "UPDATE auth_users SET password_hash = $2, updated_at = now() WHERE name = $1",
        name,
        &phc,
    )
    .await?;
    // A changed password ends the user's other sessions.
    revoke_sessions_of(pool, name).await
}

pub(super) async fn set_roles(pool: &Pool, name: &str, roles: &[Role]) -> Result<(), AuthError> {
    update_user(
        pool,
        "UPDATE auth_users SET roles = $2, updated_at = now() WHERE name = $1",
        name,
        &role_names(roles),
    )
    .await
}

pub(super) async fn set_language(pool: &Pool, name: &str, language: &str) -> Result<(), AuthError> {
    update_user(
        pool,
        "UPDATE auth_users SET language = $2, updated_at = now() WHERE name = $1",
        name,
        &language,
    )
    .await
}

pub(super) async fn disable(pool: &Pool, name: &str) -> Result<(), AuthError> {
    update_user(
        pool,
        "UPDATE auth_users SET disabled = $2, updated_at = now() WHERE name = $1",
        name,
        &true,
    )
    .await?;
    revoke_sessions_of(pool, name).await
}

/// Ends every open session of `name`.
async fn revoke_sessions_of(pool: &Pool, name: &str) -> Result<(), AuthError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE auth_sessions SET revoked_at = now() FROM auth_users u \
             WHERE auth_sessions.user_id = u.id AND u.name = $1 AND auth_sessions.revoked_at IS NULL",
            &[&name],
        )
        .await?;
    Ok(())
}

pub(super) async fn users(pool: &Pool) -> Result<Vec<UserInfo>, AuthError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT name, display_name, roles, disabled, language, created_at FROM auth_users ORDER BY name",
            &[],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| UserInfo {
            name: r.get(0),
            display_name: r.get(1),
            roles: roles(r.get(2)),
            disabled: r.get(3),
            language: r.get(4),
            created_at: r.get(5),
        })
        .collect())
}

pub(super) async fn add_key(
    pool: &Pool,
    id: &str,
    name: &str,
    scopes: &[Scope],
    secret_hash: &[u8; 32],
) -> Result<(), AuthError> {
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO auth_api_keys (id, name, scopes, secret_hash) VALUES ($1, $2, $3, $4)",
            &[&id, &name, &names, &secret_hash.as_slice()],
        )
        .await?;
    Ok(())
}

pub(super) async fn revoke_key(pool: &Pool, id: &str) -> Result<(), AuthError> {
    let client = pool.get().await?;
    if client
        .execute(
            "UPDATE auth_api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            &[&id],
        )
        .await?
        == 0
    {
        return Err(AuthError::Invalid(format!("no active key `{id}`")));
    }
    Ok(())
}

pub(super) async fn keys(pool: &Pool) -> Result<Vec<KeyInfo>, AuthError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, name, scopes, created_at, last_used_at, revoked_at IS NOT NULL FROM auth_api_keys ORDER BY created_at",
            &[],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| KeyInfo {
            id: r.get(0),
            name: r.get(1),
            scopes: scopes(r.get(2)),
            created_at: r.get(3),
            last_used_at: r.get(4),
            revoked: r.get(5),
        })
        .collect())
}

pub(super) async fn audit(
    pool: &Pool,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), AuthError> {
    let client = pool.get().await?;
    let actor: String = actor.chars().filter(|c| *c != '\0').take(100).collect();
    client
        .execute(
            "INSERT INTO auth_audit (actor, action, target, detail) VALUES ($1, $2, $3, jsonb_build_object('detail', $4::text))",
            &[&actor, &action, &target, &detail],
        )
        .await?;
    Ok(())
}
