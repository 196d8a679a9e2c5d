//! The status page (`GET /`, `GET /devices/<id>`, `GET /status.json`) as a
//! technician's browser shows it: Debian's Chromium, headless, against the
//! real service polling `ingestor simulate` and a register server whose
//! string register holds markup.
//!
//! The page must list every device, show a device that stops answering as
//! `down` within two of its own refreshes, and show every string from the
//! config (a unit) or from a device (a string value) as text, never as
//! markup. The screenshots are kept under `$CARGO_TARGET_TMPDIR/status_page/`.

#[path = "../actors/tests/poller_rig/mod.rs"]
mod poller_rig;
mod service_rig;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingestor_actors::settings::RegisterKind;
use service_rig::*;

/// What the string register of `label-03` holds: it would retitle the page
/// if it ran.
const MARKUP_VALUE: &str = "<script>document.title='owned'</script>";
/// A unit from the config, with markup in it.
const MARKUP_UNIT: &str = "<img src=x onerror=alert(1)>kWh";
/// The page's `<meta http-equiv="refresh">`, seconds.
const REFRESH: u64 = 5;

/// Debian's Chromium, headless, with a profile of its own.
struct Browser {
    path: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    /// `None` when there is no Chromium on PATH. CI installs it
    /// (`scripts/test.sh`); elsewhere the test says it skips.
    fn find() -> Option<Browser> {
        let path = ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|name| {
                let out = Command::new("sh")
                    .args(["-c", &format!("command -v {name}")])
                    .output()
                    .ok()?;
                let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                (!path.is_empty()).then(|| PathBuf::from(path))
            })?;
        Some(Browser {
            path,
            profile: tempfile::tempdir().unwrap(),
        })
    }

    /// The DOM of `url` after the page loaded (and ran whatever it would run).
    fn dom(&self, url: &str) -> String {
        let out = self
            .headless()
            .args(["--dump-dom", url])
            .output()
            .expect("running chromium");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A PNG of `url` at `png`.
    fn screenshot(&self, url: &str, png: &Path) {
        let out = self
            .headless()
            .arg(format!("--screenshot={}", png.display()))
            .args(["--window-size=1280,900", "--hide-scrollbars", url])
            .output()
            .expect("running chromium");
        assert!(
            out.status.success() && png.exists(),
            "no screenshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn headless(&self) -> Command {
        let mut c = Command::new(&self.path);
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", self.profile.path().display()))
        .stdin(Stdio::null());
        c
    }
}

/// The `data-state` of the device table's row for `id` in a dumped DOM.
fn row_state(dom: &str, id: &str) -> Option<String> {
    let row = dom
        .split("<tr ")
        .find(|r| r.contains(&format!("data-device=\"{id}\"")))?;
    let state = row.split("data-state=\"").nth(1)?;
    Some(state.split('"').next()?.to_owned())
}

/// A second `ingestor simulate` on `config`, for the device the test stops.
fn simulator(config: &Path, listen: &str) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["simulate", "-c"])
        .arg(config)
        .args(["--listen", listen])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(10),
        "second simulator listening",
        || TcpStream::connect(listen).is_ok(),
    );
    child
}

