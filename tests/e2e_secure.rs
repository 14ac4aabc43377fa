//! End-to-end: the authenticated port (`--port`). A real kubectl with the
//! kubeconfig `rkubelet kubeconfig` prints gets pods and reads logs over
//! HTTPS; requests without a token or with a wrong one get `401` with a
//! `Status`; the generated token and key are private to root; the port binds
//! loopback by default; the read-only port serves no logs unless told to.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use common::daemon::{wait_until, Daemon, Opts, IMAGE};

/// A blocking HTTPS client trusting the daemon's generated CA.
fn https_client(d: &Daemon) -> reqwest::blocking::Client {
    rkubelet::http_client::install_crypto_provider();
    let ca = std::fs::read(d.root_dir().join("pki/ca.crt")).expect("generated CA");
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA PEM")])
        .build()
        .expect("client")
}

fn token(d: &Daemon) -> String {
    let text = std::fs::read_to_string(d.root_dir().join("auth/tokens.csv")).expect("token file");
    text.split(',').next().expect("a token").to_string()
}

fn talker(d: &Daemon) -> String {
    d.write(
        "talk.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: talk}}\nspec:\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sh, -c, 'echo secret-config-value; sleep 3600']}}\n"
        ),
    );
    d.wait_running("talk", &["a"], Duration::from_secs(30));
    format!("talk-{}", d.node)
}

#[test]
fn kubectl_with_the_printed_kubeconfig_gets_pods_and_logs_over_https() {
    let d = Daemon::start_without_read_only_logs(Opts::default());
    let pod = talker(&d);
    let kubeconfig = std::fs::read_to_string(d.kubeconfig()).expect("kubeconfig");
    assert!(
        kubeconfig.contains(&format!("server: https://127.0.0.1:{}", d.secure_port)),
        "{kubeconfig}"
    );
    assert!(
        kubeconfig.contains("certificate-authority-data:"),
        "{kubeconfig}"
    );
    let table = wait_until(
        "kubectl get pods shows the pod",
        Duration::from_secs(20),
        || {
            let (ok, out, _) = d.kubectl_auth(&["get", "pods"]);
            (ok && out
                .lines()
                .any(|l| l.starts_with(&pod) && l.contains("Running")))
            .then_some(out)
        },
    );
    assert!(table.starts_with("NAME"), "{table}");
    let logs = wait_until("kubectl logs over HTTPS", Duration::from_secs(20), || {
        let (ok, out, _) = d.kubectl_auth(&["logs", &pod]);
        (ok && !out.is_empty()).then_some(out)
    });
    assert_eq!(logs, "secret-config-value\n");
    let (ok, nodes, err) = d.kubectl_auth(&["get", "nodes"]);
    assert!(ok && nodes.contains(&d.node), "{nodes}{err}");

    // The read-only port serves the pod but not its logs, by default.
    let (ok, _, err) = d.kubectl(&["logs", &pod]);
    assert!(!ok, "the read-only port served logs");
    assert!(err.contains("--read-only-port-logs"), "{err}");
    let body = d
        .get(&format!("/api/v1/namespaces/default/pods/{pod}/log"))
        .unwrap_err();
    assert!(
        body.starts_with("403") && !body.contains("secret-config-value"),
        "{body}"
    );
    assert!(d
        .get(&format!("/api/v1/namespaces/default/pods/{pod}"))
        .is_ok());
}

#[test]
fn no_token_or_a_wrong_token_gets_401_with_a_status() {
    let d = Daemon::start();
    let client = https_client(&d);
    let base = format!("https://127.0.0.1:{}", d.secure_port);
    for (what, auth) in [
        ("no token", None),
        ("a wrong token", Some("Bearer not-the-token".to_string())),
        ("an empty token", Some("Bearer ".to_string())),
        ("basic auth", Some(format!("Basic {}", token(&d)))),
    ] {
        for path in [
            "/api/v1/pods",
            "/healthz",
            "/api/v1/namespaces/default/pods/x/log",
            "/nope",
        ] {
            let mut req = client.get(format!("{base}{path}"));
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            let resp = req.send().expect("request");
            assert_eq!(resp.status().as_u16(), 401, "{what} on {path}");
            let v: serde_json::Value = resp.json().expect("a Status body");
            assert_eq!(v["kind"], "Status", "{what}");
            assert_eq!(v["reason"], "Unauthorized", "{what}");
            assert_eq!(v["code"], 401, "{what}");
        }
    }
    let resp = client
        .get(format!("{base}/api/v1/pods"))
        .bearer_auth(token(&d))
        .send()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    // kubectl with a wrong token is refused too.
    let (ok, _, err) = d.kubectl_auth(&["--token", "wrong", "get", "pods"]);
    assert!(!ok && err.contains("must be logged in"), "{err}");
    // Plain HTTP on the TLS port gets nothing useful.
    assert!(
        common::daemon::http_get(&format!("http://127.0.0.1:{}/api/v1/pods", d.secure_port))
            .is_none()
    );
}

