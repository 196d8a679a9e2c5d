//! `ingestor`: polls Modbus devices and delivers every reading to NATS.
//!
//! This binary is the thin service around `ingestor-actors`: the command
//! line (here), the config file (`config`), the commands (`cli`) and
//! telemetry (`telemetry`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;
mod config;
mod service;
mod telemetry;

/// Polls Modbus devices and delivers every reading to NATS, losing nothing.
#[derive(Debug, Parser)]
#[command(name = "ingestor", version, about)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

/// `-c FILE`, shared by every command that reads the config.
#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// Config file [default: $INGESTOR_CONFIG, /etc/ingestor/ingestor.toml, config/default.toml]
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self) -> PathBuf {
        config::resolve_path(self.config.as_deref())
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service until SIGTERM/SIGINT.
    Run(ConfigArg),
    /// Validate the config and print the poll plan (and, when the NATS
    /// server answers, what its stream's replicas mean for an ack).
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Do not contact NATS (the config and its files only).
        #[arg(long)]
        offline: bool,
    },
    /// Read every tag once and print a table (commissioning).
    Poll {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
    },
    /// Write one writable tag straight to its device (no NATS), with the
    /// checks of a NATS write, and print the value read back.
    Write {
        #[command(flatten)]
        config: ConfigArg,
        /// The device's id.
        #[arg(long)]
        device: String,
        /// The tag's name.
        tag: String,
        /// The value: a number, true/false, or text for a string tag.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Serve the config's devices as a Modbus TCP slave with changing values.
    Simulate {
        #[command(flatten)]
        config: ConfigArg,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5020")]
        listen: String,
        /// Frames to speak: "tcp" (MBAP) or "rtu" (RTU frames over TCP, like a
        /// serial gateway). Default: rtu when every device of the config says
        /// framing = "rtu", else tcp.
        #[arg(long, value_parser = ["tcp", "rtu"])]
        framing: Option<String>,
        #[command(flatten)]
        tls: cli::simulate::TlsArgs,
    },
    /// Run a simulator and the service together from config/demo.toml.
    Demo,
    /// Is the record in the stream complete? Per installation: seqs,
    /// explained gaps, missing ranges, doubles, order.
    Audit {
        #[command(flatten)]
        config: ConfigArg,
        /// Only messages stored since this time (RFC 3339) or this long ago ("2h").
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only this installation.
        #[arg(long, value_name = "ID")]
        installation: Option<String>,
        /// One JSON document on stdout, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Offline view and check of the on-disk backlog.
    Spool {
        #[command(subcommand)]
        command: SpoolCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SpoolCommand {
    /// Batches, bytes, oldest and newest seq and time.
    Stats(ConfigArg),
    /// Read every record, set unreadable ones aside, report counts.
    Check(ConfigArg),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own status; `check` and `audit` print reports
    // (the NATS client's connection notes would only clutter them).
    let level = if matches!(
        cli.command,
        Command::Demo | Command::Check { .. } | Command::Audit { .. }
    ) {
        "warn"
    } else {
        "info"
    };
    telemetry::init_logging(cli.log_json, level);
    match cli.command {
        Command::Run(c) => cli::run::run(&c.path()),
        Command::Check { config, offline } => cli::check::run(&config.path(), !offline),
        Command::Poll { config, device } => cli::poll::run(&config.path(), device.as_deref()),
        Command::Write {
            config,
            device,
            tag,
            value,
        } => cli::write::run(&config.path(), &device, &tag, &value),
        Command::Simulate {
            config,
            listen,
            framing,
            tls,
        } => cli::simulate::run(&config.path(), &listen, framing.as_deref(), &tls),
        Command::Demo => cli::demo::run(),
        Command::Audit {
            config,
            since,
            installation,
            json,
        } => cli::audit::run(
            &config.path(),
            &cli::audit::AuditArgs {
                since: since.as_deref(),
                installation: installation.as_deref(),
                json,
            },
        ),
        Command::Spool { command } => match command {
            SpoolCommand::Stats(c) => cli::spool::stats(&c.path()),
            SpoolCommand::Check(c) => cli::spool::check(&c.path()),
        },
    }
}
