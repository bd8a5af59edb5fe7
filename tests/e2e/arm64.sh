#!/usr/bin/env bash
# End-to-end test of the Linux arm64 build of docker-credential-lightsail (static, musl), run
# under qemu-user (Debian's qemu-aarch64) against the fake Lightsail endpoint on 127.0.0.1: the
# credential-helper protocol (version, get for a foreign host, a login from the API, a cache hit
# with no second call, 20 concurrent cold gets with one call, store/get/list/erase).
#
# It re-executes itself in private mount, network and PID namespaces: loopback only.
# Needs root and qemu-user (packaging/install-deps installs it).
# Environment:
#   HELPER_BIN  the arm64 build (default
#               target/aarch64-unknown-linux-musl/release/docker-credential-lightsail, which
#               packaging/release builds)
#   FAKE_BIN    the fake Lightsail endpoint, a binary of this machine (default
#               target/debug/examples/fake_lightsail)
#   QEMU        the emulator (default qemu-aarch64)
# Prints one `ok - ...` / `not ok - ...` line per check and ends with `N passed, M failed`;
# exits non-zero when a check failed.

# Conditions are passed to `check` as eval strings, which use variables shellcheck cannot see.
# shellcheck disable=SC2016,SC2034
set -euo pipefail

readonly REGION=us-east-1
readonly HOST=123456789012.dkr.ecr.$REGION.amazonaws.com
readonly PASSWORD=LSPW-arm64-e2e-fixed-registry-password
readonly AWS_SECRET=arm64-e2e-secret-access-key-example
readonly CONCURRENT=20
# Bounds only end a hung run (a loaded CI machine stays far inside them); no check is timed.
readonly CMD_TIMEOUT=60 # seconds, for every helper run
readonly RUN_TIMEOUT=300

self=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$self")/../.." && pwd)
HELPER_BIN=$(readlink -f "${HELPER_BIN:-$repo/target/aarch64-unknown-linux-musl/release/docker-credential-lightsail}" || true)
FAKE_BIN=$(readlink -f "${FAKE_BIN:-$repo/target/debug/examples/fake_lightsail}" || true)
QEMU=${QEMU:-qemu-aarch64}
export HELPER_BIN FAKE_BIN QEMU

if [ -z "${DCL_E2E_INSIDE:-}" ]; then
    # shellcheck source=tests/e2e/preflight.sh
    source "$(dirname "$self")/preflight.sh"
    need_root "it makes namespaces"
    need_tools packaging/install-deps "$QEMU:qemu-user" file:file python3:python3 \
        timeout:coreutils unshare:util-linux ip:iproute2
    need [ -x "$HELPER_BIN" ] -- "no arm64 helper at ${HELPER_BIN:-?}: packaging/release builds it, or set HELPER_BIN"
    need [ -x "$FAKE_BIN" ] -- "no fake Lightsail at ${FAKE_BIN:-?}: cargo build --example fake_lightsail, or set FAKE_BIN"
    enter_namespaces
fi

# ---- inside: private mounts, loopback only ------------------------------------------------------

ip link set lo up
work=$(mktemp -d "${TMPDIR:-/tmp}/dcl-arm64.XXXXXX")
mount -t tmpfs -o mode=0700 dcl-arm64 "$work"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    umount "$work" 2>/dev/null || true
    rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'fatal "interrupted (the whole run has ${RUN_TIMEOUT} s)"' TERM INT

# shellcheck source=tests/e2e/checks.sh
source "$(dirname "$self")/checks.sh"
# helper NAME ACTION [ARGS...]: runs the arm64 binary under qemu, as `run` does.
helper() {
    local name=$1
    shift
    run "$name" "$QEMU" "$HELPER_BIN" "$@"
}
stderr_empty() { [ ! -s "$err" ]; }
# login_calls [URL]: how many registry logins the fake (at URL, default the first one) answered.
login_calls() {
    python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "/__calls", timeout=30).read().decode().strip())' "${1:-$fake_url}"
}
# credentials FILE SECRET: FILE is exactly one line of the protocol's JSON for $HOST with SECRET.
credentials() {
    python3 - "$1" "$HOST" "$2" <<'EOF'
import json, sys
path, host, secret = sys.argv[1:]
text = open(path, encoding="utf-8", newline="").read()
if not text.endswith("\n") or text.count("\n") != 1:
    sys.exit("not one line ending in \\n: %r" % text)
doc = json.loads(text)
if list(doc) != ["ServerURL", "Username", "Secret"]:
    sys.exit("keys %r" % list(doc))
if doc["ServerURL"].removeprefix("https://").rstrip("/") != host or doc["Username"] != "AWS" \
        or doc["Secret"] != secret:
    sys.exit("unexpected %r" % doc)
EOF
}