#[test]
fn the_token_and_key_are_private_to_root_and_the_port_is_loopback_only() {
    let d = Daemon::start();
    for file in ["auth/tokens.csv", "pki/kubelet.key"] {
        let meta = std::fs::metadata(d.root_dir().join(file)).expect(file);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        assert_eq!(meta.uid(), 0, "{file} owned by root");
    }
    let auth_dir = std::fs::metadata(d.root_dir().join("auth")).expect("auth dir");
    assert_eq!(
        auth_dir.permissions().mode() & 0o077,
        0,
        "auth dir is private"
    );
    // A non-root user cannot read the token.
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "cat",
        ])
        .arg(d.root_dir().join("auth/tokens.csv"))
        .output()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success(), "nobody read the token");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    // Both ports listen on 127.0.0.1 only (the kernel's listening sockets).
    let listening = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    for port in [d.port, d.secure_port] {
        let suffix = format!(":{port:04X}");
        let locals: Vec<&str> = listening
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let local = f.nth(1)?;
                let state = f.nth(1)?;
                (state == "0A" && local.ends_with(&suffix)).then_some(local)
            })
            .collect();
        assert_eq!(locals, vec![format!("0100007F{suffix}")], "port {port}");
    }
}

#[test]
fn a_token_auth_file_is_used_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, "tok-one,alice,1000,\"dev,ops\"\n").expect("write");
    let d = Daemon::start_with(Opts {
        extra_args: vec!["--token-auth-file".into(), file.display().to_string()],
    });
    let client = https_client(&d);
    let url = format!("https://127.0.0.1:{}/api/v1/pods", d.secure_port);
    let ok = client
        .get(&url)
        .bearer_auth("tok-one")
        .send()
        .expect("request");
    assert_eq!(ok.status().as_u16(), 200);
    assert!(
        !d.root_dir().join("auth/tokens.csv").exists(),
        "no token generated"
    );

    std::fs::write(&file, "only-a-token\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rkubelet"))
        .args(["--hostname-override", "n", "--read-only-port", "0"])
        .args(["--port", &common::free_port().to_string()])
        .arg("--token-auth-file")
        .arg(&file)
        .arg("--config")
        .arg(dir.path())
        .arg("--root-dir")
        .arg(dir.path().join("root"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&file.display().to_string()) && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn a_client_certificate_signed_by_the_client_ca_is_accepted_and_another_is_not() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().expect("tmp");
    let make_ca = |cn: &str| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).expect("ca");
        (cert.pem(), Issuer::new(p, key))
    };
    let (ca_pem, ca) = make_ca("client-ca");
    let (_, other_ca) = make_ca("other-ca");
    let client_cert = |issuer: &Issuer<'_, KeyPair>| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "alice");
        let cert = p.signed_by(&key, issuer).expect("client cert");
        format!("{}{}", cert.pem(), key.serialize_pem())
    };
    let ca_file = dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, &ca_pem).expect("write");
    let d = Daemon::start_with(Opts {
        extra_args: vec!["--client-ca-file".into(), ca_file.display().to_string()],
    });
    let server_ca = std::fs::read(d.root_dir().join("pki/ca.crt")).expect("generated CA");
    let url = format!("https://127.0.0.1:{}/api/v1/pods", d.secure_port);
    let status_with = |identity: &str| {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .tls_certs_only([reqwest::Certificate::from_pem(&server_ca).expect("CA")])
            .identity(reqwest::Identity::from_pem(identity.as_bytes()).expect("identity"))
            .build()
            .expect("client");
        client.get(&url).send().map(|r| r.status().as_u16())
    };
    assert_eq!(status_with(&client_cert(&ca)).expect("request"), 200);
    // A certificate from another CA fails the handshake (or gets a 401).
    let other = status_with(&client_cert(&other_ca));
    assert!(matches!(other, Err(_) | Ok(401)), "{other:?}");
    // Tokens keep working next to client certificates.
    let resp = https_client(&d)
        .get(&url)
        .bearer_auth(token(&d))
        .send()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
}
