//! Sign-in against the real PostgreSQL (a database per test).

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::registry::test_db::TestDb;
use crate::registry::{Registry, SystemClock};

async fn auth(db: &TestDb, settings: AuthSettings) -> Auth {
    let registry = Registry::connect(&db.url, Arc::new(SystemClock))
        .await
        .expect("registry");
    Auth::new(registry.pool().clone(), settings)
}

const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn a_user_signs_in_and_the_session_names_them_until_revoked() {
    let db = TestDb::create().await;
    let auth = auth(&db, AuthSettings::default()).await;
    auth.add_user(
        "cli",
        "aigerim",
        "Aigerim",
        &[Role::Inspector],
        "correct horse battery",
    )
    .await
    .expect("user added");
    let session = auth
        .sign_in("aigerim", "correct horse battery", HOME)
        .await
        .expect("signed in");
    assert_eq!(session.token.len(), 64);
    let identity = auth
        .session(&session.token)
        .await
        .expect("lookup")
        .expect("open");
    assert_eq!(identity.actor(), "user:aigerim");
    assert!(identity.has_role(Role::Inspector) && !identity.has_role(Role::Admin));
    // Only the hash is stored.
    let stored: Vec<u8> = db
        .superuser()
        .await
        .query_one("SELECT token_hash FROM auth_sessions", &[])
        .await
        .expect("row")
        .get(0);
    assert_eq!(stored, sha256(session.token.as_bytes()).to_vec());
    auth.sign_out(&session.token, &identity.actor())
        .await
        .expect("out");
    assert_eq!(auth.session(&session.token).await.expect("lookup"), None);
}

#[tokio::test]
async fn wrong_user_wrong_password_and_disabled_get_one_answer() {
    let db = TestDb::create().await;
    let auth = auth(&db, AuthSettings::default()).await;
    auth.add_user(
        "cli",
        "ivan",
        "",
        &[Role::Dispatcher],
        "correct horse battery",
    )
    .await
    .expect("user");
    let wrong_password = auth.sign_in("ivan", "wrong horse battery", HOME).await;
    let wrong_user = auth.sign_in("nobody", "correct horse battery", HOME).await;
    auth.disable("cli", "ivan").await.expect("disabled");
    let disabled = auth.sign_in("ivan", "correct horse battery", HOME).await;
    for outcome in [wrong_password, wrong_user, disabled] {
        let error = outcome.expect_err("refused");
        assert!(matches!(error, AuthError::BadCredentials), "{error}");
        assert_eq!(error.to_string(), "wrong user name or password");
    }
}

#[tokio::test]
async fn disabling_or_a_new_password_ends_open_sessions_and_idle_ones_expire() {
    let db = TestDb::create().await;
    let auth = auth(&db, AuthSettings::default()).await;
    auth.add_user(
        "cli",
        "dana",
        "",
        &[Role::Supervisor],
        "correct horse battery",
    )
    .await
    .expect("user");
    let first = auth
        .sign_in("dana", "correct horse battery", HOME)
        .await
        .expect("in");
    auth.set_password("cli", "dana", "another horse battery")
        .await
        .expect("passwd");
    assert_eq!(auth.session(&first.token).await.expect("lookup"), None);
    let second = auth
        .sign_in("dana", "another horse battery", HOME)
        .await
        .expect("in");
    // Idle past the limit: the session is refused.
    db.superuser()
        .await
        .execute(
            "UPDATE auth_sessions SET last_seen_at = now() - interval '31 minutes'",
            &[],
        )
        .await
        .expect("age");
    assert_eq!(auth.session(&second.token).await.expect("lookup"), None);
    let third = auth
        .sign_in("dana", "another horse battery", HOME)
        .await
        .expect("in");
    auth.disable("cli", "dana").await.expect("disable");
    assert_eq!(auth.session(&third.token).await.expect("lookup"), None);
    let audit: i64 = db
        .superuser()
        .await
        .query_one("SELECT count(*) FROM auth_audit", &[])
        .await
        .expect("count")
        .get(0);
    assert!(audit >= 6, "{audit} audit rows");
}

#[tokio::test]
async fn an_api_key_works_once_issued_and_not_after_revocation_or_tampering() {
    let db = TestDb::create().await;
    let auth = auth(&db, AuthSettings::default()).await;
    let key = auth
        .add_key("cli", "mayor-site", &[Scope::Open311Write])
        .await
        .expect("key");
    let identity = auth.key(&key).await.expect("lookup").expect("valid");
    assert!(identity.has_scope(Scope::Open311Write) && !identity.has_scope(Scope::EventsRead));
    assert_eq!(identity.actor(), "key:mayor-site");
    let mut tampered = key.clone();
    tampered.pop();
    tampered.push('0');
    if tampered != key {
        assert_eq!(auth.key(&tampered).await.expect("lookup"), None);
    }
    let id = key.split('_').nth(1).expect("id").to_owned();
    auth.revoke_key("cli", &id).await.expect("revoked");
    assert_eq!(auth.key(&key).await.expect("lookup"), None);
    assert_eq!(auth.key("sk_nonsense").await.expect("lookup"), None);
}

#[tokio::test]
async fn sign_in_is_throttled_per_account() {
    let db = TestDb::create().await;
    let settings = AuthSettings {
        attempts_per_account: 2,
        ..AuthSettings::default()
    };
    let auth = auth(&db, settings).await;
    for _ in 0..2 {
        let _refused = auth.sign_in("ghost", "correct horse battery", HOME).await;
    }
    assert!(matches!(
        auth.sign_in("ghost", "correct horse battery", HOME).await,
        Err(AuthError::Throttled { .. })
    ));
}

#[tokio::test]
async fn the_service_role_cannot_rewrite_the_audit() {
    let db = TestDb::create().await;
    let auth = auth(&db, AuthSettings::default()).await;
    auth.add_user("cli", "erlan", "", &[Role::Admin], "correct horse battery")
        .await
        .expect("user");
    let client = auth.pool.get().await.expect("service connection");
    for sql in [
        "UPDATE auth_audit SET actor = 'x'",
        "DELETE FROM auth_audit",
        "TRUNCATE auth_audit",
    ] {
        assert!(client.execute(sql, &[]).await.is_err(), "{sql} must fail");
    }
}
