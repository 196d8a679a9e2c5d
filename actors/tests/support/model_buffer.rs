//! A test-only stand-in for the BufferActor: the same `BufferMsg` contract
//! over two `VecDeque`s, no disk. Used until the real BufferActor lands.

use std::collections::VecDeque;

use ingestor_actors::buffer::{BufferMsg, BufferStats};
use ingestor_actors::Batch;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

pub struct ModelBuffer;

pub struct ModelState {
    queue: VecDeque<Batch>,
    in_flight: VecDeque<Batch>,
    next_seq: u64,
    parked: Option<(usize, RpcReplyPort<Vec<Batch>>)>,
}

impl ModelState {
    fn serve(&mut self) {
        let Some((max, reply)) = self.parked.take() else {
            return;
        };
        if reply.is_closed() {
            return;
        }
        if self.queue.is_empty() {
            self.parked = Some((max, reply));
            return;
        }
        let n = max.min(self.queue.len());
        let batches: Vec<Batch> = self.queue.drain(..n).collect();
        match reply.send(batches.clone()) {
            Ok(()) => self.in_flight.extend(batches),
            Err(_) => {
                for b in batches.into_iter().rev() {
                    self.queue.push_front(b);
                }
            }
        }
    }
}

impl Actor for ModelBuffer {
    type Msg = BufferMsg;
    type State = ModelState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<BufferMsg>,
        _args: (),
    ) -> Result<ModelState, ActorProcessingErr> {
        Ok(ModelState {
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            next_seq: 1,
            parked: None,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<BufferMsg>,
        msg: BufferMsg,
        state: &mut ModelState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BufferMsg::Push(mut batch, reply) => {
                batch.seq = state.next_seq;
                state.next_seq += 1;
                let seq = batch.seq;
                state.queue.push_back(batch);
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(seq));
                }
                state.serve();
            }
            BufferMsg::Take { max, reply } => {
                state.parked = Some((max.max(1), reply));
                state.serve();
            }
            BufferMsg::Ack(seq) => {
                while state.in_flight.front().is_some_and(|b| b.seq <= seq) {
                    state.in_flight.pop_front();
                }
            }
            BufferMsg::Nack => {
                while let Some(b) = state.in_flight.pop_back() {
                    state.queue.push_front(b);
                }
                state.serve();
            }
            BufferMsg::Connection(_) => {}
            BufferMsg::Stats(reply) => {
                let _ = reply.send(BufferStats {
                    memory_batches: state.queue.len() as u64,
                    disk_batches: 0,
                    disk_bytes: 0,
                    in_flight: state.in_flight.len() as u64,
                    oldest_seq: state
                        .in_flight
                        .front()
                        .or(state.queue.front())
                        .map(|b| b.seq),
                    next_seq: state.next_seq,
                });
            }
            BufferMsg::Close(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
        Ok(())
    }
}
