#!/usr/bin/env bash
# Name resolution of a static release build of docker-credential-lightsail (glibc on amd64,
# resolved in Rust; musl on arm64, resolved by musl's getaddrinfo): a name that only /etc/hosts
# knows, and a name that only the DNS server of /etc/resolv.conf knows, both reach the fake
# Lightsail endpoint; a name that neither knows is a one-line "cannot resolve" error.
#
# It re-executes itself in private mount, network and PID namespaces: loopback only, with its
# own /etc/hosts and /etc/resolv.conf bind-mounted over the machine's, and dnsmasq as the DNS
# server on 127.0.0.1:53 (it reads no file of the machine: --no-hosts, --no-resolv; it answers
# for .test alone, as an authoritative server: NXDOMAIN for a name it does not know).
# Needs root and dnsmasq-base (tests/e2e/install-deps installs it).
# Environment:
#   HELPER_BIN  the build to test (default
#               target/x86_64-unknown-linux-gnu/release/docker-credential-lightsail, which
#               packaging/release builds)
#   RUNNER      what runs it, if not the machine itself (say qemu-aarch64)
#   FAKE_BIN    the fake Lightsail endpoint (default target/debug/examples/fake_lightsail)
# Prints one `ok - ...` / `not ok - ...` line per check and ends with `N passed, M failed`.

# shellcheck disable=SC2016,SC2034
set -euo pipefail

readonly HOST=123456789012.dkr.ecr.us-east-1.amazonaws.com
readonly PASSWORD=LSPW-resolver-e2e-fixed-registry-password
readonly HOSTS_NAME=lightsail-in-hosts.test
readonly DNS_NAME=lightsail-in-dns.test
readonly NO_NAME=lightsail-nowhere.test
readonly CMD_TIMEOUT=60
readonly RUN_TIMEOUT=300

self=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$self")/../.." && pwd)
HELPER_BIN=$(readlink -f "${HELPER_BIN:-$repo/target/x86_64-unknown-linux-gnu/release/docker-credential-lightsail}" || true)
FAKE_BIN=$(readlink -f "${FAKE_BIN:-$repo/target/debug/examples/fake_lightsail}" || true)
RUNNER=${RUNNER:-}
export HELPER_BIN FAKE_BIN RUNNER

if [ -z "${DCL_E2E_INSIDE:-}" ]; then
    # shellcheck source=tests/e2e/preflight.sh
    source "$(dirname "$self")/preflight.sh"
    need_root "it makes namespaces and bind-mounts /etc/hosts and /etc/resolv.conf"
    need_tools tests/e2e/install-deps dnsmasq:dnsmasq-base file:file python3:python3 \
        timeout:coreutils unshare:util-linux ip:iproute2 ${RUNNER:+"$RUNNER:qemu-user"}
    need [ -x "$HELPER_BIN" ] -- "no helper at ${HELPER_BIN:-?}: packaging/release builds it, or set HELPER_BIN"
    need [ -x "$FAKE_BIN" ] -- "no fake Lightsail at ${FAKE_BIN:-?}: cargo build --example fake_lightsail, or set FAKE_BIN"
    enter_namespaces
fi

# ---- inside: private mounts, loopback only ------------------------------------------------------

ip link set lo up
work=$(mktemp -d "${TMPDIR:-/tmp}/dcl-resolver.XXXXXX")
mount -t tmpfs -o mode=0700 dcl-resolver "$work"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    umount /etc/hosts /etc/resolv.conf 2>/dev/null || true
    umount "$work" 2>/dev/null || true
    rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'fatal "interrupted (the whole run has ${RUN_TIMEOUT} s)"' TERM INT

# shellcheck source=tests/e2e/checks.sh
source "$(dirname "$self")/checks.sh"
helper() {
    local name=$1
    shift
    run "$name" ${RUNNER:+"$RUNNER"} "$HELPER_BIN" "$@"
}
login_calls() {
    python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "/__calls", timeout=30).read().decode().strip())' "$fake_url"
}
has_password() { grep -qF "\"Secret\":\"$PASSWORD\"" "$out"; }

