//! Writes as a plant makes them: pushes keep coming, each waiting for its
//! own synced reply, `window` outstanding at any time (a sliding window,
//! not groups in lock-step). This is where the pipelined group commit
//! shows: the next group is accepted while the last one syncs.

use std::collections::VecDeque;
use std::time::Instant;

use ingestor_actors::buffer::{BufferMsg, PushError};
use ingestor_actors::EncodedBatch;
use ractor::concurrency::OneshotReceiver;
use ractor::ActorRef;

/// Batches/s from the first push to the last synced reply.
pub async fn ours_write_streaming(
    buffer: &ActorRef<BufferMsg>,
    batches: Vec<EncodedBatch>,
    window: usize,
) -> f64 {
    let n = batches.len();
    let mut outstanding: VecDeque<OneshotReceiver<Result<u64, PushError>>> = VecDeque::new();
    let start = Instant::now();
    for b in batches {
        if outstanding.len() >= window {
            if let Some(rx) = outstanding.pop_front() {
                rx.await.expect("reply").expect("accepted");
            }
        }
        let (tx, rx) = ractor::concurrency::oneshot();
        buffer
            .cast(BufferMsg::Push(b, Some(tx.into())))
            .expect("cast");
        outstanding.push_back(rx);
    }
    for rx in outstanding {
        rx.await.expect("reply").expect("accepted");
    }
    n as f64 / start.elapsed().as_secs_f64()
}
