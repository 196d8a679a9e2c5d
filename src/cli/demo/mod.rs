//! `ingestor demo`: a simulated plant and the service together, from
//! `config/demo.toml` (data under `./data`), with a status line every few
//! seconds. Ctrl-C stops both (exit 0) and the last lines say what was kept
//! on disk for next time.
//!
//! Which NATS server, decided once at start:
//! - something answers on the configured address: the user's own server.
//!   The demo publishes there and never stops, restarts or signals it;
//! - nothing answers and `nats-server` is on `PATH`: the demo starts its own
//!   (`nats_child`: a free port, JetStream, store under `./data`) and plays
//!   a scripted outage (`story`), then runs on until Ctrl-C; on exit it stops
//!   that child by pid;
//! - neither: everything is kept on disk, and the demo says how to get a
//!   server (`apt install nats-server`).

mod nats_child;
mod status;
mod story;

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use ingestor_actors::settings::Settings;
use ingestor_actors::simulator::Simulator;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use self::nats_child::NatsChild;
use self::story::ChildSlot;
use super::run::{exit_code, runtime};
use crate::service;

const DEMO_CONFIG: &str = "config/demo.toml";

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

/// The NATS server the demo talks to.
enum Nats {
    /// The user's own: never touched.
    Users,
    /// The demo's own child, for the scripted outage.
    Own(Box<NatsChild>),
    /// None: everything stays on disk. The text says why and what to do.
    Absent(String),
}

/// The first configured server's socket address (`nats://host:port`).
fn first_server(settings: &Settings) -> Option<SocketAddr> {
    let url = url::Url::parse(settings.nats.servers.first()?).ok()?;
    let host = url.host_str()?;
    let port = url.port().unwrap_or(4222);
    (host, port).to_socket_addrs().ok()?.next()
}

async fn choose_nats(settings: &Settings) -> Nats {
    let configured = ingestor_actors::credentials::redacted_servers(&settings.nats);
    if let Some(addr) = first_server(settings) {
        if nats_child::answers(addr).await {
            return Nats::Users;
        }
    }
    let Some(program) = nats_child::find_on_path() else {
        return Nats::Absent(format!(
            "  No NATS server answers at {configured}, and nats-server is not installed, so every reading\n  \
             is kept on disk. To see the whole story (flow, outage, catch-up), install it and run the\n  \
             demo again:  sudo apt install nats-server   (or start your own: nats-server -js)"
        ));
    };
    match NatsChild::start(program, &settings.service.data_dir).await {
        Ok(child) => Nats::Own(Box::new(child)),
        Err(e) => Nats::Absent(format!(
            "  No NATS server answers at {configured}, and the demo could not start its own: {e}.\n  \
             Every reading is kept on disk; start one with  nats-server -js"
        )),
    }
}

async fn demo(mut settings: Settings) -> anyhow::Result<ingestor_actors::supervisor::Exit> {
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

    let nats = choose_nats(&settings).await;
    let data_dir = settings.service.data_dir.clone();
    println!(
        "ingestor demo: {} simulated devices on {address}",
        settings.devices.len()
    );
    println!("  data dir  {}", data_dir.display());
    let mut hint = None;
    let slot: ChildSlot = Arc::new(Mutex::new(None));
    match nats {
        Nats::Users => println!(
            "  NATS      {} answers: the demo publishes there and leaves that server alone",
            ingestor_actors::credentials::redacted_servers(&settings.nats)
        ),
        Nats::Own(child) => {
            let configured = ingestor_actors::credentials::redacted_servers(&settings.nats);
            settings.nats.servers = vec![child.url()];
            println!(
                "  NATS      none at {configured}, so the demo runs its own: nats-server pid {} on {} \
                 (JetStream store {}); it plays an outage, then runs on",
                child.pid().unwrap_or(0),
                child.url(),
                child.store().display()
            );
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(*child);
        }
        Nats::Absent(text) => {
            println!(
                "  NATS      {} (not reachable)",
                ingestor_actors::credentials::redacted_servers(&settings.nats)
            );
            hint = Some(text);
        }
    }
    if let Ok(kept) = status::kept_on_disk(data_dir.clone()).await {
        if let Some(line) = kept.left_by_last_run() {
            println!("  backlog   {line}");
        }
    }
    println!(
        "  subjects  {}.{}.<device> in the stream {}",
        settings.nats.subject_prefix, settings.service.id, settings.nats.stream
    );
    println!(
        "  metrics   http://{}/metrics   health http://{}/health",
        settings.metrics.listen, settings.metrics.listen
    );
    println!("  Ctrl-C stops; everything not yet published is kept on disk for next time.\n");

    let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let latest: status::Latest = Arc::default();
    let own = slot
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some();
    let exit = {
        let (tasks, slot, latest) = (tasks.clone(), slot.clone(), latest.clone());
        service::serve(settings, move |health| {
            let mut tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
            tasks.push(tokio::spawn(status::on_stop(
                health.clone(),
                latest.clone(),
            )));
            tasks.push(tokio::spawn(status::lines(health.clone(), hint, latest)));
            if own {
                tasks.push(tokio::spawn(story::play(health, slot)));
            }
        })
        .await
    };
    let handles = std::mem::take(&mut *tasks.lock().unwrap_or_else(PoisonError::into_inner));
    for task in handles {
        task.abort();
        let _ = task.await; // a story mid-restart drops (kills) the child it holds
    }
    let child = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(mut child) = child {
        child.stop().await;
    }
    let last = latest.lock().unwrap_or_else(PoisonError::into_inner).take();
    status::print_final(
        last,
        status::kept_on_disk(data_dir.clone()).await,
        &data_dir,
    );
    exit
}
