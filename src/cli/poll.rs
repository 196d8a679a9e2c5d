//! `ingestor poll`: reads every tag once and prints a table (device, tag,
//! value, unit or error), for commissioning a device. Exit 0 when every tag
//! was read, 1 when some failed, 2 when the config is invalid (every problem
//! listed, as by `ingestor check`). A device's poll groups (tags with their
//! own `poll_interval`) are read one after the other, with the requests the
//! service makes; `deadband` and `max_silence` do not apply: every value is
//! shown. The WRITE column says which tags `ingestor write` and NATS
//! write requests may set (`-`: read-only; `min..=max`; `yes`).

use std::path::Path;
use std::process::ExitCode;

use ingestor_actors::poller::{poll_groups, DeviceReader, Link, Links, PollOutcome, PollResult};
use ingestor_actors::settings::{DeviceSettings, TagSettings};

pub(crate) fn run(config: &Path, device: Option<&str>) -> ExitCode {
    let settings = match crate::config::load(config) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let devices: Vec<DeviceSettings> = settings
        .devices
        .iter()
        .filter(|d| device.is_none_or(|id| d.id == id))
        .cloned()
        .collect();
    if devices.is_empty() {
        let known: Vec<&str> = settings.devices.iter().map(|d| d.id.as_str()).collect();
        match device {
            Some(id) => eprintln!(
                "ingestor poll: no device {id:?} in {} (devices: {})",
                config.display(),
                known.join(", ")
            ),
            None => eprintln!("ingestor poll: {} has no [[devices]]", config.display()),
        }
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ingestor poll: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let results = runtime.block_on(read_once(devices));
    let table = Table::from_results(&results);
    print!("{}", table.render());
    println!("{} of {} tags read", table.read, table.read + table.failed);
    if table.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Every device once, all at the same time (devices on one link queue on it).
async fn read_once(
    devices: Vec<DeviceSettings>,
) -> Vec<(DeviceSettings, Result<PollOutcome, String>)> {
    let mut links = Links::new();
    let mut tasks = Vec::new();
    for device in devices {
        let link = links.link_for(&device);
        tasks.push(tokio::spawn(async move {
            let outcome = match link {
                Ok(link) => Ok(read_groups(&device, link).await),
                Err(e) => Err(e.to_string()),
            };
            (device, outcome)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        match task.await {
            Ok(r) => results.push(r),
            Err(e) => eprintln!("ingestor poll: a device read failed: {e}"),
        }
    }
    results
}

/// Every poll group of `device` once, one after the other, with the
/// requests `run` makes (coalescing within a group only); values and
/// errors of all groups together.
async fn read_groups(device: &DeviceSettings, link: Link) -> PollOutcome {
    let mut all: Option<PollOutcome> = None;
    for group in poll_groups(device) {
        let outcome = DeviceReader::new(group, link.clone()).poll().await;
        match all.as_mut() {
            None => all = Some(outcome),
            Some(all) => {
                all.values.extend(outcome.values);
                all.errors.extend(outcome.errors);
                all.answered |= outcome.answered;
                all.requests += outcome.requests;
            }
        }
    }
    all.unwrap_or(PollOutcome {
        values: Vec::new(),
        errors: Vec::new(),
        result: PollResult::Ok,
        answered: false,
        requests: 0,
    })
}

/// The WRITE column: `-` when the tag is read-only, its `min..=max` for a
/// writable number, `yes` for a writable bool or string.
fn writable(tag: &TagSettings) -> String {
    match (tag.writable, tag.min, tag.max) {
        (false, ..) => "-".into(),
        (true, Some(min), Some(max)) => format!("{min}..={max}"),
        (true, ..) => "yes".into(),
    }
}

struct Table {
    rows: Vec<[String; 5]>,
    read: usize,
    failed: usize,
}

impl Table {
    fn from_results(results: &[(DeviceSettings, Result<PollOutcome, String>)]) -> Self {
        let mut table = Table {
            rows: Vec::new(),
            read: 0,
            failed: 0,
        };
        for (device, outcome) in results {
            for tag in &device.tags {
                let unit = tag.unit.clone().unwrap_or_default();
                let cells = match outcome {
                    Err(e) => Err(e.clone()),
                    Ok(o) => match o.values.iter().find(|(n, _)| *n == tag.name) {
                        Some((_, v)) => Ok((v.to_string(), unit)),
                        None => {
                            let reason = o
                                .errors
                                .iter()
                                .find(|(n, _)| *n == tag.name)
                                .map(|(_, e)| e.as_str());
                            Err(reason.unwrap_or("not read").to_string())
                        }
                    },
                };
                let (value, note) = match cells {
                    Ok(cells) => {
                        table.read += 1;
                        cells
                    }
                    Err(reason) => {
                        table.failed += 1;
                        ("-".to_string(), format!("error: {reason}"))
                    }
                };
                table.rows.push([
                    device.id.clone(),
                    tag.name.clone(),
                    value,
                    writable(tag),
                    note,
                ]);
            }
        }
        table
    }

    fn render(&self) -> String {
        let header = ["DEVICE", "TAG", "VALUE", "WRITE", "UNIT / ERROR"].map(String::from);
        let mut widths = header.clone().map(|h| h.len());
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let line = format!(
                "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}
