//! How the root builds each child from what it keeps (ractor consumes
//! `Arguments`, so every restart builds them anew).

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::actor::{RootSupervisorMsg, RootSupervisorState};
use super::Child;
use crate::backoff::Backoff;
use crate::buffer::{BufferActor, BufferArgs};
use crate::installation::Installation;
use crate::monitor::{ConnectionMonitor, ConnectionMonitorArgs, DEFAULT_PING_INTERVAL};
use crate::poller::setpoint::WriteContext;
use crate::poller::spread_start;
use crate::poller::{DevicePoller, DevicePollerArgs};
use crate::publisher::{Publisher, PublisherArgs, RetryPolicy};

impl RootSupervisorState {
    /// Spawns `child`, linked to the root, from the settings and the refs of
    /// the children it needs (which must be running).
    pub(super) async fn start(
        &mut self,
        myself: &ActorRef<RootSupervisorMsg>,
        child: Child,
    ) -> Result<(), ActorProcessingErr> {
        let sup = myself.get_cell();
        let s = self.settings.clone();
        let cell = match child {
            Child::Buffer => {
                let args = BufferArgs {
                    store: self.store.clone(),
                    delivery: self.delivery.subscribe(),
                };
                let (r, _) = Actor::spawn_linked(None, BufferActor, args, sup).await?;
                self.refs.buffer = Some(r.clone());
                self.inlet_target.send_replace(Some(r.clone()));
                r.get_cell()
            }
            Child::Publisher => {
                let buffer = self.refs.buffer.clone().ok_or("buffer not running")?;
                let retry = RetryPolicy {
                    backoff: Backoff {
                        min: s.supervision.backoff_min,
                        max: s.supervision.backoff_max.min(Duration::from_secs(5)),
                    },
                    ..RetryPolicy::default()
                };
                let args = PublisherArgs {
                    settings: s.nats.clone(),
                    service_id: s.service.id.clone(),
                    installation: self.installation.clone(),
                    replaces: s.service.replaces.as_deref().and_then(Installation::parse),
                    buffer,
                    retry,
                    connection: self.connection.subscribe(),
                    delivery: self.delivery.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, Publisher, args, sup).await?;
                self.refs.publisher = Some(r.clone());
                r.get_cell()
            }
            Child::Monitor => {
                let args = ConnectionMonitorArgs {
                    settings: s.nats.clone(),
                    client_name: format!("ingestor {}", s.service.id),
                    connection: self.connection.clone(),
                    ping_interval: DEFAULT_PING_INTERVAL,
                };
                let (r, _) = Actor::spawn_linked(None, ConnectionMonitor, args, sup).await?;
                self.refs.monitor = Some(r.clone());
                r.get_cell()
            }
            Child::Poller(key) => {
                let slot = self.devices.slot(key).ok_or("no such device")?;
                let device = slot.device.clone();
                let status = slot.status.clone();
                let args = DevicePollerArgs {
                    link: self.links.link_for(&device)?,
                    first_poll: spread_start(&device.id, device.poll_interval),
                    device,
                    buffer: self.inlet.clone(),
                    backoff_min: s.supervision.backoff_min,
                    backoff_max: s.supervision.backoff_max,
                    status,
                    writes: Some(WriteContext {
                        settings: s.writes.clone(),
                        service_id: s.service.id.clone(),
                        connection: self.connection.subscribe(),
                    }),
                };
                let (r, _) = Actor::spawn_linked(None, DevicePoller, args, sup).await?;
                if let Some(slot) = self.devices.slot_mut(key) {
                    slot.poller = Some(r.clone());
                }
                r.get_cell()
            }
        };
        self.ids.insert(cell.get_id(), child);
        Ok(())
    }
}
