/// Errors of the sensor stage.
#[derive(Debug, thiserror::Error)]
pub enum SensorsError {
    /// Sensors whose manhole or type cannot be resolved (every one, with file:line).
    #[error("sensor registry:\n  {}", .0.join("\n  "))]
    Catalog(Vec<String>),
    #[error(
        "the incident rules have no category `{0}`, which sensor alarms raise (add it to the incidents file; see docs/sensors.md)"
    )]
    MissingCategory(&'static str),
    #[error("sensor state in the registry database: {0}")]
    Registry(#[from] crate::registry::RegistryError),
}
