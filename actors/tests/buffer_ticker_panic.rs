//! A panic in the BufferActor's ticker (the task that drives syncs, the
//! disk-full retry and gap events every second) stops the actor, so its
//! supervisor restarts it, counted: before, the actor ran on without ticks,
//! and nothing was synced or retried again, silently.
#![cfg(feature = "failpoints")]
mod buffer_rig;

use std::time::Duration;

use buffer_rig::*;
use ingestor_actors::settings::PersistMode;

#[tokio::test]
async fn a_panic_in_the_ticker_stops_the_buffer_for_its_supervisor_to_restart() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), settings(10, PersistMode::Overflow))
        .shared()
        .expect("disk thread");
    fail::cfg("buffer::ticker", "1*panic(injected ticker panic)").unwrap();
    let (buffer, stopped) = spawn_buffer(store).await;
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the buffer stopped after its ticker panicked")
        .unwrap();
    assert!(
        buffer.get_status() == ractor::ActorStatus::Stopped,
        "{:?}",
        buffer.get_status()
    );
    fail::remove("buffer::ticker");
    scenario.teardown();
}
