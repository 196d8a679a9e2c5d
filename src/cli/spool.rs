//! `ingestor spool stats|check`: the on-disk backlog, offline.
//!
//! Both refuse to run beside a live service (exit 1), and neither
//! publishes nor deletes anything. `check` opens the spool itself (it sets
//! unreadable records and journals aside); `stats` changes nothing: it
//! looks at a private copy (`spool_copy`).

use std::path::Path;
use std::process::ExitCode;

use ingestor_actors::buffer::{Read, Spool};
use ingestor_actors::installation::Installation;
use ingestor_actors::EncodedBatch;

use super::spool_copy::{self, SpoolCopy};
use crate::config;

/// The data dir named by the config (exit 2 on a bad config).
fn data_dir(path: &Path) -> Result<std::path::PathBuf, ExitCode> {
    let settings = config::load(path).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(2)
    })?;
    Ok(settings.service.data_dir)
}

/// Opens the spool named by the config, or says why not (exit 2 bad
/// config, 1 otherwise); with how many journals its open set aside.
fn open_reporting(path: &Path) -> Result<(Spool, usize), ExitCode> {
    open_dir(&data_dir(path)?)
}

fn open_dir(dir: &Path) -> Result<(Spool, usize), ExitCode> {
    match Spool::open(dir) {
        Ok((spool, report)) => Ok((spool, report.journals_set_aside)),
        Err(e) => {
            eprintln!("ingestor spool: {e}");
            Err(ExitCode::from(1))
        }
    }
}

fn describe(b: Option<&EncodedBatch>) -> String {
    b.map_or_else(
        || "-".to_owned(),
        |b| format!("seq {} at {} ({})", b.seq, b.ts_rfc3339(), b.device()),
    )
}

/// A copy of the spool to look at, or why not.
fn copy_of(path: &Path) -> Result<Option<SpoolCopy>, ExitCode> {
    spool_copy::copy(&data_dir(path)?).map_err(|e| {
        eprintln!("ingestor spool stats: {e}");
        ExitCode::from(1)
    })
}

pub(crate) fn stats(path: &Path) -> ExitCode {
    let copy = match copy_of(path) {
        Ok(Some(copy)) => copy,
        Ok(None) => {
            println!("batches       0 (no spool yet)");
            return ExitCode::SUCCESS;
        }
        Err(code) => return code,
    };
    // What the open does to the copy (a journal set aside, say) is told
    // below in terms of the real spool, not logged with the copy's paths.
    let opened =
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::new(), || {
            open_dir(copy.data_dir())
        });
    let (mut spool, journals) = match opened {
        Ok(s) => s,
        Err(code) => return code,
    };
    // An unreadable record is reported, not moved (the copy goes anyway).
    spool.set_read_only();
    if journals > 0 {
        println!("journal       {journals} cannot be replayed: the next start or `spool check` sets it aside as *.jnl.damaged");
    }
    let oldest = match spool.oldest() {
        Ok(Some(Read::Batch(b, _))) => Some(b),
        Ok(_) => None,
        Err(e) => {
            eprintln!("ingestor spool stats: {e}");
            return ExitCode::from(1);
        }
    };
    let newest = spool.newest().unwrap_or(None);
    println!("batches       {}", spool.live_count());
    println!(
        "bytes         {} (records; {} on disk with index and tombstones)",
        spool.live_bytes(),
        spool.disk_space()
    );
    println!("oldest        {}", describe(oldest.as_ref()));
    println!("newest        {}", describe(newest.as_ref()));
    println!("acknowledged  up to seq {}", spool.acked());
    println!("next seq      after {} (reserved)", spool.reserved());
    println!("quarantined   {}", spool.quarantined().unwrap_or(0));
    // Read only: the first `run` creates it.
    let installation = match Installation::read(spool.dir().parent().unwrap_or(spool.dir())) {
        Ok(Some(id)) => id.to_string(),
        Ok(None) => "none yet (the first `ingestor run` creates it)".to_owned(),
        Err(e) => format!("unreadable: {e}"),
    };
    println!("installation  {installation}");
    ExitCode::SUCCESS
}

pub(crate) fn check(path: &Path) -> ExitCode {
    let (mut spool, journals) = match open_reporting(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if journals > 0 {
        println!(
            "journal       {journals} could not be replayed: set aside as *.jnl.damaged in {}",
            spool.dir().display()
        );
    }
    let (mut good, mut bad, mut cursor) = (0u64, 0u64, spool.acked());
    // A damaged last block hides the newest seq: search up to the reservation.
    let newest = match spool.newest_seq() {
        Ok(n) => n.unwrap_or(cursor),
        Err(_) => spool.reserved().max(cursor),
    };
    loop {
        if cursor >= newest {
            break;
        }
        let reads = match spool.read_after(cursor, 4096, newest) {
            Ok(r) if r.is_empty() => break,
            Ok(r) => r,
            Err(e) => {
                eprintln!("ingestor spool check: {e}");
                return ExitCode::from(1);
            }
        };
        for read in reads {
            match read {
                Read::Batch(b, _) => {
                    good += 1;
                    cursor = cursor.max(b.seq);
                }
                Read::Quarantined(seq, reason) => {
                    bad += 1;
                    cursor = cursor.max(seq);
                    println!("set aside     seq {seq}: {reason}");
                }
                Read::Damaged(first, last) => {
                    bad += last - first + 1;
                    cursor = cursor.max(last);
                    println!("unreadable    seqs {first}..={last}: a spool block failed its checksum (left in place)");
                }
            }
        }
    }
    println!("readable      {good}");
    println!(
        "set aside     {bad} (now in the quarantine keyspace; {} in all)",
        spool.quarantined().unwrap_or(0)
    );
    if bad > 0 || journals > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
