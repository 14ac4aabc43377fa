//! End-to-end: volumes, local ConfigMaps and Secrets, environment and the
//! downward API, with the real `rkubelet` binary against the real Docker
//! daemon.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::daemon::{docker_exec, wait_until, Ctr, Daemon, IMAGE};

const SECS10: Duration = Duration::from_secs(10);
const SECS30: Duration = Duration::from_secs(30);

/// A container that idles until SIGTERM.
const IDLE: &str = "[\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]";

fn find<'a>(cs: &'a [Ctr], name: &str) -> &'a Ctr {
    cs.iter()
        .find(|c| c.cname() == name && c.running)
        .unwrap_or_else(|| panic!("no running {name} in {cs:?}"))
}

fn exec(c: &Ctr, script: &str) -> String {
    let (ok, out) = docker_exec(&c.id, &["sh", "-c", script]);
    assert!(ok, "{script}: {out}");
    out
}

fn pod_dir(d: &Daemon, uid: &str) -> PathBuf {
    d.root_dir().join("pods").join(uid)
}

/// The pod's first container status waiting reason and message, if waiting.
fn waiting(d: &Daemon, pod: &str, container: &str) -> Option<(String, String)> {
    let p = d.api_pod(pod)?;
    let statuses = p["status"]["containerStatuses"].as_array()?.clone();
    let s = statuses.iter().find(|s| s["name"] == container)?;
    let w = &s["state"]["waiting"];
    Some((w["reason"].as_str()?.into(), w["message"].as_str()?.into()))
}

/// Messages of the pod's events with `reason`, from `/api/v1/events`.
fn events(d: &Daemon, pod: &str, reason: &str) -> Vec<String> {
    let full = format!("{pod}-{}", d.node);
    let list = d.get_json("/api/v1/events");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == full.as_str() && e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mounts").expect("mounts")
}

#[test]
fn an_empty_dir_is_shared_by_writer_and_reader_survives_a_writer_restart_and_goes_with_the_pod() {
    let d = Daemon::start();
    d.write(
        "vol.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: vol}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: writer
    image: {IMAGE}
    command: ["sh", "-c", "echo written-by-writer >> /data/log; sleep 2; exit 1"]
    volumeMounts: [{{name: shared, mountPath: /data}}]
  - name: reader
    image: {IMAGE}
    command: {IDLE}
    volumeMounts: [{{name: shared, mountPath: /in}}]
  volumes:
  - {{name: shared, emptyDir: {{}}}}
"#
        ),
    );
    let cs = d.wait_running("vol", &["writer", "reader"], SECS30);
    let reader = find(&cs, "reader").clone();
    let uid = reader.uid().to_string();
    let host_dir = pod_dir(&d, &uid).join("volumes/kubernetes.io~empty-dir/shared");
    assert!(host_dir.is_dir(), "{}", host_dir.display());
    // The writer exits and is restarted at once; its second instance appends
    // to the same file, which the reader sees.
    wait_until("two writes seen by the reader", SECS30, || {
        let (_, out) = docker_exec(&reader.id, &["cat", "/in/log"]);
        (out.matches("written-by-writer").count() >= 2).then_some(())
    });
    let restarted = d
        .pod_containers("vol")
        .iter()
        .any(|c| c.cname() == "writer" && c.label("io.kubernetes.container.restartCount") != "0");
    assert!(restarted, "the writer was restarted");
    d.remove("vol.yaml");
    d.wait_gone("vol", SECS30);
    wait_until("the pod directory is removed", SECS10, || {
        (!pod_dir(&d, &uid).exists()).then_some(())
    });
}

#[test]
fn a_memory_empty_dir_is_a_10_mib_tmpfs_inside_the_container_and_unmounted_after() {
    let d = Daemon::start();
    d.write(
        "mem.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: mem}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: {IDLE}
    volumeMounts: [{{name: cache, mountPath: /cache}}]
  volumes:
  - {{name: cache, emptyDir: {{medium: Memory, sizeLimit: 10Mi}}}}
"#
        ),
    );
    let cs = d.wait_running("mem", &["app"], SECS30);
    let app = find(&cs, "app");
    let mounts = exec(app, "cat /proc/mounts");
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/cache"))
        .unwrap_or_else(|| panic!("/cache not mounted:\n{mounts}"));
    assert!(line.starts_with("tmpfs "), "{line}");
    assert!(line.contains("size=10240k"), "{line}");
    let uid = app.uid().to_string();
    let dir = pod_dir(&d, &uid);
    assert!(host_mounts().contains(&dir.display().to_string()));
    d.remove("mem.yaml");
    d.wait_gone("mem", SECS30);
    wait_until("tmpfs unmounted and directory removed", SECS10, || {
        (!dir.exists() && !host_mounts().contains(&dir.display().to_string())).then_some(())
    });
}

