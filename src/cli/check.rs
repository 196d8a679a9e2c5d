//! `ingestor check`: validates the config, prints a summary and the poll plan.
//!
//! Server URLs are shown without their user info, and credentials that
//! would travel without TLS get a `warning` line (still exit 0), as does a
//! secret file (`creds_file`, `nkey_seed_file`, a TLS key) that others or
//! a group other than root's may read. A TLS device's
//! line in the plan shows `tls` and the name its certificate must carry.
//!
//! Unless `--offline`, it then asks the NATS server (at most a few
//! seconds; unreachable is only a note) what the stream's replicas mean for
//! an acknowledged batch, as the service logs at start, and warns about a
//! poll group whose largest possible batch is over what the server and
//! stream take (`poller::size`).
//!
//! Exit 0 when valid; exit 2 with every problem on stderr when not (also
//! when the file cannot be read).

use std::path::Path;
use std::process::ExitCode;

use ingestor_actors::settings::{DeviceSettings, NatsMode, Settings, TagSettings};

use ingestor_actors::credentials;
use ingestor_actors::installation::Installation;
use ingestor_actors::nats::durability::{self, LastOnId, Probe};

use crate::config;

pub(crate) fn run(path: &Path, ask_nats: bool) -> ExitCode {
    match config::load(path) {
        Ok(settings) => {
            print_summary(path, &settings);
            if let Some(warning) = credentials::plaintext_warning(&settings.nats) {
                println!("warning   {warning}");
            }
            for warning in credentials::secret_file_warnings(&settings) {
                println!("warning   {warning}");
            }
            print_poll_plan(&settings);
            if ask_nats {
                print_from_server(&settings);
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            let n = errors.problems.len();
            eprintln!("{errors}");
            eprintln!(
                "{}: {n} problem{} found, config not valid",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            ExitCode::from(2)
        }
    }
}

/// How long `check` waits for the NATS server: never long, and offline
/// (no server, a blackholed address) only a note.
const PROBE_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// What the stream's replicas mean for an acknowledged batch (one replica:
/// not yet on the server's disk), and who last published on this
/// `[service] id`, when the server answers.
fn print_from_server(settings: &Settings) {
    let nats = &settings.nats;
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    match rt.block_on(durability::probe(nats, &settings.service.id, PROBE_WITHIN)) {
        Probe::Stream {
            warning,
            last_on_id,
            limit,
        } => {
            match warning {
                Some(warning) => println!("warning   {warning}"),
                None => println!("stream    {}: replicated, acks are on a quorum", nats.stream),
            }
            print_id_owner(settings, last_on_id.as_ref());
            print_size_warnings(settings, limit, "the server's max_payload or the stream's max_msg_size");
        }
        Probe::NoStream { limit } if nats.create_stream => {
            print_size_warnings(settings, limit, "the server's max_payload");
            println!("stream    {} does not exist yet: the service creates it with one replica", nats.stream);
            if let Some(warning) = durability::single_replica_warning(&nats.stream, 1) {
                println!("warning   {warning}");
            }
        }
        Probe::NoStream { limit } => {
            print_size_warnings(settings, limit, "the server's max_payload");
            println!(
                "warning   stream {} does not exist and create_stream = false: nothing will be stored until it is created",
                nats.stream
            );
        }
        Probe::Core => {}
        Probe::Unreachable(why) => println!(
            "note      NATS not reached ({why}): the stream's durability and the id were not checked"
        ),
    }
    // A client still connecting must not keep the command alive.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
}

/// A warning per poll group whose largest possible batch is over `limit`
/// (`what` names it): such a batch is set aside, never published.
fn print_size_warnings(settings: &Settings, limit: usize, what: &str) {
    for (i, device) in settings.devices.iter().enumerate() {
        for group in ingestor_actors::poller::group::poll_groups(device) {
            let largest = ingestor_actors::poller::size::largest_batch_bytes(&group);
            if limit > 0 && largest > limit {
                println!(
                    "warning   devices[{i}] {:?} (every {}): a batch can take up to {largest} bytes, over {what} ({limit}): such a batch is set aside, never published; poll fewer or shorter tags in one group, or raise the limit",
                    device.id,
                    humantime::format_duration(group.poll_interval)
                );
            }
        }
    }
}

/// Whose the stream's last message on `[service] id` is, against this
/// `data_dir`'s installation (read only): a PC about to start on an id in
/// use hears it here, before `run` refuses to publish.
fn print_id_owner(settings: &Settings, last: Option<&LastOnId>) {
    let id = &settings.service.id;
    let Some(last) = last else {
        println!("id        {id:?}: nothing on the stream yet");
        return;
    };
    let ours = Installation::read(&settings.service.data_dir)
        .ok()
        .flatten();
    let replaces = settings.service.replaces.as_deref();
    match (&last.installation, &ours) {
        (Some(theirs), Some(ours)) if theirs == ours.as_str() => println!(
            "id        {id:?}: the stream's last message on it is this installation's ({ours})"
        ),
        (Some(theirs), _) if replaces == Some(theirs.as_str()) => println!(
            "id        {id:?}: last published by installation {theirs} {}s ago, which [service] replaces names: taken over once silent for the stream's duplicate_window",
            last.age.as_secs()
        ),
        (Some(theirs), ours) => println!(
            "warning   [service] id {id:?} is in use: the stream's last message on it is from installation {theirs} ({}s ago), this data_dir is {}. `run` would publish nothing (and keep the data): give this PC its own id, or set [service] replaces = \"{theirs}\" if it replaces that PC",
            last.age.as_secs(),
            ours.as_ref().map_or_else(|| "a new installation".to_owned(), |o| format!("installation {o}"))
        ),
        (None, _) => println!(
            "id        {id:?}: the stream's last message on it (seq {}) is from a build before installation ids",
            last.seq.unwrap_or_default()
        ),
    }
}

fn print_summary(path: &Path, s: &Settings) {
    let tags: usize = s.devices.iter().map(|d| d.tags.len()).sum();
    println!("{}: valid", path.display());
    println!(
        "service   {} (data in {})",
        s.service.id,
        s.service.data_dir.display()
    );
    let mode = match s.nats.mode {
        NatsMode::Jetstream => format!("jetstream, stream {}", s.nats.stream),
        NatsMode::Core => "core (no receipt: not loss-free)".to_owned(),
    };
    println!(
        "nats      {} ({mode}), subjects {}.{}.<device>",
        credentials::redacted_servers(&s.nats),
        s.nats.subject_prefix,
        s.service.id
    );
    println!(
        "buffer    {} batches in memory, persist {}, disk_max {}, disk_min_free {} ({} when full)",
        s.buffer.memory_batches,
        lower(s.buffer.persist),
        s.buffer.disk_max,
        s.buffer.disk_min_free,
        lower(s.buffer.when_disk_full)
    );
    println!("metrics   http://{}/metrics", s.metrics.listen);
    println!("devices   {} with {tags} tags", s.devices.len());
    let writable: Vec<&str> = s
        .devices
        .iter()
        .filter(|d| d.has_writable_tags())
        .map(|d| d.id.as_str())
        .collect();
    if !writable.is_empty() {
        println!(
            "writes    {}, requests on {} for {} (at most one per tag per {}, timeout {})",
            if s.writes.enabled {
                "enabled"
            } else {
                "disabled (writable tags refuse every write)"
            },
            s.writes.subject(&s.service.id, "<device>"),
            writable.join(", "),
            humantime::format_duration(s.writes.rate_per_tag),
            humantime::format_duration(s.writes.timeout)
        );
    }
}

/// The poll plan: each device and its tags, then the Modbus requests one
/// poll makes (function, start, count and the tags each serves,
/// docs/reference.md §1), per poll group when its tags poll at several intervals.
fn print_poll_plan(s: &Settings) {
    println!();
    println!("poll plan:");
    for d in &s.devices {
        println!(
            "  {}  {} unit {}  every {}  timeout {}",
            d.id,
            endpoint(d),
            d.unit,
            humantime::format_duration(d.poll_interval),
            humantime::format_duration(d.timeout)
        );
        for t in &d.tags {
            println!("    {}", tag_line(t));
        }
        // The Modbus requests one poll makes (per poll group when several).
        for line in ingestor_actors::poller::describe_plan(d).lines().skip(1) {
            println!("  {line}");
        }
    }
}

fn endpoint(d: &DeviceSettings) -> String {
    match (&d.address, &d.serial) {
        (Some(_), _) if d.tls => format!(
            "{} (tls, certificate for {:?}{})",
            d.socket_address().unwrap_or_default(),
            d.tls_server_name().unwrap_or_default(),
            if d.tls_cert_file.is_some() {
                ", client certificate"
            } else {
                ""
            }
        ),
        (Some(address), _) => format!("{address} ({})", lower(d.framing)),
        (None, Some(serial)) => format!("{serial} {} baud", d.baud_rate),
        (None, None) => String::from("-"),
    }
}

fn tag_line(t: &TagSettings) -> String {
    let mut line = format!(
        "{:<20} {} {}  {}",
        t.name,
        lower(t.register),
        t.address,
        lower(t.kind)
    );
    if let Some(bit) = t.bit {
        line.push_str(&format!(" bit {bit}"));
    }
    if let Some(length) = t.length {
        line.push_str(&format!(" x{length}"));
    }
    if t.span() > 1 && t.length.is_none() {
        line.push_str(&format!(" {}", lower(t.order)));
    }
    if t.scale.is_some() || t.offset.is_some() {
        line.push_str(&format!(
            " *{}+{}",
            t.scale.unwrap_or(1.0),
            t.offset.unwrap_or(0.0)
        ));
    }
    if let Some(unit) = &t.unit {
        line.push_str(&format!(" [{unit}]"));
    }
    if let Some(interval) = t.poll_interval {
        line.push_str(&format!(" every {}", humantime::format_duration(interval)));
    }
    if let Some(band) = t.deadband {
        line.push_str(&format!(" deadband {band}"));
    }
    if let Some(silence) = t.max_silence {
        line.push_str(&format!(
            " max_silence {}",
            humantime::format_duration(silence)
        ));
    }
    if t.writable {
        match (t.min, t.max) {
            (Some(min), Some(max)) => line.push_str(&format!(" writable {min}..={max}")),
            _ => line.push_str(" writable"),
        }
    }
    line
}

/// An enum value as the config file spells it (`DropOldest` -> `drop_oldest`).
fn lower(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::from("?"),
    }
}
