//! The HTML of `GET /` and `GET /devices/<id>` (maud templates: every
//! interpolated string is escaped, so a unit or a string value holding
//! `<script>` shows as text).

use chrono::{DateTime, Utc};
use ingestor_actors::poller::{DeviceStatus, LastPolls};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{rfc3339, sparkline, Overview, REFRESH_SECONDS};

/// Inline, so the page needs nothing from anywhere.
const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.2em;color:#222}\
h1{font-size:1.3em;margin:0 0 .4em}\
table{border-collapse:collapse;margin-top:.8em}\
th,td{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
th{background:#f3f3f3}\
.ok,.up{color:#176f2c;font-weight:600}\
.bad,.down{color:#b3261e;font-weight:600}\
.starting{color:#8a6d00}\
.muted{color:#777}\
dl{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:0}\
dt{color:#555}dd{margin:0}\
svg{vertical-align:middle;background:#fafafa;border:1px solid #ddd}";

/// `GET /`.
pub(crate) fn overview_page(o: &Overview, devices: &[DeviceStatus], now: DateTime<Utc>) -> Markup {
    let rows: Vec<(bool, LastPolls)> = devices.iter().map(|d| (d.is_up(), d.summary())).collect();
    let up = rows.iter().filter(|(up, _)| *up).count();
    page(
        &format!("ingestor {}", o.service_id),
        html! {
            h1 { "ingestor " (o.service_id) " " span class=(state_class(o.health.is_ok())) { (o.status()) } }
            (header(o, now))
            h2 { "Devices " span class="muted" { (up) " of " (rows.len()) " up" } }
            table #devices {
                thead { tr { th { "device" } th { "state" } th { "last poll (UTC)" } th { "lag" } th { "took" } th { "last error" } } }
                tbody {
                    @for (up, d) in &rows {
                        tr id={ "device-" (d.id) } data-device=(d.id) data-state=(device_state(*up, d)) {
                            td { a href={ "/devices/" (d.id) } { (d.id) } }
                            td class=(device_state(*up, d)) { (device_state(*up, d)) }
                            td { (when(d.polled_at, now)) }
                            td { (millis(d.lag)) }
                            td { (millis(d.took)) }
                            td {
                                @if let Some((at, reason)) = &d.last_error {
                                    (reason) " " span class="muted" { "(" (ago(*at, now)) ")" }
                                } @else {
                                    span class="muted" { "none" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /devices/<id>`.
pub(crate) fn device_page(o: &Overview, up: bool, d: &LastPolls, now: DateTime<Utc>) -> Markup {
    let state = device_state(up, d);
    page(
        &format!("{} · ingestor {}", d.id, o.service_id),
        html! {
            p { a href="/" { "← all devices" } }
            h1 { (d.id) " " span class=(state) { (state) } }
            dl {
                dt { "last poll (UTC)" } dd { (when(d.polled_at, now)) " " span class="muted" { (d.result.map_or("", |r| r.as_str())) } }
                dt { "lag / took" } dd { (millis(d.lag)) " / " (millis(d.took)) }
                dt { "last error" } dd {
                    @if let Some((at, reason)) = &d.last_error { (reason) " " span class="muted" { "(" (ago(*at, now)) ")" } }
                    @else { span class="muted" { "none" } }
                }
            }
            table #tags {
                thead { tr { th { "tag" } th { "value" } th { "unit" } th { "read (UTC)" } } }
                tbody {
                    @for t in &d.tags {
                        tr data-tag=(t.name) {
                            td { (t.name) }
                            @if let Some(e) = &t.error {
                                td class="bad" { "error: " (e) }
                            } @else if let Some(v) = &t.value {
                                td class="value" { (value_text(v)) }
                            } @else {
                                td class="muted" { "not read yet" }
                            }
                            td { (t.unit.as_deref().unwrap_or("")) }
                            td { (when(t.at, now)) }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /devices/<id>` for an id not configured.
pub(crate) fn no_such_device(id: &str) -> Markup {
    page(
        "no such device",
        html! { p { a href="/" { "← all devices" } } h1 { "No device " code { (id) } } p { "It is not in the running config." } },
    )
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(REFRESH_SECONDS);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

fn header(o: &Overview, now: DateTime<Utc>) -> Markup {
    let (nats, delivery) = (o.health.nats_str(), o.health.delivery_str());
    let spool = o.health.spool.as_str();
    html! {
        dl #summary {
            dt { "version" } dd { (env!("CARGO_PKG_VERSION")) }
            dt { "uptime" } dd { (o.started.map_or_else(|| "-".to_owned(), |s| duration(now - s))) }
            dt { "NATS" } dd {
                span class=(state_class(o.health.nats_connected)) { (nats) } " "
                span class="muted" { (o.nats_servers.join(", ")) }
                @if let Some(e) = &o.nats_error { " " span class="bad" { (e) } }
            }
            dt { "delivery" } dd { span class=(state_class(!o.health.delivery_stalled && !o.health.id_conflict)) { (delivery) }
                @if o.health.id_conflict { " " span class="bad" { "another installation publishes under this service id" } }
                " " span class="muted" { (o.published) " confirmed since start" } }
            dt { "spool" } dd { span class=(state_class(spool == "ok")) { (spool) } " " span class="muted" { (bytes(o.disk_bytes)) " on disk" } }
            dt { "backlog" } dd #backlog {
                (o.health.backlog) " batches "
                span class="muted" { "(memory " (o.memory_batches) ", disk " (o.disk_batches) ")" }
            }
            dt { "oldest unpublished" } dd { (o.oldest_age(now).map_or_else(|| "none".to_owned(), |s| format!("{s:.1} s"))) }
            dt { "backlog, last hour" } dd { (sparkline::svg(&o.history, now)) }
        }
    }
}

/// `up`, `down`, or `starting` before the first poll ended.
fn device_state(up: bool, d: &LastPolls) -> &'static str {
    match (up, d.polled_at) {
        (true, _) => "up",
        (false, Some(_)) => "down",
        (false, None) => "starting",
    }
}

fn state_class(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "bad"
    }
}

fn value_text(v: &ingestor_actors::Value) -> String {
    match v {
        ingestor_actors::Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn when(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match t {
        Some(t) => {
            html! { time datetime=(rfc3339(t)) { (t.format("%H:%M:%S%.3f")) } " " span class="muted" { "(" (ago(t, now)) ")" } }
        }
        None => html! { span class="muted" { "never" } },
    }
}

fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ago", duration(now - t))
}

fn duration(d: chrono::TimeDelta) -> String {
    let s = d.num_milliseconds().max(0) as f64 / 1000.0;
    match s {
        s if s < 60.0 => format!("{s:.1} s"),
        s if s < 3600.0 => format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64),
        s if s < 86400.0 => format!(
            "{} h {} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        ),
        s => format!(
            "{} d {} h",
            (s / 86400.0) as u64,
            ((s % 86400.0) / 3600.0) as u64
        ),
    }
}

fn millis(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    match n as f64 {
        b if b < 1024.0 => format!("{n} B"),
        b if b < MIB => format!("{:.1} KiB", b / 1024.0),
        b => format!("{:.1} MiB", b / MIB),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_are_text_not_markup() {
        let last = LastPolls {
            id: "m1".into(),
            polled_at: Some(Utc::now()),
            tags: vec![ingestor_actors::poller::TagLast {
                name: "label".into(),
                unit: Some("<b>u</b>".into()),
                value: Some(ingestor_actors::Value::Str(
                    "<script>alert(1)</script>".into(),
                )),
                ..Default::default()
            }],
            ..Default::default()
        };
        let html = device_page(&Overview::default(), true, &last, Utc::now()).into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;u&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }
}
