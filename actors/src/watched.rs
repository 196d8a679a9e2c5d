//! Spawned tasks that cannot die quietly.
//!
//! An actor's own tasks (the publisher's session, a poller's poll, a link)
//! run outside its message handler, so a panic in one is not the actor's:
//! ractor never hears of it, and the actor waits forever for a message the
//! task was to send (nothing published while `/health` says ok, a device
//! never polled again). [`spawn`] catches the panic, logs it with the actor
//! and the task, and hands it to `on_panic`, which tells the actor; the
//! actor then fails (its handler returns the [`TaskPanicked`] error) and its
//! supervisor restarts it, counted in `ingestor_actor_restarts_total`.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::task::JoinHandle;

/// A task of `actor` panicked: the error its handler fails with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {actor}'s {task} task panicked: {panic}")]
pub struct TaskPanicked {
    /// The actor kind (`publisher`, `poller`).
    pub actor: &'static str,
    /// Which of its tasks (`session`, `poll`, `link`).
    pub task: &'static str,
    /// The panic's message.
    pub panic: String,
}

/// Spawns `task` of `actor`; if it panics, logs that at ERROR and calls
/// `on_panic` with what happened. Aborting the task is no panic.
pub fn spawn<F>(
    actor: &'static str,
    task: &'static str,
    run: F,
    on_panic: impl FnOnce(TaskPanicked) + Send + 'static,
) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(panic) = AssertUnwindSafe(run).catch_unwind().await {
            on_panic(caught(actor, task, panic.as_ref()));
        }
    })
}

/// As [`spawn`], for a helper task of `actor` (a ticker, a watch
/// follower) whose panic simply stops that actor: its supervisor restarts
/// it (counted), and the new one starts the task afresh.
pub fn spawn_stopping<F>(
    kind: &'static str,
    task: &'static str,
    run: F,
    actor: ractor::ActorCell,
) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    spawn(kind, task, run, move |panicked| {
        actor.stop(Some(panicked.to_string()));
    })
}

/// Logs a caught panic and says what it was.
pub fn caught(
    actor: &'static str,
    task: &'static str,
    panic: &(dyn std::any::Any + Send),
) -> TaskPanicked {
    let panic = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    tracing::error!(actor, task, %panic, "a task of the {actor} panicked");
    TaskPanicked { actor, task, panic }
}