echo "# $(basename "$HELPER_BIN")${RUNNER:+ under $RUNNER}: $(file -b "$HELPER_BIN" | cut -d, -f1-2)"
is_static() {
    last_output=("file: $(file -b "$HELPER_BIN")")
    file -b "$HELPER_BIN" | grep -q 'statically linked\|static-pie linked'
}
check "the build is static (no dynamic loader, no NSS module can be loaded)" is_static

# The machine's files, replaced in this mount namespace only.
printf '127.0.0.1 localhost\n127.0.0.1 %s\n' "$HOSTS_NAME" >"$work/hosts"
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' >"$work/resolv.conf"
mount --bind "$work/hosts" /etc/hosts
mount --bind "$work/resolv.conf" /etc/resolv.conf

dnsmasq --keep-in-foreground --conf-file=/dev/null --no-hosts --no-resolv --user=root \
    --pid-file= --listen-address=127.0.0.1 --bind-interfaces --port=53 \
    --local=/test/ --host-record="$DNS_NAME,127.0.0.1" --log-queries --log-facility=- \
    >"$work/dnsmasq.log" 2>&1 &
pids+=($!)
dns_up() { python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
# A query for "x." of type A: the server is up when it answers anything.
s.sendto(bytes.fromhex("123401000001000000000000") + b"\x01x\x00\x00\x01\x00\x01", ("127.0.0.1", 53))
s.recv(512)
EOF
}
wait_until 60 dns_up || fatal "dnsmasq answers on 127.0.0.1:53" "$(cat "$work/dnsmasq.log")"

"$FAKE_BIN" --password "$PASSWORD" >"$work/fake.out" 2>"$work/fake.err" &
pids+=($!)
fake_has_url() { [ -n "$(head -n 1 "$work/fake.out" 2>/dev/null)" ]; }
wait_until 60 fake_has_url || fatal "the fake Lightsail endpoint starts" "$(cat "$work/fake.err")"
fake_url=$(head -n 1 "$work/fake.out")
port=${fake_url##*:}
echo "# fake Lightsail $fake_url; DNS: dnsmasq on 127.0.0.1:53"

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE \
    DOCKER_CREDENTIAL_LIGHTSAIL_LOG HTTPS_PROXY HTTP_PROXY ALL_PROXY NO_PROXY https_proxy \
    http_proxy all_proxy no_proxy
export HOME=$work/home
mkdir -p "$HOME"
export AWS_ACCESS_KEY_ID=AKIARESOLVERE2EEXAMPLE AWS_SECRET_ACCESS_KEY=resolver-e2e-secret
export AWS_EC2_METADATA_DISABLED=true DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT=20

# Each get uses a cache folder of its own: every one is a cache miss that must reach the fake.
get_via() { # name-of-run host
    INPUT=$HOST DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR="$work/cache-$1" \
        AWS_ENDPOINT_URL_LIGHTSAIL="http://$2:$port" helper "$1" get
}

get_via hosts "$HOSTS_NAME"
check "the endpoint named by /etc/hosts only ($HOSTS_NAME) is reached: a login from the fake" \
    eval 'succeeded && has_password && [ "$(login_calls)" = 1 ]'

get_via dns "$DNS_NAME"
dns_asked() { grep -q "query\[A\] $DNS_NAME from 127.0.0.1" "$work/dnsmasq.log"; }
check "the endpoint named by the DNS server of /etc/resolv.conf only ($DNS_NAME) is reached: a login from the fake" \
    eval 'succeeded && has_password && [ "$(login_calls)" = 2 ] && dns_asked'

get_via nowhere "$NO_NAME"
check "a name neither knows ($NO_NAME) is a one-line \"cannot resolve $NO_NAME\" on stdout, exit 1, no call" \
    eval '[ "$rc" -eq 1 ] && stdout_has "cannot resolve $NO_NAME" && [ "$(wc -l <"$out")" -eq 1 ] && [ "$(login_calls)" = 2 ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