# A user with nothing set up: its own HOME, no AWS files, no Docker settings.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_DEFAULT_REGION AWS_REGION AWS_CONFIG_FILE \
    AWS_SHARED_CREDENTIALS_FILE DOCKER_CONFIG XDG_CONFIG_HOME XDG_CACHE_HOME \
    DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR DOCKER_CREDENTIAL_LIGHTSAIL_LOG \
    HTTPS_PROXY HTTP_PROXY ALL_PROXY NO_PROXY https_proxy http_proxy all_proxy no_proxy
export HOME=$work/home
mkdir -p "$HOME"

# ---- the binary ---------------------------------------------------------------------------------

described=$(file -b "$HELPER_BIN")
echo "# $(basename "$HELPER_BIN"): $described; $("$QEMU" --version | head -n 1)"
is_static_arm64() {
    last_output=("file: $described")
    grep -q 'ARM aarch64' <<<"$described" && grep -q 'statically linked\|static-pie linked' <<<"$described"
}
check "the binary is a static ELF for ARM aarch64" is_static_arm64

"$FAKE_BIN" --password "$PASSWORD" >"$work/fake.out" 2>"$work/fake.err" &
pids+=($!)
fake_has_url() { [ -n "$(head -n 1 "$work/fake.out" 2>/dev/null)" ]; }
wait_until 60 fake_has_url || fatal "the fake Lightsail endpoint starts" "$(cat "$work/fake.err")"
fake_url=$(head -n 1 "$work/fake.out")
echo "# fake Lightsail $fake_url"

export AWS_ACCESS_KEY_ID=AKIAARM64E2EEXAMPLE
export AWS_SECRET_ACCESS_KEY=$AWS_SECRET
export AWS_ENDPOINT_URL_LIGHTSAIL=$fake_url
export AWS_EC2_METADATA_DISABLED=true

# ---- version, a foreign host, a login, the cache ------------------------------------------------

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
helper version version
check "version prints exactly \"docker-credential-lightsail $version\"" \
    eval 'succeeded && [ "$(cat "$out")" = "docker-credential-lightsail $version" ]'

INPUT=docker.io helper get-foreign get
check "get docker.io prints exactly \"credentials not found in native keychain\", exits 1, no API call" \
    eval '[ "$rc" -eq 1 ] && [ "$(cat "$out")" = "credentials not found in native keychain" ] && [ "$(login_calls)" = 0 ]'

INPUT=$HOST helper get-api get
check "get $HOST prints the JSON credentials from one API call" \
    eval 'succeeded && credentials "$out" "$PASSWORD" && [ "$(login_calls)" = 1 ]'
INPUT=$HOST helper get-cached get
check "a second get answers from the cache: the same credentials, no second API call" \
    eval 'succeeded && credentials "$out" "$PASSWORD" && [ "$(login_calls)" = 1 ]'

# ---- $CONCURRENT processes at once on an empty cache: one API call ------------------------------

