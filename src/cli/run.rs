//! `ingestor run` (arrives with the supervision issue).
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(_config: &Path) -> ExitCode {
    eprintln!("ingestor run: not built yet");
    ExitCode::from(1)
}
