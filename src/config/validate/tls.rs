//! A device's Modbus/TCP Security keys (`tls`, `tls_ca_file`,
//! `tls_cert_file`, `tls_key_file`, `tls_server_name`): the rules and the
//! file checks live beside the TLS client (`ingestor_actors::tls::check`),
//! so the poller and `ingestor check` accept the same settings; here each
//! problem gets its key path (`devices[2].tls_ca_file`).

use ingestor_actors::settings::DeviceSettings;
use ingestor_actors::tls::{self, DeviceTlsProblemKind};

use super::quoted;
use crate::config::error::{ConfigError, KeyPath, Problem};

/// Every problem of `d`'s TLS keys, reading the files it names.
pub(super) fn device_tls(d: &DeviceSettings, path: &KeyPath, out: &mut Vec<Problem>) {
    for problem in tls::check(d) {
        let at = path.key(problem.key);
        out.push(match problem.kind {
            DeviceTlsProblemKind::Invalid { value, allowed } => {
                Problem::invalid(at, value, allowed)
            }
            DeviceTlsProblemKind::Missing(text) => Problem::new(at, ConfigError::Missing(text)),
            DeviceTlsProblemKind::File(e) => Problem::new(
                at,
                ConfigError::File {
                    path: quoted(&e.path.display().to_string()),
                    problem: e.problem,
                },
            ),
        });
    }
}
