//! Where a link connects: a TCP address (MBAP or RTU framing) or a serial
//! port with its line settings, taken from a `[[devices]]` entry, and how a
//! connection to it is opened. Devices whose targets have the same
//! [`Target::key`] share one link.

use tokio::net::TcpStream;
use tokio_modbus::client::{rtu, tcp, Context};

use super::LinkError;
use crate::settings::{DeviceSettings, Framing, Parity};

/// Where a link connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Target {
    Tcp {
        address: String,
        framing: Framing,
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
            (Some(address), _) => Ok(Target::Tcp {
                address: address.clone(),
                framing: device.framing,
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
            Target::Tcp { address, framing } => format!("{address}/{framing:?}"),
            Target::Serial { path, .. } => path.clone(),
        }
    }

    pub(super) fn name(&self) -> &str {
        match self {
            Target::Tcp { address, .. } => address,
            Target::Serial { path, .. } => path,
        }
    }

    pub(super) async fn connect(&self) -> Result<Context, String> {
        match self {
            Target::Tcp { address, framing } => {
                let stream = TcpStream::connect(address.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = stream.set_nodelay(true);
                Ok(match framing {
                    Framing::Tcp => tcp::attach(stream),
                    Framing::Rtu => rtu::attach(stream),
                })
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
                let port = tokio_serial::SerialStream::open(&builder).map_err(|e| e.to_string())?;
                Ok(rtu::attach(port))
            }
        }
    }
}
