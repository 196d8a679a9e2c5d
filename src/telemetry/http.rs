//! `GET /metrics` (Prometheus text format), `GET /health` (JSON) and the
//! status page (`GET /`, `GET /devices/<id>`, `GET /status.json`: see
//! [`super::status`]) on `[metrics].listen` (docs/reference.md §4).
//!
//! `/health` always answers 200 while the process runs: `degraded` means the
//! service still works but NATS is unreachable or does not confirm what it
//! is sent (data is kept in the buffer), the spool is not ok, or a device
//! does not answer. The numbers come from a [`HealthSource`] the
//! caller provides, so this module knows nothing about actors.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use ingestor_actors::buffer::SpoolState;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use super::exposition::Exposition;
use super::status::{self, StatusSource};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How often the recorder's upkeep runs (drains histogram samples so memory
/// stays bounded when nobody scrapes).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A snapshot of what `/health` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Health {
    /// The publisher's connection to NATS is up.
    pub(crate) nats_connected: bool,
    /// Batches wait and nothing was confirmed for `ack_timeout`.
    pub(crate) delivery_stalled: bool,
    /// Unpublished batches (memory and disk tiers).
    pub(crate) backlog: u64,
    /// Devices whose last poll got answers.
    pub(crate) devices_up: usize,
    /// Configured devices.
    pub(crate) devices: usize,
    /// Whether the spool takes writes (`ok`), is full, or failed.
    pub(crate) spool: SpoolState,
    /// The publisher refuses to publish: the stream's last message on our
    /// `service.id` is another installation's (or ahead of our seq).
    pub(crate) id_conflict: bool,
}

impl Health {
    /// `ok` only when NATS is connected and confirms batches (no id
    /// conflict), every device answers and the spool is ok.
    pub(crate) fn is_ok(&self) -> bool {
        self.nats_connected
            && !self.delivery_stalled
            && !self.id_conflict
            && self.devices_up >= self.devices
            && self.spool == SpoolState::Ok
    }

    /// `status`: `ok` or `degraded`.
    pub(crate) fn status_str(&self) -> &'static str {
        if self.is_ok() {
            "ok"
        } else {
            "degraded"
        }
    }

    /// `nats`: `connected` or `disconnected`.
    pub(crate) fn nats_str(&self) -> &'static str {
        if self.nats_connected {
            "connected"
        } else {
            "disconnected"
        }
    }

    /// `delivery`: `ok` or `stalled`.
    pub(crate) fn delivery_str(&self) -> &'static str {
        if self.delivery_stalled {
            "stalled"
        } else {
            "ok"
        }
    }
}

/// Where `/health` gets its numbers; asked once per request.
pub(crate) trait HealthSource: Send + Sync + 'static {
    /// The current state of the service.
    fn health(&self) -> impl Future<Output = Health> + Send;
}

/// A fixed value (tests, or a service that has nothing better yet).
impl HealthSource for Health {
    fn health(&self) -> impl Future<Output = Health> + Send {
        std::future::ready(self.clone())
    }
}

/// The latest value some task published: the service updates a
/// `watch::Sender<Health>` as its actors report, `/health` reads the latest.
impl HealthSource for watch::Receiver<Health> {
    fn health(&self) -> impl Future<Output = Health> + Send {
        std::future::ready(self.borrow().clone())
    }
}

/// The `/health` body, docs/reference.md §5.
#[derive(Debug, Serialize)]
struct HealthReport {
    status: &'static str,
    nats: &'static str,
    delivery: &'static str,
    spool: &'static str,
    backlog: u64,
    devices_up: usize,
    devices: usize,
}

impl From<Health> for HealthReport {
    fn from(h: Health) -> Self {
        HealthReport {
            status: h.status_str(),
            nats: h.nats_str(),
            delivery: h.delivery_str(),
            spool: h.spool.as_str(),
            backlog: h.backlog,
            devices_up: h.devices_up,
            devices: h.devices,
        }
    }
}

