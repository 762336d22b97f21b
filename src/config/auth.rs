//! `[registry.auth]` of `site.toml`: sessions and sign-in limits (accounts and keys live in
//! the registry's database, managed with `sitcenter user …` and the admin API).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::Collector;

/// Validated sign-in settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSettings {
    /// A session unused this long is closed.
    pub session_idle: Duration,
    /// A session is closed this long after sign-in, however busy.
    pub session_absolute: Duration,
    /// Sign-in attempts per minute for one account, and from one address.
    pub attempts_per_account: u32,
    pub attempts_per_address: u32,
    /// `Secure` on the session cookie: `None` = unless the node listens on loopback only.
    pub secure_cookies: Option<bool>,
    /// An identity header set by a reverse proxy that signs people in (e.g. oauth2-proxy or
    /// Keycloak's gatekeeper in front of the node); `None` = not accepted from anyone.
    pub proxy: Option<ProxyIdentity>,
}

/// `proxy_header` and `proxy_addresses`: the header names a user of ours (their roles are
/// ours), and is believed only on connections from these addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyIdentity {
    /// Lower-case header name.
    pub header: String,
    pub addresses: Vec<std::net::IpAddr>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            attempts_per_account: 5,
            attempts_per_address: 30,
            secure_cookies: None,
            proxy: None,
        }
    }
}

/// `[registry.auth]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    #[serde(default)]
    pub session_idle_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    pub session_absolute_hours: Option<Spanned<u32>>,
    #[serde(default)]
    pub attempts_per_account_per_minute: Option<Spanned<u32>>,
    #[serde(default)]
    pub attempts_per_address_per_minute: Option<Spanned<u32>>,
    #[serde(default)]
    pub secure_cookies: Option<bool>,
    #[serde(default)]
    pub proxy_header: Option<Spanned<String>>,
    #[serde(default)]
    pub proxy_addresses: Option<Spanned<Vec<String>>>,
}

fn bounded(
    v: &Option<Spanned<u32>>,
    range: std::ops::RangeInclusive<u32>,
    default: u32,
    field: &str,
    c: &mut Collector<'_>,
) -> u32 {
    match v {
        Some(v) if range.contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            c.push(
                Some(v.span()),
                None,
                Some(field),
                format!(
                    "must be in {}..={}, got {}",
                    range.start(),
                    range.end(),
                    v.get_ref()
                ),
            );
            default
        }
        None => default,
    }
}

pub(super) fn auth_settings(raw: &RawAuth, c: &mut Collector<'_>) -> AuthSettings {
    let d = AuthSettings::default();
    let idle = bounded(
        &raw.session_idle_minutes,
        1..=24 * 60,
        30,
        "registry.auth.session_idle_minutes",
        c,
    );
    let absolute = bounded(
        &raw.session_absolute_hours,
        1..=7 * 24,
        12,
        "registry.auth.session_absolute_hours",
        c,
    );
    AuthSettings {
        session_idle: Duration::from_secs(u64::from(idle) * 60),
        session_absolute: Duration::from_secs(u64::from(absolute) * 3600),
        attempts_per_account: bounded(
            &raw.attempts_per_account_per_minute,
            1..=1000,
            d.attempts_per_account,
            "registry.auth.attempts_per_account_per_minute",
            c,
        ),
        attempts_per_address: bounded(
            &raw.attempts_per_address_per_minute,
            1..=10_000,
            d.attempts_per_address,
            "registry.auth.attempts_per_address_per_minute",
            c,
        ),
        secure_cookies: raw.secure_cookies,
        proxy: proxy_identity(raw, c),
    }
}

fn proxy_identity(raw: &RawAuth, c: &mut Collector<'_>) -> Option<ProxyIdentity> {
    let header = match (&raw.proxy_header, &raw.proxy_addresses) {
        (None, None) => return None,
        (Some(header), Some(_)) => header,
        (Some(header), None) => {
            c.push(
                Some(header.span()),
                None,
                Some("registry.auth.proxy_header"),
                "needs proxy_addresses: the addresses of the proxies allowed to set it",
            );
            return None;
        }
        (None, Some(addresses)) => {
            c.push(
                Some(addresses.span()),
                None,
                Some("registry.auth.proxy_addresses"),
                "needs proxy_header: the header that names the user",
            );
            return None;
        }
    };
    let name = header.get_ref().trim().to_ascii_lowercase();
    let forbidden = [
        "cookie",
        "authorization",
        "host",
        "origin",
        "content-length",
    ];
    if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err()
        || forbidden.contains(&name.as_str())
    {
        c.push(
            Some(header.span()),
            None,
            Some("registry.auth.proxy_header"),
            format!(
                "`{name}` is not a header name a proxy may set for identity (e.g. x-remote-user)"
            ),
        );
        return None;
    }
    let mut addresses = Vec::new();
    let listed = raw.proxy_addresses.as_ref()?;
    for text in listed.get_ref() {
        match text.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => addresses.push(ip),
            Err(_) => c.push(
                Some(listed.span()),
                None,
                Some("registry.auth.proxy_addresses"),
                format!("`{text}` is not an IP address"),
            ),
        }
    }
    if addresses.is_empty() {
        c.push(
            Some(listed.span()),
            None,
            Some("registry.auth.proxy_addresses"),
            "lists no address",
        );
        return None;
    }
    Some(ProxyIdentity {
        header: name,
        addresses,
    })
}
