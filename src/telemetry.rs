//! Logs (tracing: human by default, JSON on request); metrics come later.

use tracing_subscriber::EnvFilter;

/// Logs go to stderr so that CLI output on stdout stays clean.
pub(crate) fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_env("INGESTOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
