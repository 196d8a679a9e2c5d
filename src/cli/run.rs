//! `ingestor run`: the service, until SIGTERM/SIGINT; SIGHUP reloads the
//! config file (`service::reload`).
//!
//! Exit 0 on a clean stop, 1 on a fatal error or when supervision gave up,
//! 2 on a bad config.

use std::path::Path;
use std::process::ExitCode;

use ingestor_actors::supervisor::Exit;

use crate::{config, service};

pub(crate) fn run(path: &Path) -> ExitCode {
    let settings = match config::load(path) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    if let Some(warning) = ingestor_actors::credentials::plaintext_warning(&settings.nats) {
        tracing::warn!("{warning}");
    }
    for warning in ingestor_actors::credentials::secret_file_warnings(&settings) {
        tracing::warn!("{warning}");
    }
    let reload_from = Some(path.to_path_buf());
    exit_code(runtime().and_then(|rt| {
        let result = rt.block_on(service::serve_reloading(settings, reload_from, |_| {}));
        // A blocking call that never returns (a hung disk, a hung actor's
        // spool call) must not keep a stopping process alive: dropping
        // the runtime would wait for it forever.
        rt.shutdown_timeout(EXIT_WAIT);
        result
    }))
}

/// How long the exit waits for blocking calls still running.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn exit_code(result: anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(Exit::Clean) => ExitCode::SUCCESS,
        Ok(Exit::GaveUp) => {
            eprintln!("ingestor: an actor kept failing; stopped cleanly (data on disk), exit 1");
            ExitCode::from(1)
        }
        Ok(Exit::Hung) => {
            eprintln!("ingestor: an actor stopped answering; stopped (memory on disk), exit 1");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("ingestor: {e:#}");
            ExitCode::from(1)
        }
    }
}
