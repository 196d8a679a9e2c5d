//! `ingestor demo` (arrives with the supervision issue).
use std::process::ExitCode;

pub(crate) fn run() -> ExitCode {
    eprintln!("ingestor demo: not built yet");
    ExitCode::from(1)
}