#[test]
fn host_path_directory_or_create_creates_and_a_missing_file_blocks_the_pod_with_a_clear_event() {
    let d = Daemon::start();
    let base = d.scratch("hp");
    let created = base.join("new/dir");
    let missing = base.join("missing.txt");
    d.write(
        "hp.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: hp}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: {IDLE}
    volumeMounts: [{{name: d, mountPath: /d}}]
  volumes:
  - {{name: d, hostPath: {{path: "{}", type: DirectoryOrCreate}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: blocked}}
spec:
  containers:
  - name: app
    image: {IMAGE}
    command: {IDLE}
    volumeMounts: [{{name: f, mountPath: /f}}]
  volumes:
  - {{name: f, hostPath: {{path: "{}", type: File}}}}
"#,
            created.display(),
            missing.display()
        ),
    );
    let cs = d.wait_running("hp", &["app"], SECS30);
    assert!(created.is_dir());
    exec(find(&cs, "app"), "touch /d/from-container");
    assert!(created.join("from-container").exists());

    let (reason, message) = wait_until("the blocked pod waits", SECS30, || {
        waiting(&d, "blocked", "app")
    });
    assert_eq!(reason, "CreateContainerConfigError");
    assert!(
        message.contains(&format!("{} does not exist", missing.display())),
        "{message}"
    );
    assert!(message.contains("volume \"f\""), "{message}");
    let failed = events(&d, "blocked", "FailedMount");
    assert!(
        failed
            .iter()
            .any(|m| m.contains("volume \"f\"") && m.contains("does not exist")),
        "a FailedMount event: {failed:?}"
    );
    assert!(
        !d.pod_containers("blocked")
            .iter()
            .any(|c| c.cname() == "app"),
        "no container was created"
    );
}

const CONFIG_MAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data:
  color: COLOR_VALUE
  mode: fast
  app.properties: "level=COLOR_VALUE"
  1st: skipped
"#;

fn config_map(color: &str) -> String {
    CONFIG_MAP.replace("COLOR_VALUE", color)
}

#[test]
fn a_config_map_feeds_env_env_from_and_a_volume_and_an_edit_updates_the_files_without_a_restart() {
    let d = Daemon::start();
    d.write("cm.yaml", &config_map("blue"));
    d.write(
        "app.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: cmapp}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: {IDLE}
    envFrom:
    - {{configMapRef: {{name: app-config}}, prefix: CM_}}
    - {{configMapRef: {{name: app-config}}}}
    env:
    - name: COLOR
      valueFrom: {{configMapKeyRef: {{name: app-config, key: color}}}}
    - name: OPTIONAL
      valueFrom: {{configMapKeyRef: {{name: app-config, key: nope, optional: true}}}}
    volumeMounts:
    - {{name: conf, mountPath: /etc/app}}
    - {{name: conf, mountPath: /etc/pinned.properties, subPath: app.properties}}
  volumes:
  - name: conf
    configMap:
      name: app-config
      defaultMode: 0640
      items:
      - {{key: app.properties, path: app.properties}}
      - {{key: mode, path: sub/mode, mode: 0400}}
"#
        ),
    );
    let cs = d.wait_running("cmapp", &["app"], SECS30);
    let app = find(&cs, "app").clone();
    // Not through sh: it drops variables whose names are not shell names.
    let (_, env) = docker_exec(&app.id, &["env"]);
    for want in [
        "COLOR=blue",
        "CM_color=blue",
        "CM_mode=fast",
        "CM_app.properties=level=blue",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} in:\n{env}");
    }
    assert!(!env.contains("OPTIONAL="), "{env}");
    assert!(env.lines().any(|l| l == "CM_1st=skipped"), "{env}");
    assert!(!env.lines().any(|l| l.starts_with("1st=")), "{env}");
    let skipped = events(&d, "cmapp", "InvalidEnvironmentVariableNames");
    assert!(
        skipped.iter().any(|m| m.contains("Keys [1st]")),
        "{skipped:?}"
    );
    assert_eq!(exec(&app, "cat /etc/app/app.properties"), "level=blue");
    assert_eq!(exec(&app, "cat /etc/app/sub/mode"), "fast");
    assert_eq!(
        exec(
            &app,
            "stat -L -c %a /etc/app/app.properties /etc/app/sub/mode"
        ),
        "640\n400\n"
    );
    assert!(
        !docker_exec(&app.id, &["touch", "/etc/app/x"]).0,
        "configMap volumes are read-only"
    );

    d.write("cm.yaml", &config_map("green"));
    wait_until("the mounted file changes in place", SECS10, || {
        let (_, out) = docker_exec(&app.id, &["cat", "/etc/app/app.properties"]);
        (out == "level=green").then_some(())
    });
    let now = d.pod_containers("cmapp");
    assert_eq!(find(&now, "app").id, app.id, "no restart");
    assert!(
        exec(&app, "echo $COLOR").starts_with("blue"),
        "env keeps its start value"
    );
    assert_eq!(
        exec(&app, "cat /etc/pinned.properties"),
        "level=blue",
        "subPath keeps its start value"
    );
}

