//! Fault injection for tests (cargo feature `fault-injection`, off by default
//! and never in release builds): a test arms a fault for a named actor, and
//! that actor panics or hangs on its next message.
//!
//! Every actor calls [`hit`] first thing in its message handler; without the
//! feature it is an empty inline function.
//!
//! Invariants: the feature cannot be compiled into a build with the release
//! profile, whatever the environment says (`build.rs` stops such a build:
//! it asks cargo for the profile, not for `debug_assertions`, which
//! `CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true` turns on; the
//! `compile_error!` below catches a build without that script), so no
//! installed ingestor has the `POST /fault/...` endpoint; and only the actor
//! kinds in [`ACTORS`] can be armed, so a stray request cannot fill memory.

#[cfg(all(feature = "fault-injection", not(ingestor_test_build)))]
compile_error!(
    "the `fault-injection` feature lets an HTTP request crash the service: \
     it is for test builds only and cannot be part of a release build"
);

/// The actor kinds that call [`hit`] in their message handler.
pub const ACTORS: &[&str] = &["buffer", "publisher", "monitor", "poller"];

/// The actors' own tasks that call [`hit`]: the publisher's session (on
/// each batch taken), a link (on each request), a poll (before it reads)
/// and the monitor's connect attempt (before it connects).
pub const TASKS: &[&str] = &[
    "publisher.session",
    "poller.link",
    "poller.poll",
    "monitor.connect",
];

/// Whether `actor` is one of [`ACTORS`] or [`TASKS`]: the only names a
/// fault can be armed for.
pub fn is_known_actor(actor: &str) -> bool {
    ACTORS.contains(&actor) || TASKS.contains(&actor)
}

/// What an armed actor does on its next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Panic in the handler (a bug).
    Panic,
    /// Never return from the handler (a deadlock): for the watchdog.
    Hang,
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "panic" => Ok(Fault::Panic),
            "hang" => Ok(Fault::Hang),
            other => Err(format!("unknown fault {other:?}: panic | hang")),
        }
    }
}

#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::Mutex;

    use super::Fault;

    static ARMED: Mutex<Vec<(String, Fault)>> = Mutex::new(Vec::new());

    /// Arms `fault` for the next message of the actor kind `actor`
    /// (one of [`super::ACTORS`]); any other name is refused.
    pub fn arm(actor: &str, fault: Fault) -> Result<(), String> {
        if !super::is_known_actor(actor) {
            return Err(format!(
                "unknown actor {actor:?}: one of {}, {}",
                super::ACTORS.join(", "),
                super::TASKS.join(", ")
            ));
        }
        let mut armed = ARMED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        armed.push((actor.to_owned(), fault));
        Ok(())
    }

    /// Fires an armed fault for `actor`, once.
    pub async fn hit(actor: &str) {
        let fault = {
            let mut armed = ARMED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let found = armed.iter().position(|(a, _)| a == actor);
            found.map(|i| armed.remove(i).1)
        };
        match fault {
            Some(Fault::Panic) => panic!("injected fault: {actor} panics"),
            Some(Fault::Hang) => {
                tracing::warn!(actor, "injected fault: hanging");
                std::future::pending::<()>().await;
            }
            None => {}
        }
    }
}

#[cfg(feature = "fault-injection")]
pub use armed::{arm, hit};

/// Without the feature: nothing to fire.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub async fn hit(_actor: &str) {}

#[cfg(all(test, feature = "fault-injection"))]
mod tests {
    use super::*;

    #[test]
    fn arming_an_unknown_actor_is_refused() {
        assert!(arm("nobody", Fault::Panic).is_err());
        assert!(arm("", Fault::Hang).is_err());
    }
}
