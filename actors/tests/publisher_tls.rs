//! NATS over TLS with a CA and certificates the test makes (openssl CLI):
//! server verified by `ca_file`, client by `cert_file` + `key_file`.

mod publisher_rig;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use publisher_rig::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ca.pem; server.pem/server.key for 127.0.0.1; client.pem/client.key.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ingestor test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(
            dir.join(&ext),
            format!(
                "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n"
            ),
        )
        .unwrap();
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate_delivers_every_batch() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let p = |f: &str| certs.path().join(f);
    let server = NatsServer::start_with(&format!(
        "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?}, verify: true, timeout: 2 }}",
        p("server.pem"),
        p("server.key"),
        p("ca.pem")
    ));
    let mut settings = nats_settings(&[server.url()], "TLS");
    settings.ca_file = Some(p("ca.pem"));
    settings.cert_file = Some(p("client.pem"));
    settings.key_file = Some(p("client.key"));
    settings.tls_required = true;
    let pipeline = Pipeline::start(settings.clone()).await;
    pipeline.push(200).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    assert!(pipeline.monitor_status().await.connected);
    let seqs = read_seqs(&reader(&settings).await, "TLS").await;
    assert_exactly_once(&seqs, 200, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_not_trusted_without_ca_file_reports_an_error_and_keeps_batches() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let p = |f: &str| certs.path().join(f);
    let server = NatsServer::start_with(&format!(
        "tls {{ cert_file: {:?}, key_file: {:?}, timeout: 2 }}",
        p("server.pem"),
        p("server.key"),
    ));
    let mut settings = nats_settings(&[server.url()], "TLS_BAD");
    settings.tls_required = true;
    let pipeline = Pipeline::start(settings).await;
    pipeline.push(20).await;
    wait_until(
        Duration::from_secs(15),
        "the failed connect is reported",
        || async { pipeline.monitor_status().await.last_error.is_some() },
    )
    .await;
    assert!(!pipeline.monitor_status().await.connected);
    assert_eq!(pipeline.backlog().await, 20);
}
