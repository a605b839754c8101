//! Replication through a broker that demands TLS or credentials: the
//! `mqtts://` transport with a private CA (`SSL_CERT_FILE`) and
//! `mqtt.username`/`password`. Both need mosquitto (and openssl /
//! mosquitto_passwd); they are skipped without them, except in CI.

mod common;
mod replication_support;

use std::time::Duration;

use common::broker::Broker;
use common::{wait_until, NodeProcess};
use replication_support::*;

const REPLICATED: Duration = Duration::from_secs(10);

/// Runs `openssl` with `args` in `dir`; `false` when it is not installed.
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    match std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(status) => {
            assert!(status.success(), "openssl {args:?} failed");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn replication_over_mqtts_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("extensions file");
    let made = openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=merklekv test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    ) && openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ) && openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    // mosquitto started as root reads the files as user "mosquitto".
    if made {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755));
        for f in ["ca.pem", "server.pem", "server.key"] {
            let _ = std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644));
        }
    }
    let broker = made
        .then(|| {
            Broker::start_tls(
                &d.join("ca.pem"),
                &d.join("server.pem"),
                &d.join("server.key"),
            )
        })
        .flatten();
    let Some(broker) = broker else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the TLS test needs openssl and mosquitto in CI"
        );
        eprintln!("skipping: openssl or mosquitto not installed");
        return;
    };
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let prefix = unique_prefix("tls");
    let tls = |id: &str| spec(id, &url, &prefix).env("SSL_CERT_FILE", d.join("ca.pem").display());
    let nodes = [NodeProcess::start(tls("n1")), NodeProcess::start(tls("n2"))];
    wait_connected(&nodes, 2);
    assert_eq!(nodes[0].client().cmd("SET secret 42"), "OK\r\n");
    assert!(wait_value(&nodes[1], "secret", Some("42"), REPLICATED));

    // Trusting another CA, a node refuses the broker's certificate.
    assert!(openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-days",
            "2",
            "-subj",
            "/CN=another CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    ));
    let untrusted = NodeProcess::start(
        spec("n3", &url, &prefix).env("SSL_CERT_FILE", d.join("other.pem").display()),
    );
    assert!(wait_until(REPLICATED, || metric(
        &untrusted,
        "merklekv_replication_connection_errors_total"
    ) >= 1.0));
    let status = untrusted.client().cmd("REPLICATE status");
    assert!(status.contains("broker=disconnected"), "{status}");
}

#[test]
fn broker_credentials_are_used_and_a_wrong_password_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwords = dir.path().join("passwd");
    let made = std::process::Command::new("mosquitto_passwd")
        .arg("-b")
        .arg("-c")
        .arg(&passwords)
        .args(["replicator", "s3cret"])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let broker = if made {
        use std::os::unix::fs::PermissionsExt;
        // mosquitto started as root reads the file as user "mosquitto".
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
        let _ = std::fs::set_permissions(&passwords, std::fs::Permissions::from_mode(0o644));
        Broker::start_with_passwords(&passwords)
    } else {
        None
    };
    let Some(broker) = broker else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the credentials test needs mosquitto and mosquitto_passwd in CI"
        );
        eprintln!("skipping: mosquitto or mosquitto_passwd not installed");
        return;
    };
    let prefix = unique_prefix("auth");
    let user = |id: &str, password: &str| {
        spec(id, &broker.url(), &prefix)
            .env("MERKLE_KV_MQTT_USERNAME", "replicator")
            .env("MERKLE_KV_MQTT_PASSWORD", password)
    };
    let nodes = [
        NodeProcess::start(user("n1", "s3cret")),
        NodeProcess::start(user("n2", "s3cret")),
    ];
    wait_connected(&nodes, 2);
    assert_eq!(nodes[0].client().cmd("SET k v"), "OK\r\n");
    assert!(wait_value(&nodes[1], "k", Some("v"), REPLICATED));

    let intruder = NodeProcess::start(user("n3", "wrong"));
    assert!(wait_until(REPLICATED, || metric(
        &intruder,
        "merklekv_replication_connection_errors_total"
    ) >= 1.0));
    let status = intruder.client().cmd("REPLICATE status");
    assert!(status.contains("broker=disconnected"), "{status}");
    assert_eq!(get(&mut intruder.client(), "k"), None);
}
