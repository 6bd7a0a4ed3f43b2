//! The application error shared by the CLI, the API and the console.
//! Each variant says what kind of failure it is; the HTTP mapping lives in `api::error`.

use crate::domain::names::InvalidName;
use crate::domain::roles::UnknownRole;
use crate::domain::tokens::TokenSpecError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Internal(String),
}

impl From<InvalidName> for AppError {
    fn from(e: InvalidName) -> Self {
        AppError::Invalid(e.0)
    }
}

impl From<UnknownRole> for AppError {
    fn from(e: UnknownRole) -> Self {
        AppError::Invalid(e.to_string())
    }
}

impl From<TokenSpecError> for AppError {
    fn from(e: TokenSpecError) -> Self {
        AppError::Invalid(e.to_string())
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        AppError::Storage(StorageError::Sqlite(e))
    }
}

pub type AppResult<T> = Result<T, AppError>;
