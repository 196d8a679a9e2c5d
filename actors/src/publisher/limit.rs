//! What NATS takes: the biggest message the server (`max_payload`, from
//! its INFO) and the stream (`max_msg_size`) accept.
//!
//! A batch over either can never be published: the session tells the
//! buffer to set it aside (`BufferMsg::SetAside`, reason `too_big`, kept in
//! its quarantine) and goes on with the next, instead of retrying it at the
//! head of the line forever. It is found two ways:
//! - before publishing, when the payload alone is over a limit (certain,
//!   whatever the headers add);
//! - from the refusal, when the headers took it over: the client's own
//!   `max_payload` check, or JetStream's "message size exceeds maximum"
//!   (error code 10054) in the PubAck.

use async_nats::jetstream::context::{PublishError as AckError, PublishErrorKind};
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::ErrorCode;
use async_nats::Client;

use crate::buffer::SetAsideReason;

/// The limits of one session's server and stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limit {
    /// The server's `max_payload` (headers and payload).
    max_payload: usize,
    /// The stream's `max_msg_size` (`None`: no limit).
    max_msg_size: Option<usize>,
}

impl Limit {
    /// The limits as the server and (JetStream) the stream state them now.
    pub(super) fn learn(client: &Client, stream: Option<&Stream>) -> Limit {
        let max_msg_size = stream
            .map(|s| s.cached_info().config.max_message_size)
            .and_then(|m| usize::try_from(m).ok())
            .filter(|m| *m > 0);
        Limit {
            max_payload: client.server_info().max_payload,
            max_msg_size,
        }
    }

    /// The smaller of the two.
    pub(super) fn smallest(&self) -> usize {
        match self.max_msg_size {
            Some(m) if self.max_payload == 0 => m,
            Some(m) => m.min(self.max_payload),
            None => self.max_payload,
        }
    }

    /// A payload of `size` bytes is over a limit whatever its headers add.
    pub(super) fn refuses(&self, size: usize) -> Option<SetAsideReason> {
        let limit = self.smallest();
        (limit > 0 && size > limit).then_some(SetAsideReason::TooBig { size, limit })
    }

    /// The client refused the publish as over `max_payload`.
    pub(super) fn over_max_payload(&self, size: usize) -> SetAsideReason {
        SetAsideReason::TooBig {
            size,
            limit: self.max_payload,
        }
    }

    /// The PubAck refused the message as too big for the stream.
    pub(super) fn refused_ack(&self, error: &AckError) -> Option<SetAsideReason> {
        let too_big = match error.kind() {
            PublishErrorKind::MaxPayloadExceeded => true,
            PublishErrorKind::Other => std::error::Error::source(error)
                .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
                .is_some_and(|e| {
                    matches!(
                        e.error_code(),
                        ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM
                            | ErrorCode::STREAM_HEADER_EXCEEDS_MAXIMUM
                    )
                }),
            _ => false,
        };
        too_big.then_some(SetAsideReason::TooBig {
            size: 0,
            limit: self.smallest(),
        })
    }
}
