//! The power-cut rig (tests/service_power_cut.rs): a plant whose
//! `data_dir` lies on a LazyFS mount (tests/lazyfs), polling a frozen
//! `ingestor simulate` (tests/simulate_rig) at a steady rate, and a reader
//! that returns what the stream holds per message: seq, device and ts.

#[path = "../simulate_rig/mod.rs"]
mod simulate_rig;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{free_port, Service, SERVICE, STREAM};
use simulate_rig::Simulator;

/// The plant: `devices` devices of `tags` u16 holding registers each (a
/// batch of about 10 bytes per tag), polled every `interval`.
pub struct PowerPlant {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub metrics: String,
    /// Batches the plant makes per second, all devices together.
    pub batches_per_s: f64,
    _simulator: Simulator,
}

impl PowerPlant {
    pub fn new(
        nats_url: &str,
        data_dir: &Path,
        persist: &str,
        devices: usize,
        tags: usize,
        interval: Duration,
    ) -> PowerPlant {
        let dir = tempfile::tempdir().unwrap();
        let sim_port = free_port();
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut text = format!(
            r#"[service]
id = "{SERVICE}"
data_dir = "{data}"

[nats]
servers = ["{nats_url}"]
ack_timeout = "5s"
max_in_flight = 16

[metrics]
listen = "{metrics}"

[buffer]
persist = "{persist}"
"#,
            data = data_dir.display(),
        );
        for d in 0..devices {
            text.push_str(&format!(
                "\n[[devices]]\nid = \"dev-{d}\"\naddress = \"127.0.0.1:{sim_port}\"\nunit = {}\n\
                 poll_interval = \"{}ms\"\ntimeout = \"500ms\"\n",
                d + 1,
                interval.as_millis()
            ));
            for t in 0..tags {
                text.push_str(&format!(
                    "[[devices.tags]]\nname = \"t{t:03}\"\nregister = \"holding\"\naddress = {t}\ntype = \"u16\"\n"
                ));
            }
        }
        let config = dir.path().join("ingestor.toml");
        std::fs::write(&config, text).unwrap();
        let simulator = Simulator::start(&config, sim_port, &[]);
        PowerPlant {
            dir,
            config,
            metrics,
            batches_per_s: devices as f64 / interval.as_secs_f64(),
            _simulator: simulator,
        }
    }

    /// Starts the service and waits for `/health`; an exit before it (the
    /// spool did not open) fails with the log.
    pub fn start(&self) -> Service {
        let mut service = Service::spawn(&self.config, &self.metrics, self.dir.path(), &[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while service.get("/health").is_none() {
            if let Some(status) = service.exited() {
                panic!(
                    "the service exited ({status}) before serving /health (its spool did not open, or its port was taken?):\n{}",
                    service.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no /health within 30 s:\n{}",
                service.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }
}

/// One message of the stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: u64,
    pub subject: String,
    /// `(device, ts)` of a batch; `None` for the service's own messages (gaps).
    pub poll: Option<(String, String)>,
}

/// Every message of the stream, in stream order.
pub fn read_stored(url: &str) -> Vec<Stored> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(STREAM).await.unwrap();
        let total = stream.info().await.unwrap().state.messages;
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut out = Vec::with_capacity(total as usize);
        while (out.len() as u64) < total {
            let m = tokio::time::timeout(Duration::from_secs(20), messages.next())
                .await
                .expect("stream read stalled")
                .unwrap()
                .unwrap();
            let payload: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            let seq = payload["seq"].as_u64().expect("payload seq");
            let poll = match (payload["device"].as_str(), payload["ts"].as_str()) {
                (Some(d), Some(ts)) => Some((d.to_string(), ts.to_string())),
                _ => None,
            };
            out.push(Stored {
                seq,
                subject: m.subject.to_string(),
                poll,
            });
        }
        out
    })
}