/// The HTTP endpoint failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// `[metrics].listen` could not be bound: the port is taken (another
    /// ingestor?) or the address is not local. Fix the config; retrying the
    /// same address rarely helps.
    #[error("cannot listen on {listen} for /metrics and /health: {source}")]
    Bind {
        /// The configured address.
        listen: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Binds `listen` (`host:port`; port 0 picks a free one, see
/// `TcpListener::local_addr`).
pub(crate) async fn bind(listen: &str) -> Result<TcpListener, HttpError> {
    TcpListener::bind(listen)
        .await
        .map_err(|source| HttpError::Bind {
            listen: listen.to_owned(),
            source,
        })
}

/// Serves `/metrics` and `/health` on `listen` until `shutdown` completes.
/// (The service binds first and calls `serve_on`; tests use this.)
#[allow(dead_code)]
pub(crate) async fn serve<H: HealthSource + StatusSource>(
    listen: &str,
    handle: PrometheusHandle,
    health: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let listener = bind(listen).await?;
    serve_on(listener, handle, health, shutdown).await
}

/// Serves `/metrics` and `/health` on an already bound listener until
/// `shutdown` completes, with the connections bounded (`conn`). Also runs
/// the recorder's periodic upkeep.
pub(crate) async fn serve_on<H: HealthSource + StatusSource>(
    listener: TcpListener,
    exposition: impl Into<Exposition>,
    health: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics and /health");
    }
    let exposition = exposition.into();
    let upkeep = tokio::spawn(upkeep(exposition.handle().clone()));
    let app = Router::new()
        .route("/metrics", get(render_metrics::<H>))
        .route("/health", get(health_report::<H>))
        .route("/", get(status_page::<H>))
        .route("/status.json", get(status_json::<H>))
        .route("/devices/{id}", get(device_page::<H>));
    #[cfg(feature = "fault-injection")]
    let app = app.route("/fault/{actor}/{kind}", axum::routing::post(inject_fault));
    let app = app
        .with_state(Endpoints {
            exposition,
            health: Arc::new(health),
        })
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async { axum::http::StatusCode::SERVICE_UNAVAILABLE },
                ))
                .timeout(super::conn::REQUEST_TIMEOUT),
        );
    super::conn::serve_bounded(listener, app, shutdown).await;
    upkeep.abort();
    Ok(())
}

/// What the handlers share.
struct Endpoints<H> {
    exposition: Exposition,
    health: Arc<H>,
}

// Manual impl: `H` itself need not be `Clone`, it sits behind an `Arc`.
impl<H> Clone for Endpoints<H> {
    fn clone(&self) -> Self {
        Endpoints {
            exposition: self.exposition.clone(),
            health: Arc::clone(&self.health),
        }
    }
}

async fn render_metrics<H: HealthSource>(State(ep): State<Endpoints<H>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        ep.exposition.render(),
    )
}

async fn health_report<H: HealthSource>(State(ep): State<Endpoints<H>>) -> Json<HealthReport> {
    Json(ep.health.health().await.into())
}

async fn status_page<H: StatusSource>(State(ep): State<Endpoints<H>>) -> Html<String> {
    let now = chrono::Utc::now();
    Html(
        status::page::overview_page(&ep.health.overview(), &ep.health.devices(), now).into_string(),
    )
}

async fn status_json<H: StatusSource>(
    State(ep): State<Endpoints<H>>,
) -> Json<status::StatusReport> {
    let now = chrono::Utc::now();
    Json(status::report(
        &ep.health.overview(),
        &ep.health.devices(),
        now,
    ))
}

async fn device_page<H: StatusSource>(
    State(ep): State<Endpoints<H>>,
    Path(id): Path<String>,
) -> (StatusCode, Html<String>) {
    let now = chrono::Utc::now();
    let found = ep
        .health
        .devices()
        .into_iter()
        .find(|d| d.id() == id)
        .map(|d| (d.is_up(), d.snapshot()));
    match found {
        Some((up, last)) => {
            let page = status::page::device_page(&ep.health.overview(), up, &last, now);
            (StatusCode::OK, Html(page.into_string()))
        }
        None => (
            StatusCode::NOT_FOUND,
            Html(status::page::no_such_device(&id).into_string()),
        ),
    }
}

/// Test builds only: `POST /fault/<actor>/<panic|hang>` arms a fault for the
/// next message of that actor kind (`buffer`, `publisher`, `monitor`, `poller`);
/// any other actor or fault kind is answered 400 and arms nothing.
#[cfg(feature = "fault-injection")]
async fn inject_fault(
    axum::extract::Path((actor, kind)): axum::extract::Path<(String, String)>,
) -> (axum::http::StatusCode, String) {
    let armed = kind
        .parse::<ingestor_actors::fault::Fault>()
        .and_then(|fault| ingestor_actors::fault::arm(&actor, fault).map(|()| fault));
    match armed {
        Ok(fault) => {
            tracing::warn!(%actor, ?fault, "fault armed (test build)");
            (
                axum::http::StatusCode::OK,
                format!("armed {kind} for {actor}\n"),
            )
        }
        Err(e) => (axum::http::StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

async fn upkeep(handle: PrometheusHandle) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}
