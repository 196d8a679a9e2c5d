//! `ingestor demo`: a simulated plant and the service together, from
//! `config/demo.toml`, with a status line every few seconds. Ctrl-C stops
//! both (exit 0).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::poller::simulator::Simulator;
use ingestor_actors::settings::Settings;
use tokio::net::TcpListener;

use super::run::{exit_code, runtime};
use crate::service::{self, TreeHealth};

const DEMO_CONFIG: &str = "config/demo.toml";
const STATUS_EVERY: Duration = Duration::from_secs(3);

pub(crate) fn run() -> ExitCode {
    let settings = match crate::config::load(Path::new(DEMO_CONFIG)) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!(
                "{errors}\n(ingestor demo runs from the project folder, where {DEMO_CONFIG} is)"
            );
            return ExitCode::from(2);
        }
    };
    exit_code(runtime().and_then(|rt| rt.block_on(demo(settings))))
}

async fn demo(settings: Settings) -> anyhow::Result<ingestor_actors::supervisor::Exit> {
    // The demo devices all sit behind one simulated gateway address.
    let address = settings
        .devices
        .iter()
        .find_map(|d| d.address.clone())
        .unwrap_or_else(|| "127.0.0.1:5020".into());
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the simulator on {address}: {e}"))?;
    let simulator = Arc::new(Simulator::new(&settings.devices));
    tokio::spawn(simulator.serve_tcp(listener));

    let nats = ingestor_actors::credentials::redacted_servers(&settings.nats);
    println!(
        "ingestor demo: {} simulated devices on {address}",
        settings.devices.len()
    );
    println!("  data dir  {}", settings.service.data_dir.display());
    println!(
        "  NATS      {nats} (subjects {}.{}.<device>)",
        settings.nats.subject_prefix, settings.service.id
    );
    println!(
        "  metrics   http://{}/metrics   health http://{}/health",
        settings.metrics.listen, settings.metrics.listen
    );
    println!("  Ctrl-C stops; everything not yet published is kept on disk for next time.\n");
    service::serve(settings, move |health| {
        tokio::spawn(status_lines(health, nats));
    })
    .await
}

async fn status_lines(health: TreeHealth, nats: String) {
    let mut every = tokio::time::interval(STATUS_EVERY);
    every.tick().await; // the first tick is immediate: give the tree a moment
    let mut warned = false;
    loop {
        every.tick().await;
        let s = health.snapshot().await;
        let polled = s.buffer.next_seq.saturating_sub(1);
        println!(
            "polled {polled:>7}  published {:>7}  backlog {:>6} memory / {:>7} disk  NATS {}  devices up {}/{}",
            s.published,
            s.buffer.memory_batches + s.buffer.pending,
            s.buffer.disk_batches,
            if s.nats_connected { "connected" } else { "DOWN" },
            s.devices_up,
            s.devices
        );
        if !s.nats_connected && !warned {
            warned = true;
            println!(
                "  NATS is not reachable at {nats}: every reading is kept on disk and sent, oldest first, once it is.\n  \
                 To see data flow, start a server in another terminal:  nats-server -js\n  \
                 and watch it:  nats sub 'telemetry.>'   (or any NATS client)"
            );
        }
        if s.nats_connected {
            warned = false;
        }
    }
}
