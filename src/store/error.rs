//! What a store call can fail with, and which failures mean "the database is not there right
//! now" (webhooks answer 503 so Twilio retries; `connect` waits for it).

use crate::error::AppError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (down, restarting, locked, read-only): try again later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Other(sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A client hears `503` while the database is unavailable; anything else is our failure.
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable,
            StoreError::Other(e) => Self::Internal(e.into()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Other(e)
        }
    }
}

pub(super) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // Each backend's codes are read on their own: a PostgreSQL SQLSTATE such as 22021
            // (a NUL in text) read as a SQLite number would look like BUSY.
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // BUSY (5), LOCKED (6), READONLY (8), IOERR (10), FULL (13), CANTOPEN (14).
                matches!(
                    code.parse::<i64>().map(|c| c & 0xff),
                    Ok(5 | 6 | 8 | 10 | 13 | 14)
                )
            } else {
                // Connection exceptions (08), shutdown (57P), out of resources (53).
                code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
            }
        }
        _ => false,
    }
}

/// Whether a failed connect is worth another try: the database is not up yet.
pub(super) fn is_retryable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>().is_some_and(is_unavailable)
            || c.downcast_ref::<std::io::Error>().is_some()
    })
}
