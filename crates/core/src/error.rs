//! Typed errors of governance operations, each mapping to one HTTP status class.
//!
//! Invariant: every refusal names why — a field at fault (`Validation`), the rules not met
//! (`Policy`), or the duty being separated (`SeparationOfDuties`). Nothing is refused silently.

use serde::Serialize;

/// One problem with one field of the input, named by its JSON path (`card.rollback.procedure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
    /// Re-roots the error under a parent path: `at("lineage")` turns `sha256` into `lineage.sha256`.
    pub fn at(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if parent.is_empty() {
            self.field
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Failures of the storage ports.
#[derive(thiserror::Error)]
pub enum StoreError {
    /// A condition of the commit did not hold: someone else changed the record first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The idempotency key was already committed (by a concurrent request).
    #[error("idempotency key already used")]
    IdempotencyKeyTaken,
    /// A pagination cursor that this store did not hand out.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The backend failed; the commit did not happen.
    #[error(transparent)]
    Backend(BackendError),
}

impl StoreError {
    /// A backend failure caused by `source` (an SDK, database or decoding error), which is
    /// kept as the error's [`source`](std::error::Error::source) rather than formatted away.
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Backend(BackendError::new(context, source))
    }

    /// A backend failure found by the store itself (a missing or inconsistent item), with
    /// no underlying error.
    pub fn backend_msg(context: impl Into<String>) -> Self {
        StoreError::Backend(BackendError::msg(context))
    }
}

impl std::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", chain(self))
    }
}

/// A storage backend's failure: what the store was doing, and the error that stopped it.
///
/// Its `Display` is `storage failure: {context}`; the cause is its `source()`, so a cause
/// is printed once, by whoever walks the chain ([`chain`], or `Debug`).
pub struct BackendError {
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// A failure in `context` caused by `source`.
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A failure with no underlying error.
    pub fn msg(context: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            source: None,
        }
    }

    /// What the store was doing when it failed.
    pub fn context(&self) -> &str {
        &self.context
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "storage failure: {}", self.context)
    }
}

impl std::fmt::Debug for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", chain(self))
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<&str> for BackendError {
    fn from(context: &str) -> Self {
        Self::msg(context)
    }
}

impl From<String> for BackendError {
    fn from(context: String) -> Self {
        Self::msg(context)
    }
}

/// An error and its causes on one line: `outer: caused by: inner: caused by: root`, for
/// logs and for messages that leave the process (a Lambda's `Diagnostic`).
pub fn chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> ErrorChain<'a> {
    ErrorChain(e)
}

/// See [`chain`].
pub struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": caused by: {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// Why a governance operation was refused.
#[derive(thiserror::Error)]
pub enum GovError {
    /// The input is not acceptable (HTTP 422, or 400 when it is not even well-formed).
    #[error("validation failed: {}", list(.0))]
    Validation(Vec<FieldError>),
    /// The input is valid but policy does not allow the action now (HTTP 422).
    #[error("policy not met: {}", .0.join("; "))]
    Policy(Vec<String>),
    /// The principal lacks the role (HTTP 403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The principal has the role but separation of duties forbids this action (HTTP 403).
    #[error("separation of duties: {0}")]
    SeparationOfDuties(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The action conflicts with the current state: a retry of the same request cannot succeed
    /// until someone changes that state (HTTP 409 `conflict`; not retried by Steward).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The action lost a race: another change to the same records committed between the read
    /// and the commit, so nothing was written. Re-reading and trying again may succeed (HTTP
    /// 409 `contended` with `Retry-After`; `Steward.Contended`, retried by the functions).
    #[error("contended: {0}")]
    Contended(String),
    #[error(transparent)]
    Store(StoreError),
    /// A record or event could not be turned into JSON (HTTP 500): a bug, never user input.
    /// Refusing the action keeps a `null` out of the audit log, the outbox and idempotency
    /// records.
    #[error("could not serialise {what}")]
    Serialization {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl GovError {
    /// `value` as JSON, or a [`GovError::Serialization`] naming `what`.
    pub fn to_json<T: serde::Serialize + ?Sized>(
        what: &'static str,
        value: &T,
    ) -> Result<serde_json::Value, GovError> {
        serde_json::to_value(value).map_err(|source| GovError::Serialization { what, source })
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        GovError::Validation(vec![FieldError::new(field, message)])
    }
    /// Stable machine-readable code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            GovError::Validation(_) => "validation_failed",
            GovError::Policy(_) => "policy_violation",
            GovError::Forbidden(_) => "forbidden",
            GovError::SeparationOfDuties(_) => "separation_of_duties",
            GovError::NotFound(_) => "not_found",
            GovError::Conflict(_) => "conflict",
            GovError::Contended(_) => "contended",
            GovError::Store(StoreError::Conflict(_)) => "contended",
            GovError::Store(StoreError::IdempotencyKeyTaken) => "contended",
            GovError::Store(StoreError::InvalidCursor) => "validation_failed",
            GovError::Store(StoreError::Backend(_)) => "internal",
            GovError::Serialization { .. } => "internal",
        }
    }
}

// Printed by `unwrap`, `?` in mains and `{:?}` in logs: the message and every cause.
impl std::fmt::Debug for GovError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", chain(self))
    }
}

impl From<FieldError> for GovError {
    fn from(e: FieldError) -> Self {
        GovError::Validation(vec![e])
    }
}

impl From<StoreError> for GovError {
    fn from(e: StoreError) -> Self {
        match e {
            // A bad cursor is the caller's input, not a storage failure.
            StoreError::InvalidCursor => {
                GovError::field("cursor", "is not a cursor this list returned")
            }
            other => GovError::Store(other),
        }
    }
}