#[test]
fn a_missing_config_map_gives_create_container_config_error_and_adding_it_starts_the_pod_at_once() {
    let d = Daemon::start();
    d.write(
        "app.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: late}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: {IDLE}
    env:
    - name: COLOR
      valueFrom: {{configMapKeyRef: {{name: app-config, key: color}}}}
"#
        ),
    );
    let (reason, message) =
        wait_until("the container waits", SECS30, || waiting(&d, "late", "app"));
    assert_eq!(reason, "CreateContainerConfigError");
    assert!(
        message.contains("configmap \"app-config\" not found") && message.contains("\"color\""),
        "{message}"
    );
    // The first retry would be 10 s away: a new object wakes the pod instead.
    d.write("cm.yaml", &config_map("red"));
    let cs = d.wait_running("late", &["app"], Duration::from_secs(6));
    assert!(exec(find(&cs, "app"), "env").contains("COLOR=red"));
}

#[test]
fn secret_volume_files_live_on_tmpfs_with_the_requested_modes() {
    let d = Daemon::start();
    d.write(
        "secret.yaml",
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: creds}}
data: {{username: YWRtaW4=}}
stringData: {{password: s3cr3t}}
---
apiVersion: v1
kind: Pod
metadata: {{name: sec}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: {IDLE}
    env:
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}
    volumeMounts: [{{name: s, mountPath: /secrets}}]
  volumes:
  - name: s
    secret:
      secretName: creds
      defaultMode: 0400
      items:
      - {{key: username, path: user}}
      - {{key: password, path: pass, mode: 0440}}
"#
        ),
    );
    let cs = d.wait_running("sec", &["app"], SECS30);
    let app = find(&cs, "app");
    assert_eq!(exec(app, "cat /secrets/user"), "admin");
    assert_eq!(exec(app, "cat /secrets/pass"), "s3cr3t");
    assert_eq!(
        exec(app, "stat -L -c %a /secrets/user /secrets/pass"),
        "400\n440\n"
    );
    assert!(exec(app, "env").contains("PASSWORD=s3cr3t"));
    let mounts = exec(app, "cat /proc/mounts");
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/secrets"))
        .unwrap_or_else(|| panic!("/secrets not mounted:\n{mounts}"));
    assert!(line.starts_with("tmpfs "), "{line}");
    let host_dir = pod_dir(&d, app.uid()).join("volumes/kubernetes.io~secret/s");
    assert!(
        host_mounts().lines().any(|l| l.split(' ').nth(1)
            == Some(&*host_dir.display().to_string())
            && l.starts_with("tmpfs ")),
        "the host directory is a tmpfs"
    );
}

