//! The config file: where it is, loading, validation (arrives with its issue).

use std::path::{Path, PathBuf};

/// `-c FILE`, else `$INGESTOR_CONFIG`, else `/etc/ingestor/ingestor.toml`
/// when it exists, else `config/default.toml` (CONTRACT §1).
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
