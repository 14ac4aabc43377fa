//! End-to-end: image pulls from a real registry (Debian's `docker-registry`,
//! the distribution registry) on 127.0.0.1, open and with htpasswd basic
//! auth, through the real binary and Docker: imagePullSecrets of both
//! Secret types, failures classified with the registry's message.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::daemon::{free_port, run, wait_until, Daemon, Opts, IMAGE};

const SECS60: Duration = Duration::from_secs(60);

/// A `docker-registry` process; killed on drop.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    /// Starts a registry on 127.0.0.1 storing in `storage`, with htpasswd
    /// auth when `htpasswd` is given; waits until it answers.
    fn start(storage: &Path, htpasswd: Option<&Path>, dir: &Path) -> Registry {
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some(h) = htpasswd {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rkubelet-test\n    path: {}\n",
                h.display()
            ));
        }
        let path = dir.join(format!("registry-{port}.yml"));
        std::fs::write(&path, config).expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry; scripts/test installs it)");
        let r = Registry { child, port };
        wait_until("the registry to answer", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        });
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes a local image tag on drop.
struct Untag(Vec<String>);

impl Drop for Untag {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", t]).output();
        }
    }
}

fn b64(s: &str) -> String {
    run(Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{s}' | base64 -w0")))
    .trim()
    .to_string()
}

fn pod(name: &str, image: &str, secret: Option<&str>) -> String {
    let secrets = secret
        .map(|s| format!("  imagePullSecrets: [{{name: {s}}}]\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
{secrets}  containers:
  - name: app
    image: {image}
    imagePullPolicy: Always
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"#
    )
}

fn waiting(d: &Daemon, name: &str) -> Option<(String, String)> {
    let p = d.api_pod(name)?;
    let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
    Some((
        w["reason"].as_str()?.to_string(),
        w["message"].as_str().unwrap_or_default().to_string(),
    ))
}

#[test]
fn private_registry_pulls_work_with_the_right_secret_and_fail_unauthorized_without() {
    common::daemon::require_docker();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dir.path().join("storage");
    std::fs::create_dir_all(&storage).expect("storage");
    let (user, password) = ("puller", format!("pw{}", common::random_hex(6)));
    let htpasswd = dir.path().join("htpasswd");
    let line = run(Command::new("htpasswd").args(["-Bbn", user, &password]));
    std::fs::write(&htpasswd, line).expect("htpasswd file");

    // Push the test image through an open registry, then serve the same
    // storage with authentication.
    let tag = common::random_hex(4);
    let mut untag = Untag(Vec::new());
    {
        let open = Registry::start(&storage, None, dir.path());
        let pushed = format!("{}/rkt/busybox:{tag}", open.host());
        run(Command::new("docker").args(["tag", IMAGE, &pushed]));
        untag.0.push(pushed.clone());
        run(Command::new("docker").args(["push", &pushed]));
    }
    let reg = Registry::start(&storage, Some(&htpasswd), dir.path());
    let image = format!("{}/rkt/busybox:{tag}", reg.host());
    untag.0.push(image.clone());

    // No node credentials: an empty Docker config.
    let node_creds = dir.path().join("config.json");
    std::fs::write(&node_creds, "{}").expect("node creds");
    let mut opts = Opts::default();
    opts.extra_args.extend([
        "--image-credential-file".to_string(),
        node_creds.display().to_string(),
        "--crash-loop-backoff-base".to_string(),
        "1s".to_string(),
    ]);
    let d = Daemon::start_with(opts);

    // Without credentials: ErrImagePull / ImagePullBackOff saying unauthorized.
    d.write("anon.yaml", &pod("anon", &image, None));
    let (reason, message) = wait_until("the anonymous pull to fail", SECS60, || {
        waiting(&d, "anon").filter(|(r, _)| r == "ErrImagePull" || r == "ImagePullBackOff")
    });
    let (_, message) = if message.is_empty() {
        wait_until("a message", SECS60, || {
            waiting(&d, "anon").filter(|(_, m)| !m.is_empty())
        })
    } else {
        (reason, message)
    };
    let lower = message.to_lowercase();
    assert!(
        lower.contains("unauthorized") || lower.contains("no basic auth credentials"),
        "the failure does not say unauthorized: {message}"
    );

    // A kubernetes.io/dockerconfigjson Secret with the right credentials.
    let auth = b64(&format!("{user}:{password}"));
    let config = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host());
    d.write(
        "json.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: regcred}}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n---\n{}",
            b64(&config),
            pod("withjson", &image, Some("regcred"))
        ),
    );
    d.wait_running("withjson", &["app"], SECS60);

    // The legacy kubernetes.io/dockercfg type.
    let legacy = format!(
        r#"{{"http://{}":{{"auth":"{auth}","email":"x@example.org"}}}}"#,
        reg.host()
    );
    d.write(
        "cfg.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: legacycred}}\ntype: kubernetes.io/dockercfg\ndata:\n  .dockercfg: {}\n---\n{}",
            b64(&legacy),
            pod("withcfg", &image, Some("legacycred"))
        ),
    );
    d.wait_running("withcfg", &["app"], SECS60);

    // A wrong password is unauthorized too.
    let bad = b64(&format!("{user}:wrong"));
    let bad_config = format!(r#"{{"auths":{{"{}":{{"auth":"{bad}"}}}}}}"#, reg.host());
    d.write(
        "bad.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: badcred}}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n---\n{}",
            b64(&bad_config),
            pod("withbad", &image, Some("badcred"))
        ),
    );
    wait_until("the wrong password to fail", SECS60, || {
        waiting(&d, "withbad").filter(|(r, m)| {
            (r == "ErrImagePull" || r == "ImagePullBackOff")
                && m.to_lowercase().contains("unauthorized")
        })
    });
    // Credentials never reach the log.
    let log = d.log();
    assert!(
        !log.contains(&password),
        "the registry password is in the log"
    );
    assert!(
        !log.contains(&auth),
        "the encoded credentials are in the log"
    );

    // Node credentials (--image-credential-file, read at each pull) serve a
    // pod without imagePullSecrets.
    std::fs::write(&node_creds, &config).expect("node creds");
    d.write("node.yaml", &pod("nodecred", &image, None));
    d.wait_running("nodecred", &["app"], SECS60);

    // A pull secret that does not exist: a warning event naming it, and the
    // pull goes on with the other credentials.
    d.write("absent.yaml", &pod("absent", &image, Some("nosuchsecret")));
    wait_until("a FailedToRetrieveImagePullSecret event", SECS60, || {
        let events = d.get_json("/api/v1/namespaces/default/events");
        events["items"]
            .as_array()?
            .iter()
            .find(|e| {
                e["reason"] == "FailedToRetrieveImagePullSecret"
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("nosuchsecret"))
            })
            .map(|_| ())
    });
    // ... and the node's credentials still serve it.
    d.wait_running("absent", &["app"], SECS60);

    // An unreachable registry is a network error, said so.
    let closed = free_port();
    d.write(
        "unreachable.yaml",
        &pod(
            "unreachable",
            &format!("127.0.0.1:{closed}/rkt/busybox:{tag}"),
            None,
        ),
    );
    wait_until(
        "the unreachable registry to fail as a network error",
        SECS60,
        || {
            waiting(&d, "unreachable").filter(|(r, m)| {
                (r == "ErrImagePull" || r == "ImagePullBackOff") && m.contains("connection refused")
            })
        },
    );

    // A missing image is "not found", with the registry's words.
    d.write(
        "missing.yaml",
        &pod(
            "missing",
            &format!("{}/rkt/nothing:{tag}", reg.host()),
            Some("regcred"),
        ),
    );
    wait_until("the missing image to fail as not found", SECS60, || {
        waiting(&d, "missing").filter(|(r, m)| {
            (r == "ErrImagePull" || r == "ImagePullBackOff")
                && (m.contains("not found") || m.contains("unknown"))
        })
    });
}

