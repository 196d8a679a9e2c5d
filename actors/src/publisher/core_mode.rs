//! A core-mode session (`mode = "core"`): publish a window, flush, ack.
//! "Confirmed" means flushed to the socket: best effort, as
//! docs/reference.md §2 says. A batch over the server's `max_payload` is
//! set aside, never sent and never retried at the head of the line.

use std::time::Instant;

use super::limit::Limit;
use super::session::{take, Session};
use super::PublishError;
use crate::buffer::{BufferMsg, SetAsideReason};
use crate::EncodedBatch;

impl Session {
    pub(super) async fn run_core(&mut self) -> PublishError {
        let max = self.max_in_flight();
        let limit = Limit::learn(&self.client, None);
        loop {
            let batches = match take(self.buffer.clone(), self.lease, max).await {
                Ok(batches) => batches,
                Err(e) => return e,
            };
            let Some(last) = batches.last().map(|b| b.seq) else {
                continue;
            };
            let sent = Instant::now();
            let mut count = 0;
            for batch in batches {
                let seq = batch.seq;
                match self.publish_core(batch, &limit).await {
                    Ok(None) => count += 1,
                    // Before the window's Ack, so the Ack does not take it along.
                    Ok(Some(reason)) => {
                        if self
                            .buffer
                            .cast(BufferMsg::SetAside { seq, reason })
                            .is_err()
                        {
                            return PublishError::BufferGone;
                        }
                    }
                    Err(e) => return e,
                }
            }
            match tokio::time::timeout(self.settings.ack_timeout, self.client.flush()).await {
                Ok(Ok(())) if self.connected() => {}
                Ok(Ok(())) => return PublishError::Disconnected,
                Ok(Err(e)) => return PublishError::Client(e.to_string()),
                Err(_) => return PublishError::AckTimeout { seq: last },
            }
            for _ in 0..count {
                self.confirmed_one(Some(sent));
            }
            if self
                .buffer
                .cast(BufferMsg::Ack {
                    lease: self.lease,
                    seq: last,
                })
                .is_err()
            {
                return PublishError::BufferGone;
            }
        }
    }

    /// Publishes one batch; `Some`: over what the server takes, not sent.
    async fn publish_core(
        &mut self,
        batch: EncodedBatch,
        limit: &Limit,
    ) -> Result<Option<SetAsideReason>, PublishError> {
        if !self.connected() {
            return Err(PublishError::Disconnected);
        }
        let payload = batch.payload();
        let size = payload.len();
        if let Some(reason) = limit.refuses(size) {
            return Ok(Some(reason));
        }
        let subject = self.subject(&batch);
        match self
            .client
            .publish_with_headers(subject, self.headers(&batch), payload)
            .await
        {
            Ok(()) => Ok(None),
            Err(e) => match e.kind() {
                async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
                    Ok(Some(limit.over_max_payload(size)))
                }
                _ => Err(PublishError::Client(e.to_string())),
            },
        }
    }
}
