//! What the current client's events mean for the connection state, and how a
//! connection problem is reported (once per cause, with what to check).

use async_nats::{ClientError, Event, ServerError};
use ractor::ActorRef;
use tracing::{debug, error, info, warn};

use super::actor::{ConnectionMonitorMsg, ConnectionMonitorState};

impl ConnectionMonitorState {
    pub(super) fn on_event(&mut self, myself: &ActorRef<ConnectionMonitorMsg>, event: Event) {
        match event {
            // `Connected` comes from the attempt task, with the client.
            Event::Connected => {}
            Event::Disconnected | Event::Closed => self.on_disconnected(myself),
            Event::ServerError(ServerError::AuthorizationViolation) => {
                self.connection_problem("authorization violation".into())
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

    /// A failed connect attempt: logged once per distinct cause, not per retry.
    pub(super) fn connection_problem(&mut self, text: String) {
        if self.last_error.as_deref() == Some(text.as_str()) {
            debug!(error = %text, "NATS connect attempt failed again");
            return;
        }
        let lower = text.to_ascii_lowercase();
        if lower.contains("authorization") || lower.contains("authentication") {
            error!(
                error = %text,
                "NATS refused our credentials: check [nats] token / user + password / \
                 creds_file / nkey_seed_file; batches stay buffered, retrying"
            );
        } else if lower.contains("tls") {
            error!(
                error = %text,
                "TLS to NATS failed: check [nats] ca_file / cert_file / key_file / \
                 tls_required against the server; batches stay buffered, retrying"
            );
        } else if self.tls_configured {
            warn!(
                error = %text,
                "cannot reach NATS (server down, unreachable, or the TLS handshake failed: \
                 check [nats] ca_file / cert_file / key_file); batches stay buffered, retrying"
            );
        } else {
            warn!(error = %text, "cannot reach NATS; batches stay buffered, retrying");
        }
        self.announcer.0.problem(&text);
        self.last_error = Some(text);
    }
}
