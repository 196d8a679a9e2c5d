//! `ingestor poll` (arrives with the poller issue).
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(_config: &Path, _device: Option<&str>) -> ExitCode {
    eprintln!("ingestor poll: not built yet");
    ExitCode::from(1)
}
