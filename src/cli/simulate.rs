//! `ingestor simulate` (arrives with the poller issue).
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(_config: &Path, _listen: &str) -> ExitCode {
    eprintln!("ingestor simulate: not built yet");
    ExitCode::from(1)
}