#[test]
fn the_page_lists_every_device_shows_a_stopped_one_down_and_escapes_what_it_shows() {
    let Some(browser) = Browser::find() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have chromium (scripts/test.sh installs it)"
        );
        eprintln!("SKIP: no chromium on PATH (scripts/test.sh installs Debian's)");
        return;
    };
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page");
    std::fs::create_dir_all(&artifacts).unwrap();

    // The label printer: a register server answering the string register
    // with markup.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = rt.enter();
    let (listener, label_addr) = rt.block_on(poller_rig::listener());
    let mut label = poller_rig::ScriptedServer::default();
    let mut text = MARKUP_VALUE.as_bytes().to_vec();
    text.resize(40, 0);
    for (i, pair) in text.chunks(2).enumerate() {
        label.words.insert(
            (RegisterKind::Holding, i as u16),
            u16::from_be_bytes([pair[0], pair[1]]),
        );
    }
    Arc::new(label).spawn(listener, false);

    let nats = NatsServer::start();
    let plant = Plant::new(&nats.url(), "");
    let second = format!("127.0.0.1:{}", free_port());
    // The plant's two devices, plus one on a second simulator (stopped
    // later) and the label printer.
    let mut config = std::fs::read_to_string(&plant.config).unwrap();
    config = config.replacen(
        "type = \"u32\"",
        &format!("type = \"u32\"\nunit = {MARKUP_UNIT:?}"),
        1,
    );
    config.push_str(&format!(
        r#"
[[devices]]
id = "meter-09"
address = "{second}"
unit = 2
poll_interval = "100ms"
timeout = "300ms"

[[devices.tags]]
name = "energy"
register = "input"
address = 10
type = "u32"

[[devices]]
id = "label-03"
address = "{label_addr}"
unit = 1
poll_interval = "200ms"
timeout = "300ms"

[[devices.tags]]
name = "text"
register = "holding"
address = 0
type = "string"
length = 20
"#
    ));
    std::fs::write(&plant.config, &config).unwrap();
    let mut meter_09 = simulator(&plant.config, &second);
    let service = plant.start();
    let base = format!("http://{}", plant.metrics);
    let ids = ["press-01", "meter-07", "meter-09", "label-03"];
    wait_until(
        Duration::from_secs(30),
        "every device up in /status.json",
        || {
            let json: serde_json::Value =
                serde_json::from_str(&service.get("/status.json").unwrap_or_default())
                    .unwrap_or_default();
            json["devices_up"] == 4
        },
    );

    // The overview: a row per device, each up, linking to its page.
    let page = browser.dom(&format!("{base}/"));
    browser.screenshot(&format!("{base}/"), &artifacts.join("overview.png"));
    for id in ids {
        assert_eq!(
            row_state(&page, id).as_deref(),
            Some("up"),
            "row of {id} in:\n{page}"
        );
        assert!(
            page.contains(&format!("href=\"/devices/{id}\"")),
            "no link to {id}"
        );
    }
    assert!(
        page.contains(&format!(
            "<meta http-equiv=\"refresh\" content=\"{REFRESH}\">"
        )),
        "the page does not refresh itself every {REFRESH} s:\n{page}"
    );
    assert!(
        !page.contains("<form") && !page.contains("<script"),
        "the page can act:\n{page}"
    );

    // One device's page: the markup from the device and from the config is
    // text. Had either been parsed, the DOM would hold the element (and the
    // script would have retitled the page).
    let label_page = browser.dom(&format!("{base}/devices/label-03"));
    browser.screenshot(
        &format!("{base}/devices/label-03"),
        &artifacts.join("label-03.png"),
    );
    assert!(
        label_page.contains("&lt;script&gt;document.title='owned'&lt;/script&gt;"),
        "the string value is not shown as text:\n{label_page}"
    );
    assert!(
        !label_page.contains("<script"),
        "a script element made it into the DOM:\n{label_page}"
    );
    assert!(
        !label_page.contains("owned</title>"),
        "the device's script ran"
    );
    let meter_page = browser.dom(&format!("{base}/devices/meter-07"));
    assert!(
        meter_page.contains("&lt;img src=x onerror=alert(1)&gt;kWh"),
        "the unit is not shown as text:\n{meter_page}"
    );
    assert!(
        !meter_page.contains("<img"),
        "an img element made it into the DOM"
    );
    // The simulator's number, as the device page shows it.
    let json: serde_json::Value =
        serde_json::from_str(&service.get("/status.json").unwrap()).unwrap();
    let label_json = json["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "label-03")
        .cloned();
    assert_eq!(label_json.unwrap()["tags"][0]["value"], MARKUP_VALUE);

    // meter-09's simulator stops: within two refreshes of the page, a view
    // of it says down (the others stay up).
    meter_09.kill().unwrap();
    meter_09.wait().unwrap();
    let stopped = Instant::now();
    let shown_down = loop {
        // When Chromium was started: it fetches the page a little later.
        let asked = stopped.elapsed();
        let page = browser.dom(&format!("{base}/"));
        if row_state(&page, "meter-09").as_deref() == Some("down") {
            for id in ["press-01", "meter-07", "label-03"] {
                assert_eq!(
                    row_state(&page, id).as_deref(),
                    Some("up"),
                    "{id} in:\n{page}"
                );
            }
            browser.screenshot(&format!("{base}/"), &artifacts.join("meter-09-down.png"));
            break asked;
        }
        assert!(
            asked < Duration::from_secs(6 * REFRESH),
            "meter-09 still not down {asked:?} after its simulator stopped:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "meter-09 shown down by a page loaded {shown_down:?} after its simulator stopped; screenshots in {}",
        artifacts.display()
    );
    assert!(
        shown_down <= Duration::from_secs(2 * REFRESH),
        "a page loaded {shown_down:?} after the stop still showed meter-09 up: more than two refreshes"
    );
    let unknown = service.get("/devices/nope");
    assert!(unknown.is_none(), "an unknown device's page answered 200");
    drop(service);
    drop(rt);
}
