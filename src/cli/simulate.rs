//! `ingestor simulate`: serves the registers the config describes as a
//! Modbus TCP slave, one unit id per device, with values that change over
//! time (see `ingestor_actors::simulator` for the exact function).
//! `--framing rtu` speaks RTU frames over TCP instead, like a serial
//! gateway, so `framing = "rtu"` configs can be tried without one (the
//! default when every device of the config says `framing = "rtu"`). Tag keys
//! the simulator has no use for (`poll_interval`, `deadband`, `max_silence`)
//! are accepted and change nothing.
//! `--tls-cert FILE --tls-key FILE` serves Modbus/TCP Security instead (MBAP
//! over TLS, as on port 802) with that certificate; `--tls-client-ca FILE`
//! also demands a client certificate signed by a CA in FILE and refuses
//! clients without one.
//! Exit 0 on SIGTERM or SIGINT, 1 when it cannot listen, 2 on a bad config
//! or unusable TLS files.
//!
//! `INGESTOR_SIMULATE_TIME=<unix seconds>` stops the simulator's clock at
//! that time, so that a test can predict every value.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ingestor_actors::settings::{Framing, Settings};
use ingestor_actors::simulator::Simulator;
use ingestor_actors::tls::{TlsFile, TlsServer};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// `--tls-cert`, `--tls-key`, `--tls-client-ca`.
#[derive(Debug, clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve Modbus/TCP Security (TLS) with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Demand a client certificate signed by a CA in FILE (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

/// How the simulator talks.
enum Transport {
    Plain(Framing),
    Tls(TlsServer),
}

/// The TLS server config of `args`, or `None` without `--tls-cert`; the
/// error names the flag and what is wrong with its file.
fn tls_server(args: &TlsArgs) -> Result<Option<TlsServer>, String> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let flag = |file: TlsFile| match file {
        TlsFile::Ca => "--tls-client-ca",
        TlsFile::Cert => "--tls-cert",
        TlsFile::Key => "--tls-key",
    };
    if let Some(warning) = ingestor_actors::tls::key_mode_warning(flag(TlsFile::Key), key) {
        tracing::warn!("{warning}");
    }
    TlsServer::from_files(cert, key, args.tls_client_ca.as_deref())
        .map(Some)
        .map_err(|e| format!("{} {}: {}", flag(e.file), e.path.display(), e.problem))
}

pub(crate) fn run(config: &Path, listen: &str, framing: Option<&str>, tls: &TlsArgs) -> ExitCode {
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
    let transport = match tls_server(tls) {
        Ok(None) => Transport::Plain(framing),
        Ok(Some(_)) if framing == Framing::Rtu => {
            eprintln!("ingestor simulate: Modbus/TCP Security carries MBAP frames: --tls-cert only with --framing tcp");
            return ExitCode::from(2);
        }
        Ok(Some(server)) => Transport::Tls(server),
        Err(e) => {
            eprintln!("ingestor simulate: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(serve(settings, listen, transport, frozen))
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
    transport: Transport,
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
    let speaks = match &transport {
        Transport::Plain(Framing::Tcp) => "Modbus TCP",
        Transport::Plain(Framing::Rtu) => "RTU frames over TCP",
        Transport::Tls(_) => "Modbus/TCP Security (TLS)",
    };
    tracing::info!(listen, devices = settings.devices.len(), ?units, speaks, frozen_at = ?frozen, "simulating Modbus slave");
    let sim = Arc::new(sim);
    let server = async move {
        match transport {
            Transport::Plain(Framing::Tcp) => sim.serve_tcp(listener).await,
            Transport::Plain(Framing::Rtu) => sim.serve_rtu_over_tcp(listener).await,
            Transport::Tls(server) => sim.serve_tls(listener, server).await,
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
