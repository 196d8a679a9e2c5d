//! What `/metrics` renders: the recorder's text without the series of the
//! devices a reload removed, so their alerts stop (`ingestor_device_up` = 1
//! for a device that no longer exists would fire forever).
//!
//! The exporter has no call to delete one series, only an idle timeout for
//! all of them, which would also drop the series `metrics::install`
//! registers at zero for the alerts. So [`RemovedDevices`] (written by the
//! reload) tells the rendering which `device` label values are gone; their
//! series stay in the recorder (a few per device ever configured) and come
//! back, counters going on, if the device is added again.

use std::collections::BTreeSet;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

/// Devices that were configured and are no longer: the reload is the one
/// writer, `/metrics` the readers ([`Exposition`]).
pub(crate) struct RemovedDevices(watch::Sender<Arc<BTreeSet<String>>>);

impl RemovedDevices {
    /// None removed yet.
    pub(crate) fn new() -> Self {
        RemovedDevices(watch::Sender::new(Arc::default()))
    }

    /// A reload applied: `removed` are gone, `configured` (all devices of
    /// the new config) are there, also one that was removed before.
    pub(crate) fn update<'a>(
        &self,
        removed: impl IntoIterator<Item = &'a str>,
        configured: impl IntoIterator<Item = &'a str>,
    ) {
        let mut gone = BTreeSet::clone(&self.0.borrow());
        gone.extend(removed.into_iter().map(str::to_owned));
        for id in configured {
            gone.remove(id);
        }
        self.0.send_replace(Arc::new(gone));
    }

    /// What `/metrics` renders, with these devices left out.
    pub(crate) fn exposition(&self, handle: PrometheusHandle) -> Exposition {
        Exposition {
            handle,
            removed: Some(self.0.subscribe()),
        }
    }
}

/// The recorder's text for `/metrics`, without the series of removed devices.
#[derive(Clone)]
pub(crate) struct Exposition {
    handle: PrometheusHandle,
    removed: Option<watch::Receiver<Arc<BTreeSet<String>>>>,
}

/// Every series, nothing left out (tests, a service without reloads).
impl From<PrometheusHandle> for Exposition {
    fn from(handle: PrometheusHandle) -> Self {
        Exposition {
            handle,
            removed: None,
        }
    }
}

impl Exposition {
    /// The recorder's handle (for its upkeep).
    pub(crate) fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }

    /// The text format, sample lines with a removed `device` left out.
    pub(crate) fn render(&self) -> String {
        let text = self.handle.render();
        let Some(removed) = &self.removed else {
            return text;
        };
        let removed = Arc::clone(&removed.borrow());
        if removed.is_empty() {
            return text;
        }
        text.lines()
            .filter(|line| device_label(line).is_none_or(|d| !removed.contains(d)))
            .flat_map(|line| [line, "\n"])
            .collect()
    }
}

/// The `device` label of a sample line (ids are `[A-Za-z0-9_-]+`, so the
/// value holds no quote); `None` for comments and series without one.
fn device_label(line: &str) -> Option<&str> {
    if line.starts_with('#') {
        return None;
    }
    let labels = &line[line.find('{')?..];
    let (at, key) = labels
        .match_indices("device=\"")
        .find(|(i, _)| matches!(labels.as_bytes().get(i.wrapping_sub(1)), Some(b'{' | b',')))?;
    let value = &labels[at + key.len()..];
    Some(&value[..value.find('"')?])
}

#[cfg(test)]
mod tests {
    use super::device_label;

    #[test]
    fn device_label_is_found_only_as_a_whole_label() {
        let line = "ingestor_polls_total{device=\"meter-07\",result=\"ok\"} 3";
        assert_eq!(device_label(line), Some("meter-07"));
        let line = "ingestor_x{result=\"ok\",device=\"a_b\"} 1";
        assert_eq!(device_label(line), Some("a_b"));
        assert_eq!(device_label("ingestor_x{subdevice=\"a\"} 1"), None);
        assert_eq!(
            device_label("# HELP ingestor_device_up{device=\"x\"}"),
            None
        );
        assert_eq!(device_label("ingestor_published_total 4"), None);
    }
}
