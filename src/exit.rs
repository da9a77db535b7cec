//! Exit codes, a contract with pipelines (README "Exit codes"), and the error type commands
//! return.
//!
//! Every error type says its own exit class by implementing [`Classify`] next to where it is
//! defined; `?` turns it into an [`Error`] that keeps the class, and `.context(..)` adds a
//! line of context without losing it. Nothing downcasts: the class travels with the error.
//! This module is a leaf: it imports nothing from the crate.

use std::fmt;

/// How a run ended, as scripts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// 0: success, a no-op included.
    Success,
    /// 1: anything else (a bug, a local I/O failure).
    Other,
    /// 2: usage or invalid input (arguments, pointer, policy file, manifests).
    Usage,
    /// 3: verification failed (digest, size, format, archive contents).
    Verify,
    /// 4: refused by policy.
    Policy,
    /// 5: remote failure (unreachable, authentication, not found, retries or deadline
    /// exhausted, push refused by the server).
    Remote,
    /// 6: conflict: a pointer the plan read was changed by someone else before the write
    /// landed; nothing was written.
    Conflict,
    /// 7: deployed but not healthy: the write landed, but `--wait` saw Argo CD report the
    /// Application Degraded, its sync failed, or the wait ran out of time.
    Unhealthy,
}

impl Exit {
    /// The process exit code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Other => 1,
            Self::Usage => 2,
            Self::Verify => 3,
            Self::Policy => 4,
            Self::Remote => 5,
            Self::Conflict => 6,
            Self::Unhealthy => 7,
        }
    }
}

/// An error type that knows which exit class it belongs to.
pub trait Classify: std::error::Error {
    fn exit(&self) -> Exit;
}

/// Declares that every error of a type belongs to one exit class:
/// `exit_class!(InvalidDigest => Usage);` next to the type's definition.
#[macro_export]
macro_rules! exit_class {
    ($type:ty => $class:ident) => {
        impl $crate::exit::Classify for $type {
            fn exit(&self) -> $crate::exit::Exit {
                $crate::exit::Exit::$class
            }
        }
    };
}

/// What commands return when they fail: the message chain and its exit class.
pub struct Error {
    exit: Exit,
    inner: anyhow::Error,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of class `exit` with a message.
    pub fn new(exit: Exit, message: impl fmt::Display + Send + Sync + 'static) -> Self {
        Self {
            exit,
            inner: anyhow::Error::msg(message.to_string()),
        }
    }

    #[must_use]
    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// Whether a cause in the chain is an I/O error of `kind` (a closed stdout, say).
    #[must_use]
    pub fn is_io(&self, kind: std::io::ErrorKind) -> bool {
        self.inner
            .chain()
            .filter_map(|c| c.downcast_ref::<std::io::Error>())
            .any(|e| e.kind() == kind)
    }

    /// The first cause in the chain of type `E` (a transport failure inside a decision, say).
    #[must_use]
    pub fn cause<E: std::error::Error + Send + Sync + 'static>(&self) -> Option<&E> {
        self.inner.chain().find_map(|c| c.downcast_ref::<E>())
    }

    fn wrap(self, context: impl fmt::Display + Send + Sync + 'static) -> Self {
        Self {
            exit: self.exit,
            inner: self.inner.context(context),
        }
    }
}

impl<E: Classify + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Self {
            exit: e.exit(),
            inner: anyhow::Error::new(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.inner)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:#})", self.exit, self.inner)
    }
}

/// `.context(..)` for results whose error knows its class: the class is kept.
pub trait Context<T> {
    fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Result<T>;
    fn with_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Result<T> {
        self.map_err(|e| e.into().wrap(context))
    }

    fn with_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> Result<T> {
        self.map_err(|e| e.into().wrap(context()))
    }
}

/// Input a person or pipeline gave us that we cannot use: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

crate::exit_class!(InvalidInput => Usage);

// Local I/O failures are "anything else": the input was fine, the machine was not.
crate::exit_class!(std::io::Error => Other);

crate::exit_class!(std::fmt::Error => Other);

// Time arithmetic out of range: a bug or an absurd clock, not the user's input.
crate::exit_class!(jiff::Error => Other);

crate::exit_class!(serde_json::Error => Other);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("digest mismatch")]
    struct Mismatch;

    impl Classify for Mismatch {
        fn exit(&self) -> Exit {
            Exit::Verify
        }
    }

    fn fails() -> Result<()> {
        Err(Mismatch)?
    }

    #[test]
    fn context_keeps_the_class_and_prints_the_chain_once() {
        let err = fails().context("reading release 42").unwrap_err();
        assert_eq!(err.exit(), Exit::Verify);
        assert_eq!(err.to_string(), "reading release 42: digest mismatch");
    }

    #[test]
    fn invalid_input_is_a_usage_error() {
        let err: Error = InvalidInput("bad".into()).into();
        assert_eq!(err.exit().code(), 2);
    }
}
