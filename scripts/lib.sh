# shellcheck shell=bash
# Shared helpers for scripts/test and scripts/run-examples. Source it, don't
# run it:   . "$(dirname "$0")/lib.sh"
#
# Everything here is idempotent: on a machine that already has what it needs,
# nothing is installed and nothing is started.

# The Debian packages rkubelet's build and tests need:
#   busybox-static  — /bin/busybox for the local test image (scripts/make-test-image)
#   gcc, libc6-dev  — build.rs compiles the pause program with `gcc -Os -static`
#   pkg-config      — for -sys crates that look for system libraries
#   ca-certificates, curl — HTTPS to crates.io; curl for the examples and checks
#   systemd         — systemd-analyze verify/security on the unit (tests/service_unit.rs)
#   prometheus      — promtool check metrics on /metrics (tests/e2e_service.rs)
#   lintian, man-db, binutils — the .deb's check (tests/packaging.rs), the unit's
#                     man page lookup by systemd-analyze verify, strip/objdump in
#                     packaging/build-deb
#   docker-registry, apache2-utils — a real registry (and htpasswd for its basic
#                     auth) for the private registry test (tests/e2e_registry.rs);
#                     the test starts and stops its own registries
RKUBELET_DEB_PACKAGES=(busybox-static gcc libc6-dev pkg-config ca-certificates curl systemd prometheus
    lintian man-db binutils docker-registry apache2-utils)

# The image the tests and the bundled examples run (built locally, no registry).
RKUBELET_TEST_IMAGE=${RKUBELET_TEST_IMAGE:-rkubelet/busybox:local}

RKUBELET_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

step() {
    printf '\n==================================================================\n'
    printf '=== %s\n' "$*"
    printf '==================================================================\n'
}

note() { printf '%s\n' "--- $*"; }

die() {
    printf '\n!!! ERROR: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (run as root, or install sudo)"
    fi
}

deb_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

_apt_updated=0
# Installs the given Debian packages that are missing; runs `apt-get update`
# once, and only when something is missing.
ensure_deb_packages() {
    local missing=() pkg
    if ! command -v dpkg-query >/dev/null 2>&1; then
        note "not a Debian system (no dpkg-query): make sure these are installed: $*"
        return 0
    fi
    for pkg in "$@"; do
        deb_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        note "packages present: $*"
        return 0
    fi
    note "installing missing packages: ${missing[*]}"
    if [ "$_apt_updated" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q \
            || die "apt-get update failed"
        _apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        </dev/null || die "apt-get install ${missing[*]} failed"
}

# cargo is a prerequisite: the Rust toolchain cannot be downloaded by this
# script. rustup installs it in ~/.cargo/bin, which a non-login shell may not
# have on PATH, so look there too.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
        export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found.
    The Rust toolchain (cargo, rustc) is a prerequisite and is not installed by
    this script. Install it with rustup (https://rustup.rs), then re-run."
    note "$(cargo --version)"
}

_docker_answers() { docker info >/dev/null 2>&1; }

# Polls `docker info` for up to $1 seconds.
_wait_for_docker() {
    local deadline=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$deadline" ]; do
        _docker_answers && return 0
        sleep 1
    done
    _docker_answers
}

# Makes sure a Docker daemon answers. Installs Debian's docker.io when there is
# no docker CLI at all; starts the daemon when it is installed but not running
# (systemd, then the init script, then dockerd in the background); fails loudly
# when none of that works.
ensure_docker() {
    if ! command -v docker >/dev/null 2>&1; then
        note "no docker CLI: installing Debian's docker.io"
        ensure_deb_packages docker.io
    fi
    if _docker_answers; then
        note "Docker daemon answers: server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
        return 0
    fi

    local err
    err=$(docker info 2>&1 >/dev/null || true)
    if printf '%s' "$err" | grep -qi 'permission denied'; then
        die "the Docker daemon is running but this user may not use it:
    $err
    Run as root, or add yourself to the 'docker' group (then log in again)."
    fi
    case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
        unix:///var/run/docker.sock) ;;
        *) die "the Docker daemon at DOCKER_HOST=$DOCKER_HOST does not answer:
    $err" ;;
    esac

    note "the Docker daemon does not answer; trying to start it"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        note "systemctl start docker"
        as_root systemctl start docker && _wait_for_docker 30 && return 0
    fi
    if command -v service >/dev/null 2>&1 && [ -e /etc/init.d/docker ]; then
        note "service docker start"
        as_root service docker start && _wait_for_docker 30 && return 0
    fi
    if command -v dockerd >/dev/null 2>&1; then
        local log=${DOCKERD_LOG:-/tmp/rkubelet-dockerd.log}
        note "starting dockerd in the background (log: $log)"
        as_root sh -c "nohup dockerd >>'$log' 2>&1 </dev/null &"
        if _wait_for_docker 60; then
            note "dockerd is up"
            return 0
        fi
        printf '%s\n' "--- last lines of $log:" >&2
        tail -n 30 "$log" >&2 2>/dev/null || true
    fi
    die "could not reach or start the Docker daemon.
    docker info said: $err
    rkubelet's tests and examples need a running Docker daemon: start it
    (systemctl start docker, service docker start, or dockerd) and re-run."
}

# Builds the local busybox image the tests and examples use (idempotent).
ensure_test_image() {
    "$RKUBELET_REPO_ROOT/scripts/make-test-image" "$RKUBELET_TEST_IMAGE"
}

# All prerequisites, in order, with headers.
# A kubectl for the compatibility test (tests/e2e_kubectl.rs): any will do;
# Debian's kubernetes-client provides one when none is installed.
ensure_kubectl() {
    if command -v kubectl >/dev/null 2>&1; then
        note "kubectl present: $(kubectl version --client 2>/dev/null | head -1)"
        return 0
    fi
    ensure_deb_packages kubernetes-client
    command -v kubectl >/dev/null 2>&1 || die "kubectl is still missing after installing kubernetes-client"
}

ensure_prerequisites() {
    step "Prerequisites: Debian packages"
    ensure_deb_packages "${RKUBELET_DEB_PACKAGES[@]}"
    step "Prerequisites: Rust toolchain"
    ensure_cargo
    step "Prerequisites: Docker daemon"
    ensure_docker
    step "Prerequisites: local test image $RKUBELET_TEST_IMAGE"
    ensure_test_image
}

# CARGO_LOCKED=(--locked) when Cargo.lock exists, so a stale lock file fails
# the build instead of being rewritten silently; empty otherwise.
# (Used by the scripts that source this file.)
# shellcheck disable=SC2034
if [ -f "$RKUBELET_REPO_ROOT/Cargo.lock" ]; then CARGO_LOCKED=(--locked); else CARGO_LOCKED=(); fi
