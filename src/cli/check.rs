//! `ingestor check`: validates the config, prints a summary and the poll plan.
//!
//! Server URLs are shown without their user info, and credentials that
//! would travel without TLS get a `warning` line (still exit 0), as does a
//! secret file (`creds_file`, `nkey_seed_file`, a TLS key) that others or
//! a group other than root's may read. A TLS device's
//! line in the plan shows `tls` and the name its certificate must carry.
//!
//! Exit 0 when valid; exit 2 with every problem on stderr when not (also
//! when the file cannot be read).

use std::path::Path;
use std::process::ExitCode;

use ingestor_actors::settings::{DeviceSettings, NatsMode, Settings, TagSettings};

use ingestor_actors::credentials;

use crate::config;

pub(crate) fn run(path: &Path) -> ExitCode {
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
    line
}

/// An enum value as the config file spells it (`DropOldest` -> `drop_oldest`).
fn lower(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::from("?"),
    }
}
