//! `ingestor check` (arrives with the config loader).
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(_config: &Path) -> ExitCode {
    eprintln!("ingestor check: not built yet");
    ExitCode::from(2)
}
