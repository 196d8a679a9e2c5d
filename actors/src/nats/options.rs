//! The client options of `[nats]` (auth, TLS, pings) and the server
//! addresses, for any client: the monitor's connections and a test's reader.

use std::time::Duration;

use async_nats::{ConnectOptions, ServerAddr};

use super::{check, NatsProblem, NatsSetupError};
use crate::settings::NatsSettings;

/// The configured servers as async-nats addresses.
pub fn server_addrs(settings: &NatsSettings) -> Result<Vec<ServerAddr>, NatsSetupError> {
    if settings.servers.is_empty() {
        return Err(NatsSetupError::Invalid(check(settings)));
    }
    settings
        .servers
        .iter()
        .enumerate()
        .map(|(i, url)| {
            url.parse::<ServerAddr>()
                .map_err(|_| NatsSetupError::Invalid(vec![NatsProblem::server(i, url)]))
        })
        .collect()
}

/// The client options of `[nats]`: auth, TLS, short pings. Settings that
/// fail [`check`] are refused; reading the creds or nkey file is the only
/// part that can fail on settings that passed it. Connection policy
/// (attempts, reconnects) is the caller's: the monitor adds its own; a
/// plain client (a test's reader) uses these as they are.
pub async fn connect_options(
    settings: &NatsSettings,
    ping_interval: Duration,
) -> Result<ConnectOptions, NatsSetupError> {
    let problems = check(settings);
    if !problems.is_empty() {
        return Err(NatsSetupError::Invalid(problems));
    }
    let mut options = match &settings.creds_file {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|source| NatsSetupError::CredsFile {
                path: path.display().to_string(),
                source,
            })?,
        None => ConnectOptions::new(),
    };
    if let Some(path) = &settings.nkey_seed_file {
        let seed = tokio::fs::read_to_string(path).await.map_err(|source| {
            NatsSetupError::NkeySeedFile {
                path: path.display().to_string(),
                source,
            }
        })?;
        options = options.nkey(seed.trim().to_string());
    }
    if let Some(token) = &settings.token {
        options = options.token(token.clone());
    }
    // `check` let these through only in pairs.
    if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(ca) = &settings.ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(options
        .require_tls(settings.tls_required)
        .ping_interval(ping_interval)
        .connection_timeout(Duration::from_secs(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem_keys(err: NatsSetupError) -> Vec<&'static str> {
        match err {
            NatsSetupError::Invalid(problems) => problems.iter().map(|p| p.key).collect(),
            other => panic!("not a settings problem: {other}"),
        }
    }

    #[test]
    fn half_configured_auth_and_bad_urls_are_config_errors() {
        let ping = Duration::from_secs(2);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut s = NatsSettings {
            user: Some("u".into()),
            ..NatsSettings::default()
        };
        let err = rt.block_on(connect_options(&s, ping)).unwrap_err();
        assert!(err.to_string().contains("`user` needs `password`"));
        assert_eq!(problem_keys(err), ["password"]);
        s.user = None;
        s.cert_file = Some("c.pem".into());
        let err = rt.block_on(connect_options(&s, ping)).unwrap_err();
        assert!(err.to_string().contains("`cert_file` needs `key_file`"));
        s.cert_file = None;
        s.servers = vec!["nats://bad host:4222".into()];
        assert_eq!(problem_keys(server_addrs(&s).unwrap_err()), ["servers"]);
        s.servers.clear();
        assert_eq!(problem_keys(server_addrs(&s).unwrap_err()), ["servers"]);
    }
}