#[test]
fn downward_api_env_and_volume_values_match_the_pods_api_entry() {
    let d = Daemon::start();
    d.write(
        "down.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: down
  namespace: team
  labels: {{app: down, tier: backend}}
  annotations: {{owner: me}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: {IDLE}
    resources: {{limits: {{memory: 64Mi, cpu: 500m}}}}
    env:
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: POD_NS, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
    - {{name: POD_UID, valueFrom: {{fieldRef: {{fieldPath: metadata.uid}}}}}}
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: HOST_IP, valueFrom: {{fieldRef: {{fieldPath: status.hostIP}}}}}}
    - {{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
    - {{name: MEM_MI, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: CPU, valueFrom: {{resourceFieldRef: {{resource: limits.cpu}}}}}}
    volumeMounts: [{{name: info, mountPath: /info}}]
  volumes:
  - name: info
    downwardAPI:
      items:
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
      - {{path: owner, fieldRef: {{fieldPath: "metadata.annotations['owner']"}}}}
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}
      - {{path: cpu_m, mode: 0600, resourceFieldRef: {{containerName: app, resource: limits.cpu, divisor: 1m}}}}
"#
        ),
    );
    let cs = d.wait_running("down", &["app"], SECS30);
    let app = find(&cs, "app");
    let pod = wait_until("the pod's IP in /pods", SECS10, || {
        d.api_pod("down")
            .filter(|p| p["status"]["podIP"].is_string())
    });
    let env = exec(app, "env");
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in:\n{env}"))
            .to_string()
    };
    assert_eq!(var("POD_NAME"), format!("down-{}", d.node));
    assert_eq!(pod["metadata"]["name"], var("POD_NAME").as_str());
    assert_eq!(pod["metadata"]["namespace"], var("POD_NS").as_str());
    assert_eq!(pod["metadata"]["uid"], var("POD_UID").as_str());
    assert_eq!(pod["status"]["podIP"], var("POD_IP").as_str());
    assert_eq!(pod["status"]["hostIP"], var("HOST_IP").as_str());
    assert_eq!(var("NODE"), d.node);
    assert_eq!(var("MEM_MI"), "64");
    assert_eq!(var("CPU"), "1", "500m rounds up to one core");
    assert_eq!(
        exec(app, "cat /info/labels"),
        "app=\"down\"\ntier=\"backend\""
    );
    assert_eq!(exec(app, "cat /info/owner"), "me");
    assert_eq!(exec(app, "cat /info/name"), var("POD_NAME"));
    assert_eq!(exec(app, "cat /info/cpu_m"), "500");
    assert_eq!(
        exec(app, "stat -L -c %a /info/cpu_m /info/name"),
        "600\n644\n"
    );
}

#[test]
fn env_expansion_etc_hosts_termination_log_and_sub_path_expr_are_managed_like_kubernetes() {
    let d = Daemon::start();
    d.write(
        "env.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: envx}}
spec:
  terminationGracePeriodSeconds: 2
  hostAliases: [{{ip: 10.1.2.3, hostnames: [db, db.local]}}]
  containers:
  - name: app
    image: {IMAGE}
    command: ["sh", "-c", "echo '$(A)|$$(A)|$(UNDEFINED)|$(B)|$(C)' > /tmp/args; trap 'exit 0' TERM; while true; do sleep 1; done"]
    env:
    - {{name: A, value: a}}
    - {{name: B, value: "$(A)-b"}}
    - {{name: C, value: "$(D)"}}
    - {{name: D, value: d}}
    - {{name: SUB, value: logs}}
    volumeMounts: [{{name: data, mountPath: /out, subPathExpr: "$(SUB)/$(A)"}}]
  volumes:
  - {{name: data, emptyDir: {{}}}}
"#
        ),
    );
    let cs = d.wait_running("envx", &["app"], SECS30);
    let app = find(&cs, "app");
    let args = wait_until("the args file", SECS10, || {
        docker_exec(&app.id, &["cat", "/tmp/args"])
            .0
            .then(|| exec(app, "cat /tmp/args"))
    });
    assert_eq!(args.trim_end(), "a|$(A)|$(UNDEFINED)|a-b|$(D)");
    let env = exec(app, "env");
    assert!(
        env.lines().any(|l| l == "C=$(D)"),
        "only earlier variables: {env}"
    );

    let pod = wait_until("the pod's IP", SECS10, || {
        d.api_pod("envx")
            .and_then(|p| p["status"]["podIP"].as_str().map(str::to_string))
    });
    let hosts = exec(app, "cat /etc/hosts");
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file."),
        "{hosts}"
    );
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    assert!(
        hosts.contains(&format!("{pod}\tenvx-{}", d.node)),
        "{hosts}"
    );
    assert!(hosts.contains("10.1.2.3\tdb\tdb.local"), "{hosts}");

    exec(app, "echo bye > /dev/termination-log");
    let uid = app.uid().to_string();
    let log = pod_dir(&d, &uid).join("containers/app/0/termination-log");
    assert_eq!(
        std::fs::read_to_string(&log).expect("termination log"),
        "bye\n"
    );

    exec(app, "echo x > /out/file");
    let sub = pod_dir(&d, &uid).join("volumes/kubernetes.io~empty-dir/data/logs/a/file");
    assert!(Path::new(&sub).exists(), "{}", sub.display());
}
