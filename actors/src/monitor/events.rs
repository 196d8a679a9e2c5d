//! What the current client's events mean for the connection state, and how a
//! connection problem is reported (once per cause, with what to check:
//! `failure`).

use async_nats::{ClientError, Event, ServerError};
use ractor::ActorRef;
use tracing::{debug, info, warn};

use super::actor::{ConnectionMonitorMsg, ConnectionMonitorState};
use super::failure::{Cause, ConnectFailure};

impl ConnectionMonitorState {
    pub(super) fn on_event(&mut self, myself: &ActorRef<ConnectionMonitorMsg>, event: Event) {
        match event {
            // `Connected` comes from the attempt task, with the client.
            Event::Connected => {}
            Event::Disconnected | Event::Closed => self.on_disconnected(myself),
            Event::ServerError(ServerError::AuthorizationViolation) => {
                self.connection_problem(ConnectFailure::from_message(
                    Some(Cause::Authorization),
                    "authorization violation".into(),
                ))
            }
            Event::ServerError(ServerError::Other(text)) => {
                if text.to_ascii_lowercase().contains("permissions violation") {
                    self.announcer.0.rejected(text);
                } else {
                    warn!(error = %text, "NATS server reported an error");
                }
            }
            Event::ServerError(ServerError::SlowConsumer(sid)) => {
                debug!(sid, "NATS slow consumer")
            }
            Event::ClientError(ClientError::Other(text)) => {
                debug!(error = %text, "NATS client error")
            }
            Event::ClientError(other) => debug!(error = %other, "NATS client error"),
            Event::LameDuckMode => info!("NATS server is shutting down (lame duck mode)"),
            Event::SlowConsumer(sid) => debug!(sid, "NATS slow consumer"),
            Event::Draining => debug!("NATS client draining"),
        }
    }

    /// A failed connect attempt: classified, and logged once per cause
    /// (again every few minutes with a count; `failure`), not per retry.
    pub(super) fn connection_problem(&mut self, failure: ConnectFailure) {
        self.failure_log.report(&failure);
        let line = failure.line();
        self.announcer.0.problem(&line);
        self.last_error = Some(line);
    }
}
