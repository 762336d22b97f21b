//! `[registry.open311]` of `site.toml`: the Open311 GeoReport v2 endpoint's settings.

/// Open311 settings (TOML-ready: `jurisdiction_id = "astana.kz"`, `api_keys = ["…"]`).
#[derive(Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Open311Config {
    /// The `jurisdiction_id` this endpoint serves (requests naming another get a 404 error);
    /// `None` accepts any or none.
    pub jurisdiction_id: Option<String>,
    /// API keys allowed to POST requests; empty = no key required.
    pub api_keys: Vec<String>,
}

/// API keys are secrets: `Debug` shows how many there are, never the keys.
impl std::fmt::Debug for Open311Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open311Config")
            .field("jurisdiction_id", &self.jurisdiction_id)
            .field(
                "api_keys",
                &format_args!("{} redacted", self.api_keys.len()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open311_settings_read_from_toml_and_refuse_unknown_keys() {
        let cfg: Open311Config =
            toml::from_str("jurisdiction_id = \"astana.kz\"\napi_keys = [\"k1\"]\n")
                .expect("valid");
        assert_eq!(cfg.jurisdiction_id.as_deref(), Some("astana.kz"));
        assert_eq!(cfg.api_keys, vec!["k1".to_owned()]);
        assert_eq!(
            toml::from_str::<Open311Config>("").expect("empty"),
            Open311Config::default()
        );
        let err = toml::from_str::<Open311Config>("api_key = \"k\"\n").expect_err("unknown key");
        assert!(err.to_string().contains("api_key"), "{err}");
        assert!(!format!("{cfg:?}").contains("k1"), "{cfg:?}");
    }
}
