//! What can be wrong with a config file, and how it is reported.
//!
//! Every problem names the file, the line (when the key is in the file), the
//! key path as a user would write it (`devices[2].tags[0].type`), the bad
//! value and what is allowed. [`ConfigErrors`] carries all of them at once.

use std::fmt;
use std::path::PathBuf;

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySegment {
    /// A table key.
    Key(String),
    /// An index into an array (`[[devices]]`, `servers`).
    Index(usize),
}

/// Where a value sits in the file: `devices[2].tags[0].type`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<KeySegment>);

impl KeyPath {
    /// The document root (an empty path).
    pub(crate) fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// This path with a table key appended.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(KeySegment::Key(key.to_owned()));
        KeyPath(segments)
    }

    /// This path with an array index appended.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(KeySegment::Index(index));
        KeyPath(segments)
    }

    /// The innermost table key (`type` in `devices[2].tags[0].type`).
    pub(crate) fn last_key(&self) -> Option<&str> {
        self.0.iter().rev().find_map(|s| match s {
            KeySegment::Key(k) => Some(k.as_str()),
            KeySegment::Index(_) => None,
        })
    }

    /// The steps of the path, outermost first.
    pub(crate) fn segments(&self) -> &[KeySegment] {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                KeySegment::Key(k) if i == 0 => write!(f, "{k}")?,
                KeySegment::Key(k) => write!(f, ".{k}")?,
                KeySegment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// What is wrong at one key. Nothing here is fixed by retrying: the file
/// has to be edited (or, for [`ConfigError::Unreadable`], made readable).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read: missing, a directory, no permission.
    #[error("cannot read the config file: {0}")]
    Unreadable(#[source] std::io::Error),
    /// The file is not valid TOML (the message is toml's).
    #[error("not valid TOML: {0}")]
    Syntax(String),
    /// The value does not fit the schema: unknown key, wrong type, unknown
    /// variant, number out of range (the message names value and what is allowed).
    #[error("{0}")]
    Schema(String),
    /// A required key is absent (the text says why it is needed).
    #[error("missing: {0}")]
    Missing(String),
    /// The value has the right type but breaks a rule.
    #[error("{value} is not allowed: {allowed}")]
    Invalid {
        /// The value as written (strings quoted).
        value: String,
        /// What the rule allows.
        allowed: String,
    },
    /// A file the key names cannot be used (unreadable, not PEM, a key
    /// that does not belong to its certificate): the file has to change.
    #[error("{path}: {problem}")]
    File {
        /// The path as written (quoted).
        path: String,
        /// What is wrong with the file.
        problem: String,
    },
    /// An id or name that must be unique appears twice.
    #[error("{value} is already used at {first}: {what} must be unique")]
    Duplicate {
        /// The repeated id or name.
        value: String,
        /// Key path of its first use.
        first: KeyPath,
        /// What must be unique ("device ids").
        what: &'static str,
    },
}

/// One problem: where (key path, line) and what.
#[derive(Debug)]
pub(crate) struct Problem {
    /// The key the problem is about.
    pub(crate) path: KeyPath,
    /// 1-based line in the file, when the key (or its table) is in the file.
    pub(crate) line: Option<usize>,
    /// What is wrong.
    pub(crate) error: ConfigError,
}

impl Problem {
    /// A problem whose line is looked up later.
    pub(crate) fn new(path: KeyPath, error: ConfigError) -> Self {
        Problem {
            path,
            line: None,
            error,
        }
    }

    /// A rule broken by `value` at `path`.
    pub(crate) fn invalid(
        path: KeyPath,
        value: impl fmt::Display,
        allowed: impl Into<String>,
    ) -> Self {
        Problem::new(
            path,
            ConfigError::Invalid {
                value: value.to_string(),
                allowed: allowed.into(),
            },
        )
    }
}

/// Everything wrong with one config file, in file order.
#[derive(Debug)]
pub(crate) struct ConfigErrors {
    /// The file that was read.
    pub(crate) file: PathBuf,
    /// At least one problem.
    pub(crate) problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    /// One line per problem: `FILE:LINE: KEY: what is wrong`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match (p.line, p.path.segments().is_empty()) {
                (Some(line), false) => write!(f, "{file}:{line}: {}: {}", p.path, p.error)?,
                (Some(line), true) => write!(f, "{file}:{line}: {}", p.error)?,
                (None, false) => write!(f, "{file}: {}: {}", p.path, p.error)?,
                (None, true) => write!(f, "{file}: {}", p.error)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
