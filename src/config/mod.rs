//! The config file (docs/reference.md §2): where it is, loading, validation.
//!
//! [`load`] reads the file, parses it piece by piece (`parse`) and checks
//! every rule (`validate`), and either returns the [`Settings`] or lists
//! every problem at once ([`ConfigErrors`]): file, line, key path, the bad
//! value and what is allowed.

mod error;
mod parse;
mod validate;

use std::path::{Path, PathBuf};

use ingestor_actors::settings::Settings;

pub(crate) use error::{ConfigError, ConfigErrors, KeyPath, Problem};

/// `-c FILE`, else `$INGESTOR_CONFIG`, else `/etc/ingestor/ingestor.toml`
/// when it exists, else `config/default.toml` (docs/reference.md §1).
pub(crate) fn resolve_path(given: Option<&Path>) -> PathBuf {
    if let Some(p) = given {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("INGESTOR_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let etc = Path::new("/etc/ingestor/ingestor.toml");
    if etc.exists() {
        return etc.to_path_buf();
    }
    PathBuf::from("config/default.toml")
}

/// Reads and validates the config file at `path`.
pub(crate) fn load(path: &Path) -> Result<Settings, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => from_toml(&text, path),
        Err(e) => Err(ConfigErrors {
            file: path.to_path_buf(),
            problems: vec![Problem::new(KeyPath::root(), ConfigError::Unreadable(e))],
        }),
    }
}

/// Parses and validates config text; `file` names it in the problems.
pub(crate) fn from_toml(text: &str, file: &Path) -> Result<Settings, ConfigErrors> {
    let fail = |problems| ConfigErrors {
        file: file.to_path_buf(),
        problems,
    };
    let doc = parse::parse_toml(text).map_err(fail)?;
    let mut problems = Vec::new();
    let parsed = parse::parse_sections(doc.get_ref(), &mut problems);
    validate::validate(&parsed, &mut problems);
    if problems.is_empty() {
        match parsed.into_settings() {
            Some(settings) => return Ok(settings),
            // Every piece that fails to parse reports why; this is a safety net.
            None => problems.push(Problem::new(
                KeyPath::root(),
                ConfigError::Schema("some sections could not be read".into()),
            )),
        }
    }
    for p in &mut problems {
        p.line = parse::line_of(&doc, text, &p.path);
    }
    // File order; problems without a line (none expected) last.
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Err(fail(problems))
}

#[cfg(test)]
mod tests;