/// A local image with one layer of `mib` MiB of random bytes (so it cannot
/// compress), plus busybox to run.
fn big_image(name: &str, mib: usize, dir: &Path) {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("rootfs");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
    for applet in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    run(Command::new("sh").arg("-c").arg(format!(
        "head -c {} /dev/urandom > {}/blob",
        mib * 1024 * 1024,
        root.display()
    )));
    run(Command::new("sh").arg("-c").arg(format!(
        "tar -C {} -c . | docker import --change 'ENV PATH=/bin' - {name}",
        root.display()
    )));
}

#[test]
fn a_multi_mb_pull_reports_progress_as_events_with_bytes_done_of_total() {
    common::daemon::require_docker();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dir.path().join("storage");
    std::fs::create_dir_all(&storage).expect("storage");
    let reg = Registry::start(&storage, None, dir.path());
    let tag = common::random_hex(4);
    let local = format!("rkubelet/big:{tag}");
    let image = format!("{}/rkt/big:{tag}", reg.host());
    let _untag = Untag(vec![local.clone(), image.clone()]);
    big_image(&local, 48, dir.path());
    run(Command::new("docker").args(["tag", &local, &image]));
    run(Command::new("docker").args(["push", &image]));
    run(Command::new("docker").args(["rmi", &image, &local]));

    let mut opts = Opts::default();
    opts.extra_args.extend([
        "--image-pull-progress-period".to_string(),
        "50ms".to_string(),
    ]);
    let d = Daemon::start_with(opts);
    d.write("big.yaml", &pod("big", &image, None));
    d.wait_running("big", &["app"], SECS60);
    let events = d.get_json("/api/v1/namespaces/default/events");
    let progress: Vec<String> = events["items"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["reason"] == "Pulling")
        .filter_map(|e| e["message"].as_str().map(String::from))
        .filter(|m| m.contains(" of "))
        .collect();
    assert!(
        !progress.is_empty(),
        "no progress events for a 48 MiB pull: {events}"
    );
    assert!(
        progress
            .iter()
            .all(|m| m.contains(&image) && m.ends_with(" MB")),
        "{progress:?}"
    );
    let (ok, out, _) = d.ctl(&["describe", "pod", "big"]);
    assert!(ok);
    assert!(
        out.contains(" of "),
        "describe shows no pull progress:\n{out}"
    );
}
