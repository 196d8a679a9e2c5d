//! `[[devices]]`: one Modbus slave each, its connection and request pacing.

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
    /// `[[devices.tags]]`
    #[serde(default)]
    pub tags: Vec<TagSettings>,
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
