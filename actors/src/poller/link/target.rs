//! Where a link connects: a TCP address (MBAP or RTU framing, or MBAP over
//! TLS: Modbus/TCP Security) or a serial port with its line settings, taken
//! from a `[[devices]]` entry, and how a connection to it is opened.
//! Devices whose targets have the same [`Target::key`] share one link, so
//! devices behind one TLS gateway share one TLS session.
//!
//! A TLS connect reads the device's certificate files again (on a blocking
//! thread), so a renewed certificate is used from the next reconnect on.
//! `timeout` bounds the TCP connect and the TLS handshake each.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_modbus::client::{rtu, tcp, Context};

use super::LinkError;
use crate::settings::{DeviceSettings, Framing, Parity};
use crate::tls::TlsClient;

/// Where a link connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Target {
    Tcp {
        address: String,
        framing: Framing,
        /// Modbus/TCP Security (`tls = true`).
        tls: Option<TlsClient>,
    },
    Serial {
        path: String,
        baud_rate: u32,
        parity: Parity,
        data_bits: u8,
        stop_bits: u8,
    },
}

impl Target {
    pub(super) fn of(device: &DeviceSettings) -> Result<Self, LinkError> {
        match (&device.address, &device.serial) {
            (Some(_), _) => Ok(Target::Tcp {
                address: device.socket_address().unwrap_or_default(),
                framing: device.framing,
                tls: TlsClient::of(device),
            }),
            (None, Some(path)) => Ok(Target::Serial {
                path: path.clone(),
                baud_rate: device.baud_rate,
                parity: device.parity,
                data_bits: device.data_bits,
                stop_bits: device.stop_bits,
            }),
            (None, None) => Err(LinkError::NoTarget),
        }
    }

    /// Devices share a link when this is equal (the serial line settings
    /// are those of the first device on the port).
    pub(super) fn key(&self) -> String {
        match self {
            Target::Tcp {
                address,
                framing,
                tls: None,
            } => format!("{address}/{framing:?}"),
            Target::Tcp {
                address,
                framing,
                tls: Some(tls),
            } => format!("{address}/{framing:?}/tls {tls:?}"),
            Target::Serial { path, .. } => path.clone(),
        }
    }

    pub(super) fn name(&self) -> &str {
        match self {
            Target::Tcp { address, .. } => address,
            Target::Serial { path, .. } => path,
        }
    }

    /// The TLS settings, for a TLS target.
    pub(super) fn tls(&self) -> Option<&TlsClient> {
        match self {
            Target::Tcp { tls, .. } => tls.as_ref(),
            Target::Serial { .. } => None,
        }
    }

    /// Opens a connection; `limit` bounds the TCP connect and the TLS
    /// handshake each.
    pub(super) async fn connect(&self, limit: Duration) -> Result<Context, LinkError> {
        let failed = |reason: String| LinkError::Connect {
            target: self.name().into(),
            reason,
        };
        match self {
            Target::Tcp {
                address,
                framing,
                tls,
            } => {
                let stream = match timeout(limit, TcpStream::connect(address.as_str())).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return Err(failed(e.to_string())),
                    Err(_) => return Err(failed("connect timed out".into())),
                };
                let _ = stream.set_nodelay(true);
                let Some(tls) = tls else {
                    return Ok(match framing {
                        Framing::Tcp => tcp::attach(stream),
                        Framing::Rtu => rtu::attach(stream),
                    });
                };
                let tls_failed = |reason: String| LinkError::Tls {
                    target: self.name().into(),
                    reason,
                };
                let files = tls.clone();
                let config = tokio::task::spawn_blocking(move || files.config())
                    .await
                    .map_err(|e| tls_failed(format!("loading the TLS files failed: {e}")))?
                    .map_err(|e| tls_failed(e.to_string()))?;
                match timeout(limit, tls.handshake(Arc::new(config), stream)).await {
                    Ok(Ok(session)) => Ok(tcp::attach(session)),
                    Ok(Err(reason)) => Err(tls_failed(reason)),
                    Err(_) => Err(tls_failed(format!(
                        "no TLS handshake within {}",
                        humantime_serde::re::humantime::format_duration(limit)
                    ))),
                }
            }
            Target::Serial {
                path,
                baud_rate,
                parity,
                data_bits,
                stop_bits,
            } => {
                let builder = tokio_serial::new(path.as_str(), *baud_rate)
                    .parity(match parity {
                        Parity::None => tokio_serial::Parity::None,
                        Parity::Even => tokio_serial::Parity::Even,
                        Parity::Odd => tokio_serial::Parity::Odd,
                    })
                    .data_bits(match data_bits {
                        5 => tokio_serial::DataBits::Five,
                        6 => tokio_serial::DataBits::Six,
                        7 => tokio_serial::DataBits::Seven,
                        _ => tokio_serial::DataBits::Eight,
                    })
                    .stop_bits(match stop_bits {
                        2 => tokio_serial::StopBits::Two,
                        _ => tokio_serial::StopBits::One,
                    });
                let port = tokio_serial::SerialStream::open(&builder)
                    .map_err(|e| failed(e.to_string()))?;
                Ok(rtu::attach(port))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, unit: u8, extra: &str) -> DeviceSettings {
        toml::from_str(&format!(
            "id = \"{id}\"\naddress = \"10.0.0.5\"\nunit = {unit}\n{extra}"
        ))
        .expect("a device")
    }

    #[test]
    fn devices_behind_one_tls_gateway_share_one_session() {
        let tls = "tls = true\ntls_ca_file = \"/etc/ingestor/plant-ca.pem\"\n";
        let a = Target::of(&device("a", 1, tls)).unwrap();
        let b = Target::of(&device("b", 2, tls)).unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.name(), "10.0.0.5:802");
        let other_ca = "tls = true\ntls_ca_file = \"/etc/ingestor/other-ca.pem\"\n";
        let c = Target::of(&device("c", 3, other_ca)).unwrap();
        assert_ne!(a.key(), c.key(), "other TLS settings: a session of its own");
        let plain = Target::of(&device("d", 4, "")).unwrap();
        assert_ne!(a.key(), plain.key());
    }
}
