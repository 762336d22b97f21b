/// What can go wrong in the telemetry stage (outside input is a [`super::Rejection`], not this).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot bind {protocol} listener on {addr}: {source}")]
    Bind {
        protocol: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("track store: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("track store pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}
