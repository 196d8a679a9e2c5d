//! `ingestor simulate`: serves the registers the config describes as a
//! Modbus TCP slave, one unit id per device, with values that change over
//! time (see `ingestor_actors::simulator` for the exact function).
//! `--framing rtu` speaks RTU frames over TCP instead, like a serial
//! gateway, so `framing = "rtu"` configs can be tried without one (the
//! default when every device of the config says `framing = "rtu"`). Tag keys
//! the simulator has no use for (`poll_interval`, `deadband`, `max_silence`)
//! are accepted and change nothing.
//! Exit 0 on SIGTERM or SIGINT, 1 when it cannot listen, 2 on a bad config.
//!
//! `INGESTOR_SIMULATE_TIME=<unix seconds>` stops the simulator's clock at
//! that time, so that a test can predict every value.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use ingestor_actors::settings::{Framing, Settings};
use ingestor_actors::simulator::Simulator;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

pub(crate) fn run(config: &Path, listen: &str, framing: Option<&str>) -> ExitCode {
    let settings = match crate::config::load(config) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let frozen = match std::env::var("INGESTOR_SIMULATE_TIME") {
        Ok(t) => match t.parse::<u64>() {
            Ok(t) => Some(t),
            Err(_) => {
                eprintln!("ingestor simulate: INGESTOR_SIMULATE_TIME={t:?} is not whole seconds since the epoch");
                return ExitCode::from(2);
            }
        },
        Err(_) => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ingestor simulate: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let framing = match framing {
        Some("rtu") => Framing::Rtu,
        Some(_) => Framing::Tcp,
        None => default_framing(&settings),
    };
    runtime.block_on(serve(settings, listen, framing, frozen))
}

/// RTU when every device of the config says `framing = "rtu"`, else TCP.
fn default_framing(settings: &Settings) -> Framing {
    let rtu = |d: &ingestor_actors::settings::DeviceSettings| d.framing == Framing::Rtu;
    if !settings.devices.is_empty() && settings.devices.iter().all(rtu) {
        Framing::Rtu
    } else {
        Framing::Tcp
    }
}

async fn serve(
    settings: Settings,
    listen: &str,
    framing: Framing,
    frozen: Option<u64>,
) -> ExitCode {
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ingestor simulate: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("ingestor simulate: cannot watch for signals");
            return ExitCode::from(1);
        }
    };
    let mut sim = Simulator::new(&settings.devices);
    if let Some(t) = frozen {
        sim = sim.frozen_at(t);
    }
    let mut units: Vec<u8> = settings.devices.iter().map(|d| d.unit).collect();
    units.sort_unstable();
    units.dedup();
    tracing::info!(listen, devices = settings.devices.len(), ?units, ?framing, frozen_at = ?frozen, "simulating Modbus TCP slave");
    let sim = Arc::new(sim);
    let server = async move {
        match framing {
            Framing::Tcp => sim.serve_tcp(listener).await,
            Framing::Rtu => sim.serve_rtu_over_tcp(listener).await,
        }
    };
    tokio::select! {
        r = server => {
            eprintln!("ingestor simulate: server stopped: {r:?}");
            ExitCode::from(1)
        }
        _ = term.recv() => ExitCode::SUCCESS,
        _ = int.recv() => ExitCode::SUCCESS,
    }
}
