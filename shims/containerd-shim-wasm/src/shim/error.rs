//! Why a Task verb failed on a container or one of its processes; the Task service maps each
//! kind to a ttrpc code.

use crate::shim::status::IllegalTransition;

/// Why a container verb failed; the task service maps each to a ttrpc code.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("container {0} is already deleted")]
    Deleted(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}
