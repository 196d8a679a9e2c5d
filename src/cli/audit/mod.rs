//! `ingestor audit [-c FILE] [--since TIME] [--installation ID] [--json]`:
//! is the record in the stream complete?
//!
//! Reads the stream (`read`: an ordered consumer, nothing left on the
//! server) and reports per installation (`report`): first and last seq,
//! batches stored, gaps explained by gap events (by reason), unexplained
//! missing ranges, seqs stored twice, polls stored twice under two seqs
//! (same device and `ts`), and places where the seq order steps back.
//! Exit 0 when every installation's record is complete, 1 otherwise (also
//! when the stream cannot be read), 2 on a bad config or `--since`.

mod read;
mod report;

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use report::InstallationReport;

use crate::config;

/// How many entries of each list the text output shows (`--json`: all).
const SHOWN: usize = 20;

/// What `audit` was asked.
pub(crate) struct AuditArgs<'a> {
    pub(crate) since: Option<&'a str>,
    pub(crate) installation: Option<&'a str>,
    pub(crate) json: bool,
}

pub(crate) fn run(path: &Path, args: &AuditArgs<'_>) -> ExitCode {
    let settings = match config::load(path) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let since = match args.since.map(parse_since).transpose() {
        Ok(since) => since,
        Err(e) => {
            eprintln!("ingestor audit: --since {e}");
            return ExitCode::from(2);
        }
    };
    let read = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(read::read(&settings.nats, since)));
    let read = match read {
        Ok(read) => read,
        Err(e) => {
            eprintln!("ingestor audit: {e:#}");
            return ExitCode::from(1);
        }
    };
    let mut reports = report::audit(&read.stored);
    if let Some(wanted) = args.installation {
        reports.retain(|r| r.installation == wanted);
    }
    // An installation asked for and not found is no complete record.
    let complete =
        reports.iter().all(|r| r.complete) && !(args.installation.is_some() && reports.is_empty());
    if args.json {
        let out = serde_json::json!({
            "stream": settings.nats.stream,
            "messages": read.stored.len() as u64 + read.others,
            "other_messages": read.others,
            "complete": complete,
            "installations": reports,
        });
        println!("{out}");
    } else {
        println!(
            "stream {}: {} messages of the service read ({} others stepped over)",
            settings.nats.stream,
            read.stored.len(),
            read.others
        );
        if reports.is_empty() {
            println!("no installation found");
        }
        for r in &reports {
            print_report(r);
        }
        println!("{}", if complete { "complete" } else { "NOT complete" });
    }
    if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// RFC 3339 (`2026-12-03T10:00:00Z`), or a duration ago (`2h`, `7days`).
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(text).map_err(|_| {
        format!(
            "{text:?}: a time (RFC 3339, like \"2026-12-03T10:00:00Z\") or a duration ago (\"2h\")"
        )
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| Utc::now().checked_sub_signed(ago))
        .ok_or_else(|| format!("{text:?} is too far back"))
}

fn print_report(r: &InstallationReport) {
    println!(
        "installation {} (service.id {})",
        r.installation,
        r.service_ids.join(", ")
    );
    println!("  seqs          {}..={}", r.first_seq, r.last_seq);
    println!(
        "  stored        {} batches, {} gap events, {} messages",
        r.batches, r.gap_events, r.messages
    );
    for (reason, e) in &r.explained {
        let events = if e.events == 1 { "event" } else { "events" };
        println!(
            "  explained     {reason}: {} seqs ({} {events})",
            e.seqs, e.events
        );
    }
    let list = |items: Vec<String>| -> String {
        let n = items.len();
        let mut shown: Vec<String> = items.into_iter().take(SHOWN).collect();
        if n > SHOWN {
            shown.push(format!("... ({n} in all)"));
        }
        shown.join(", ")
    };
    if !r.missing.is_empty() {
        let ranges = r.missing.iter().map(|m| {
            if m.from == m.to {
                format!("seq {}", m.from)
            } else {
                format!("seqs {}..={}", m.from, m.to)
            }
        });
        println!(
            "  MISSING       {} (no gap event explains them)",
            list(ranges.collect())
        );
    }
    if !r.stored_twice.is_empty() {
        let twice = r.stored_twice.iter().map(|t| {
            let at: Vec<String> = t.stream_seqs.iter().map(u64::to_string).collect();
            format!("seq {} (stream seqs {})", t.seq, at.join(" and "))
        });
        println!("  STORED TWICE  {}", list(twice.collect()));
    }
    if !r.polls_twice.is_empty() {
        let polls = r.polls_twice.iter().map(|p| {
            let seqs: Vec<String> = p.seqs.iter().map(u64::to_string).collect();
            format!("{} at {} as seqs {}", p.device, p.ts, seqs.join(" and "))
        });
        println!("  POLL TWICE    {}", list(polls.collect()));
    }
    if !r.steps_back.is_empty() {
        let steps = r.steps_back.iter().map(|s| {
            format!(
                "seq {} after {} (stream seq {})",
                s.seq, s.after, s.stream_seq
            )
        });
        println!("  STEPS BACK    {}", list(steps.collect()));
    }
    println!(
        "  verdict       {}",
        if r.complete {
            "complete"
        } else {
            "NOT complete"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_time_or_a_duration_ago() {
        let t = parse_since("2026-12-03T10:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-03T10:00:00+00:00");
        let ago = Utc::now() - parse_since("2h").unwrap();
        assert!((ago.num_minutes() - 120).abs() <= 1, "{ago}");
        assert!(parse_since("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
