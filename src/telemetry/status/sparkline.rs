//! The backlog over the last hour as a small inline SVG (no script, no
//! external file).

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::{BacklogHistory, HISTORY_SPAN};

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 40.0;

/// A polyline of the samples, the last hour across, scaled to the hour's
/// highest backlog (printed beside it).
pub(super) fn svg(history: &BacklogHistory, now: DateTime<Utc>) -> Markup {
    let span = HISTORY_SPAN.num_milliseconds() as f64;
    let max = history.samples().map(|(_, n)| n).max().unwrap_or(0);
    let points: Vec<String> = history
        .samples()
        .map(|(t, n)| {
            let age = (now - t).num_milliseconds().clamp(0, span as i64) as f64;
            let x = WIDTH * (1.0 - age / span);
            let y = if max == 0 {
                HEIGHT - 1.0
            } else {
                HEIGHT - 1.0 - (HEIGHT - 2.0) * n as f64 / max as f64
            };
            format!("{x:.1},{y:.1}")
        })
        .collect();
    html! {
        svg #sparkline xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(HEIGHT)
            viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label="backlog over the last hour" {
            polyline fill="none" stroke="#3060c0" stroke-width="1.5" points=(points.join(" ")) {}
        }
        " " span class="muted" { "max " (max) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_span_the_hour_and_scale_to_the_max() {
        let mut h = BacklogHistory::default();
        let now = Utc::now();
        h.note(now - chrono::TimeDelta::minutes(60), 0);
        h.note(now - chrono::TimeDelta::minutes(30), 50);
        h.note(now, 100);
        let svg = svg(&h, now).into_string();
        assert!(
            svg.contains("points=\"0.0,39.0 180.0,20.0 360.0,1.0\""),
            "{svg}"
        );
        assert!(svg.contains("max 100"), "{svg}");
    }
}
