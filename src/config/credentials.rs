//! Named credentials (`credentials = "<key>"` in cameras, `[sensors.mqtt]`, `[registry]`):
//! `SITCENTER_CREDENTIALS_<KEY>=user:password` in the environment wins, else
//! `[credentials.<key>]` of the secrets file. Never in site.toml or cameras.toml.

use super::Credentials;
use super::raw::RawSecretsFile;

/// Environment variable prefix that overrides a secrets-file credential:
/// `SITCENTER_CREDENTIALS_<KEY>` (key upper-cased, `-` and `.` as `_`) = `user:password`.
pub const CREDENTIALS_ENV_PREFIX: &str = "SITCENTER_CREDENTIALS_";

/// The credentials named `name`, or the message for the field that named them (which never
/// contains the secret).
pub(super) fn lookup(name: &str, secrets: &RawSecretsFile) -> Result<Credentials, String> {
    let env_name = format!(
        "{CREDENTIALS_ENV_PREFIX}{}",
        name.to_ascii_uppercase().replace(['-', '.'], "_")
    );
    if let Ok(value) = std::env::var(&env_name) {
        return match value.split_once(':') {
            Some((user, password)) => Ok(Credentials {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            None => Err(format!(
                "environment variable {env_name} must be `user:password`"
            )),
        };
    }
    match secrets.credentials.get(name) {
        Some(found) => Ok(Credentials {
            user: found.user.clone(),
            password: found.password.clone(),
        }),
        None => Err(format!(
            "no credentials `{name}` in the secrets file or in {env_name}"
        )),
    }
}
