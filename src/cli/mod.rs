//! One module per command of docs/reference.md §1.

pub(crate) mod audit;
pub(crate) mod check;
pub(crate) mod demo;
pub(crate) mod poll;
pub(crate) mod run;
pub(crate) mod simulate;
pub(crate) mod spool;
mod spool_copy;
pub(crate) mod write;
