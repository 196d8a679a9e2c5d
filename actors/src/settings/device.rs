//! `[[devices]]`: one Modbus slave each, its connection and request pacing,
//! and Modbus/TCP Security (`tls`, `tls_*`: TLS to the device, port 802 by
//! default, certificates always verified).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::TagSettings;

/// How Modbus frames travel.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// Modbus TCP (MBAP header).
    #[default]
    Tcp,
    /// RTU frames (with CRC) over the TCP socket: cheap serial gateways.
    Rtu,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// One `[[devices]]` entry: one Modbus slave (unit) polled on its own schedule.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceSettings {
    /// `[A-Za-z0-9_-]+`, unique.
    pub id: String,
    /// Modbus TCP `host:port` (exclusive with `serial`).
    pub address: Option<String>,
    /// Serial port path for RTU (exclusive with `address`).
    pub serial: Option<String>,
    /// Serial speed.
    #[serde(default = "d_baud")]
    pub baud_rate: u32,
    /// Serial parity.
    #[serde(default)]
    pub parity: Parity,
    /// Serial data bits (5..=8).
    #[serde(default = "d_data_bits")]
    pub data_bits: u8,
    /// Serial stop bits (1 or 2).
    #[serde(default = "d_stop_bits")]
    pub stop_bits: u8,
    /// `tcp` or `rtu` (RTU over the TCP socket).
    #[serde(default)]
    pub framing: Framing,
    /// Modbus unit id (slave address).
    #[serde(default = "d_unit")]
    pub unit: u8,
    /// Time between poll starts.
    #[serde(default = "d_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Per-request timeout.
    #[serde(default = "d_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries of a request that timed out or failed in transport.
    #[serde(default = "d_retries")]
    pub retries: u32,
    /// Cap per request: registers (coils/discrete: bits, up to 2000).
    #[serde(default = "d_max_regs")]
    pub max_registers_per_request: u16,
    /// Registers read and thrown away to merge two requests.
    #[serde(default = "d_max_gap")]
    pub max_gap: u16,
    /// Quiet time after a connect before the first request.
    #[serde(default, with = "humantime_serde")]
    pub pause_after_connect: Duration,
    /// Quiet time between two requests.
    #[serde(default, with = "humantime_serde")]
    pub pause_between_requests: Duration,
    /// Re-asks after exception 0x06 (server busy).
    #[serde(default = "d_busy_retries")]
    pub busy_retries: u32,
    /// Modbus/TCP Security: TLS to the device (`address` only, default port
    /// 802), the device's certificate verified against `tls_ca_file`.
    #[serde(default)]
    pub tls: bool,
    /// CA certificates (PEM) the device's certificate must chain to.
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM, with `tls_key_file`), for devices that
    /// demand one (role-based access).
    pub tls_cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM, with `tls_cert_file`).
    pub tls_key_file: Option<PathBuf>,
    /// The name the device's certificate must carry; default: the host of
    /// `address` (a DNS name or an IP address).
    pub tls_server_name: Option<String>,
    /// `[[devices.tags]]`
    #[serde(default)]
    pub tags: Vec<TagSettings>,
}

/// The Modbus/TCP Security port (IANA "mbap-s").
pub const TLS_PORT: u16 = 802;

impl DeviceSettings {
    /// Whether some tag of this device has `writable = true`.
    pub fn has_writable_tags(&self) -> bool {
        self.tags.iter().any(|t| t.writable)
    }

    /// `address` with the port a connection uses: as written when it has
    /// one; with `:802` added when `tls = true` and it has none (`"plc.local"`,
    /// `"10.0.0.5"`, `"[fd00::5]"`). `None` for a serial device.
    pub fn socket_address(&self) -> Option<String> {
        let address = self.address.as_deref()?;
        if self.tls && !has_port(address) {
            return Some(format!("{address}:{TLS_PORT}"));
        }
        Some(address.to_owned())
    }

    /// The name the device's certificate is checked against:
    /// `tls_server_name`, else the host of `address` (without brackets for
    /// an IPv6 address). `None` for a serial device.
    pub fn tls_server_name(&self) -> Option<String> {
        if let Some(name) = &self.tls_server_name {
            return Some(name.clone());
        }
        let address = self.address.as_deref()?;
        let host = if has_port(address) {
            address.rsplit_once(':').map_or(address, |(host, _)| host)
        } else {
            address
        };
        Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
    }
}

/// `host:port` or `[v6]:port`, as opposed to a bare host (`plc.local`,
/// `10.0.0.5`, `[fd00::5]`; a bare IPv6 address without brackets has no port).
pub fn has_port(address: &str) -> bool {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split_once("]:").is_some();
    }
    match address.rsplit_once(':') {
        Some((host, _)) => !host.contains(':'),
        None => false,
    }
}

fn d_baud() -> u32 {
    19_200
}
fn d_data_bits() -> u8 {
    8
}
fn d_stop_bits() -> u8 {
    1
}
fn d_unit() -> u8 {
    1
}
fn d_poll_interval() -> Duration {
    Duration::from_secs(1)
}
fn d_timeout() -> Duration {
    Duration::from_millis(500)
}
fn d_retries() -> u32 {
    1
}
fn d_max_regs() -> u16 {
    125
}
fn d_max_gap() -> u16 {
    10
}
fn d_busy_retries() -> u32 {
    3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_device(address: &str, tls: bool) -> DeviceSettings {
        let text = format!("id = \"d\"\naddress = \"{address}\"\ntls = {tls}\n");
        toml::from_str(&text).expect("a device")
    }

    #[test]
    fn tls_without_a_port_connects_to_802() {
        for (written, used) in [
            ("plc.local", "plc.local:802"),
            ("10.0.0.5", "10.0.0.5:802"),
            ("[fd00::5]", "[fd00::5]:802"),
            ("plc.local:8802", "plc.local:8802"),
            ("[fd00::5]:8802", "[fd00::5]:8802"),
        ] {
            let d = tcp_device(written, true);
            assert_eq!(d.socket_address().as_deref(), Some(used), "{written}");
        }
        let plain = tcp_device("plc.local:502", false);
        assert_eq!(plain.socket_address().as_deref(), Some("plc.local:502"));
    }

    #[test]
    fn server_name_defaults_to_the_host_of_address() {
        for (written, name) in [
            ("plc.local", "plc.local"),
            ("plc.local:802", "plc.local"),
            ("10.0.0.5:802", "10.0.0.5"),
            ("[fd00::5]:802", "fd00::5"),
            ("[fd00::5]", "fd00::5"),
        ] {
            let d = tcp_device(written, true);
            assert_eq!(d.tls_server_name().as_deref(), Some(name), "{written}");
        }
        let mut named = tcp_device("10.0.0.5", true);
        named.tls_server_name = Some("plc-07.plant".into());
        assert_eq!(named.tls_server_name().as_deref(), Some("plc-07.plant"));
    }
}