"$FAKE_BIN" --password "$PASSWORD" --delay-ms 2000 >"$work/slow-fake.out" 2>"$work/slow-fake.err" &
pids+=($!)
slow_fake_has_url() { [ -n "$(head -n 1 "$work/slow-fake.out" 2>/dev/null)" ]; }
if wait_until 60 slow_fake_has_url; then
    slow_url=$(head -n 1 "$work/slow-fake.out")
    mkdir -p "$work/out"
    concurrent=()
    for i in $(seq "$CONCURRENT"); do
        (
            set +e
            date +%s.%N >"$work/out/concurrent-$i.started"
            printf '%s\n' "$HOST" | DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR="$work/concurrent-cache" \
                AWS_ENDPOINT_URL_LIGHTSAIL=$slow_url timeout "$CMD_TIMEOUT" "$QEMU" "$HELPER_BIN" get \
                >"$work/out/concurrent-$i.stdout" 2>"$work/out/concurrent-$i.stderr"
            echo $? >"$work/out/concurrent-$i.rc"
            date +%s.%N >"$work/out/concurrent-$i.ended"
        ) &
        concurrent+=($!)
    done
    wait "${concurrent[@]}" || true
    all_answered() {
        local i
        last_output=("API calls: $(login_calls "$slow_url")")
        for i in $(seq "$CONCURRENT"); do
            if [ "$(cat "$work/out/concurrent-$i.rc")" != 0 ] ||
                ! credentials "$work/out/concurrent-$i.stdout" "$PASSWORD" >/dev/null 2>&1; then
                last_output+=("get $i: exit code $(cat "$work/out/concurrent-$i.rc")"
                    "  stdout: $(head -c 500 "$work/out/concurrent-$i.stdout")"
                    "  stderr: $(head -c 500 "$work/out/concurrent-$i.stderr")")
                return 1
            fi
        done
        [ "$(login_calls "$slow_url")" = 1 ]
    }
    check "$CONCURRENT concurrent gets on an empty cache (API answering in 2 s) all answer, with exactly one API call" \
        all_answered
    # Otherwise the later ones would only have been cache hits: every get started before the
    # first one ended.
    overlapped() {
        local first_end last_start
        first_end=$(cat "$work"/out/concurrent-*.ended | sort -n | head -n 1)
        last_start=$(cat "$work"/out/concurrent-*.started | sort -n | tail -n 1)
        last_output=("the last get started at $last_start, the first ended at $first_end")
        awk -v s="$last_start" -v e="$first_end" 'BEGIN { exit !(s < e) }'
    }
    check "the $CONCURRENT gets did run at the same time" overlapped
else
    not_ok "$CONCURRENT concurrent gets make one API call (the slow fake did not start)" "$(cat "$work/slow-fake.err")"
fi

# ---- store, get, list, erase --------------------------------------------------------------------

# What `docker login` stores, for a user with no AWS credentials at all (with them, a stored
# password of unknown age gives way to the account's login), in a cache folder of its own.
store_user() {
    INPUT=$1 DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR="$work/store-cache" \
        run "$2" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$QEMU" "$HELPER_BIN" "${@:3}"
}
store_user "{\"ServerURL\":\"https://$HOST\",\"Username\":\"AWS\",\"Secret\":\"typed\"}" store store
check "store {\"ServerURL\":\"https://$HOST\",...,\"Secret\":\"typed\"} succeeds silently" \
    eval 'succeeded && [ ! -s "$out" ]'
calls_before=$(login_calls)
store_user "$HOST" get-stored get
check "get then returns the stored secret \"typed\", with no API call" \
    eval 'succeeded && credentials "$out" typed && [ "$(login_calls)" = "$calls_before" ]'
store_user unused list list
check "list shows $HOST (username AWS)" \
    eval 'succeeded && python3 -c "import json, sys; d = json.load(open(sys.argv[1])); sys.exit(d.get(sys.argv[2], d.get(\"https://\" + sys.argv[2])) != \"AWS\")" "$out" "$HOST"'
store_user "$HOST" erase erase
check "erase $HOST succeeds silently" eval 'succeeded && [ ! -s "$out" ]'
store_user unused list-after-erase list
check "list then shows {}" eval 'succeeded && [ "$(tr -d " \n" <"$out")" = "{}" ]'

# ---- nothing leaked -----------------------------------------------------------------------------

leaks() {
    grep -lF -e "$PASSWORD" -e "$AWS_SECRET" "$work"/out/*.stderr 2>/dev/null || true
    grep -lF -e "$AWS_SECRET" "$work"/out/*.stdout 2>/dev/null || true
}
check "no stderr shows the fake's password or the AWS secret key, no stdout the AWS secret key" \
    eval '[ -z "$(leaks)" ] || { last_output=("in: $(leaks | tr "\n" " ")"); false; }'
noisy() { find "$work/out" -name '*.stderr' -size +0 | sort; }
check "every helper run left stderr empty" \
    eval '[ -z "$(noisy)" ] || { last_output=(); for f in $(noisy); do last_output+=("$(basename "$f"): $(head -c 500 "$f")"); done; false; }'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
