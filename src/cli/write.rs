//! `ingestor write --device ID TAG VALUE`: commissioning, one write
//! straight to the device (no NATS), with the checks of a NATS write
//! (`writable`, `[writes] enabled`, `min`/`max`, what the registers can
//! hold) and its read back. Prints what the device holds; exit 0 when
//! written and confirmed, 1 when refused or failed, 2 for a bad config.
//! Not recorded in the stream: the service's spool is not opened.

use std::path::Path;
use std::process::ExitCode;

use ingestor_actors::poller::setpoint::{check_request, execute_all, DeviceTurn};
use ingestor_actors::poller::Link;
use ingestor_actors::settings::TagType;
use serde_json::Value as Json;

pub(crate) fn run(config: &Path, device: &str, tag: &str, value: &str) -> ExitCode {
    let settings = match crate::config::load(config) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let Some(d) = settings.devices.iter().find(|d| d.id == device) else {
        let known: Vec<&str> = settings.devices.iter().map(|d| d.id.as_str()).collect();
        eprintln!(
            "ingestor write: no device {device:?} in {} (devices: {})",
            config.display(),
            known.join(", ")
        );
        return ExitCode::from(1);
    };
    let kind = d.tags.iter().find(|t| t.name == tag).map(|t| t.kind);
    let pairs = vec![(tag.to_owned(), json_of(value, kind))];
    let writes = match check_request(d, &settings.writes, &pairs) {
        Ok(w) => w,
        Err(r) => {
            eprintln!("ingestor write: refused ({}): {}", r.code.as_str(), r.error);
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ingestor write: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let results = runtime.block_on(async {
        let link = Link::open(d).map_err(|e| e.to_string())?;
        Ok::<_, String>(
            execute_all(
                &link,
                d,
                &DeviceTurn::default(),
                &writes,
                settings.writes.timeout,
            )
            .await,
        )
    });
    match results.as_deref() {
        Ok([Ok(held)]) => {
            println!("{device} {tag} = {held} (read back)");
            ExitCode::SUCCESS
        }
        Ok([Err(r), ..]) => {
            eprintln!("ingestor write: failed ({}): {}", r.code.as_str(), r.error);
            ExitCode::from(1)
        }
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ingestor write: {e}");
            ExitCode::from(1)
        }
    }
}

/// VALUE as the JSON a NATS request would carry: a string tag takes the
/// text as it is (unless quoted JSON), the others JSON (`true`, `21.5`).
fn json_of(value: &str, kind: Option<TagType>) -> Json {
    match (kind, serde_json::from_str::<Json>(value)) {
        (Some(TagType::String), Ok(Json::String(s))) => Json::String(s),
        (Some(TagType::String), _) => Json::String(value.to_owned()),
        (_, Ok(json)) => json,
        (_, Err(_)) => Json::String(value.to_owned()),
    }
}
