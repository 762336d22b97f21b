/// Errors from the appeal registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry database connection setting is not valid: {0}")]
    Config(String),
    #[error("cannot get a registry connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("registry database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("registry database login: {0}")]
    Login(String),
    #[error("registry schema: {0}")]
    Schema(String),
    #[error("registry migration failed: {0}")]
    Migration(#[from] refinery::Error),
    #[error("appeal `{0}` not found")]
    NotFound(String),
    #[error("appeal {number}: cannot {action} while it is {status}")]
    InvalidTransition {
        number: String,
        action: &'static str,
        status: String,
    },
    #[error("appeal {number}: {message}")]
    Invalid { number: String, message: String },
    #[error("appeal {0} was changed concurrently; retry")]
    Conflict(String),
}

impl RegistryError {
    /// A retryable write conflict (serialization failure or deadlock in PostgreSQL).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Db(e) => e.code().is_some_and(|c| {
                *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                    || *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            }),
            RegistryError::Conflict(_) => true,
            _ => false,
        }
    }
}
