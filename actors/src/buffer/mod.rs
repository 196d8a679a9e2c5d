//! The store-and-forward buffer (design note to be written with the implementation).

mod actor;

pub use actor::{BufferActor, BufferMsg, BufferStats};
