//! `ingestor spool stats|check` (arrives with the buffer).
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn stats(_config: &Path) -> ExitCode {
    eprintln!("ingestor spool stats: not built yet");
    ExitCode::from(1)
}

pub(crate) fn check(_config: &Path) -> ExitCode {
    eprintln!("ingestor spool check: not built yet");
    ExitCode::from(1)
}
