#!/usr/bin/env bash
# End-to-end test of the Windows build of docker-credential-lightsail, run under Wine 8 (Debian
# 12's wine64) against the fake Lightsail endpoint on 127.0.0.1: the credential-helper protocol
# (version, get, store, list, erase), the per-user cache in %LOCALAPPDATA% (one API call, a cache
# hit, two processes at once, a corrupt entry) and `configure` on a config.json in a Windows path.
#
# Wine 8 has no bcryptprimitives.dll, whose ProcessPrng Rust's std (1.78+) imports: the test
# builds tests/e2e/wine/bcryptprimitives.c with mingw and puts it beside the .exe.
#
# It re-executes itself in private mount, network and PID namespaces: loopback only, the Wine
# prefix (about 700 MB: Wine 8 copies its DLLs into it) on a private tmpfs. Everything it started,
# the wineserver included, dies with it.
#
# Needs root and what tests/e2e/wine-install-deps installs (wine64, mingw-w64, the Rust target).
# Environment:
#   HELPER_EXE  the Windows build
#               (default target/x86_64-pc-windows-gnu/debug/docker-credential-lightsail.exe)
#   FAKE_BIN    the fake Lightsail endpoint, a Linux binary (default
#               target/debug/examples/fake_lightsail); copied to /tmp/wine-bins first, since the
#               original is rebuilt often
# Prints one `ok - ...` / `not ok - ...` line per check and ends with `N passed, M failed`;
# exits non-zero when a check failed.

# Conditions are passed to `check` as eval strings, which use variables shellcheck cannot see.
# shellcheck disable=SC2016,SC2034
set -euo pipefail

readonly REGION=us-east-1
readonly HOST=123456789012.dkr.ecr.$REGION.amazonaws.com
readonly PASSWORD=LSPW-wine-e2e-fixed-registry-password
readonly AWS_SECRET=wine-e2e-secret-access-key-example
readonly WINE_BIN=/usr/lib/wine/wine64
readonly WINESERVER_BIN=/usr/lib/wine/wineserver64
readonly CMD_TIMEOUT=60   # seconds, for every wine command (the first start in a new prefix is slow)
readonly BOOT_TIMEOUT=150 # seconds, for wineboot --init
readonly RUN_TIMEOUT=240  # seconds, for the whole run, wineboot included

self=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$self")/../.." && pwd)
HELPER_EXE=$(readlink -f "${HELPER_EXE:-$repo/target/x86_64-pc-windows-gnu/release/docker-credential-lightsail.exe}" || true)
FAKE_BIN=$(readlink -f "${FAKE_BIN:-$repo/target/debug/examples/fake_lightsail}" || true)
export HELPER_EXE FAKE_BIN

# ---- outside the namespaces: preflight, then re-execute inside ---------------------------------

if [ -z "${DCL_E2E_INSIDE:-}" ]; then
    # shellcheck source=tests/e2e/preflight.sh
    source "$(dirname "$self")/preflight.sh"
    need_root "it makes namespaces and mounts"
    need_tools tests/e2e/wine-install-deps "$WINE_BIN:wine64" "$WINESERVER_BIN:wine64" \
        x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64 python3:python3 timeout:coreutils \
        unshare:util-linux ip:iproute2
    need [ -f "$HELPER_EXE" ] -- "no Windows helper at ${HELPER_EXE:-?}: cargo build --target x86_64-pc-windows-gnu, or set HELPER_EXE"
    if [ -x "$FAKE_BIN" ]; then
        # A private copy: the original may be relinked while the test runs.
        mkdir -p /tmp/wine-bins
        cp "$FAKE_BIN" /tmp/wine-bins/fake_lightsail.tmp && mv -f /tmp/wine-bins/fake_lightsail.tmp /tmp/wine-bins/fake_lightsail
        FAKE_BIN=/tmp/wine-bins/fake_lightsail
    else
        problems+=("no fake Lightsail at ${FAKE_BIN:-?}: cargo build --example fake_lightsail, or set FAKE_BIN")
    fi
    enter_namespaces FAKE_BIN="$FAKE_BIN"
fi

# ---- inside: private mounts, loopback only ------------------------------------------------------

started_at=$(date +%s.%N)
ip link set lo up
work=$(mktemp -d "${TMPDIR:-/tmp}/dcl-wine.XXXXXX")
mount -t tmpfs -o mode=0700,size=1200m dcl-wine "$work"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -d "${WINEPREFIX:-/nonexistent}" ]; then
        timeout 10 "$WINESERVER_BIN" -k >/dev/null 2>&1 || true
    fi
    umount "$work" 2>/dev/null || true
    rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'fatal "interrupted (the whole run has ${RUN_TIMEOUT} s)"' TERM INT

# shellcheck source=tests/e2e/checks.sh
source "$(dirname "$self")/checks.sh"
# helper NAME ACTION [ARGS...]: runs the .exe under Wine, as `run` does.
helper() {
    local name=$1
    shift
    run "$name" "$WINE_BIN" "$exe" "$@"
}
stderr_empty() { [ ! -s "$err" ]; }
json() { python3 - "$@"; }
# login_calls [URL]: how many registry logins the fake (at URL, default the first one) answered.
login_calls() {
    python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "/__calls", timeout=5).read().decode().strip())' "${1:-$fake_url}"
}
# credentials FILE SECRET: FILE is exactly one line of the protocol's JSON for $HOST with SECRET.
credentials() {
    json "$1" "$HOST" "$2" <<'EOF'
import json, sys
path, host, secret = sys.argv[1:]
text = open(path, encoding="utf-8", newline="").read()
if not text.endswith("\n") or text.count("\n") != 1 or "\r" in text:
    sys.exit("not one line ending in \\n: %r" % text)
doc = json.loads(text)
keys = list(doc)
if keys != ["ServerURL", "Username", "Secret"]:
    sys.exit("keys %r" % keys)
if doc["ServerURL"].removeprefix("https://").rstrip("/") != host or doc["Username"] != "AWS" \
        or doc["Secret"] != secret:
    sys.exit("unexpected %r" % doc)
EOF
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# A user with nothing set up: its own Unix HOME, no AWS files, no Docker settings.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_DEFAULT_REGION AWS_REGION AWS_CONFIG_FILE \
    AWS_SHARED_CREDENTIALS_FILE DOCKER_CONFIG DOCKER_CONTEXT DOCKER_HOST XDG_CONFIG_HOME \
    XDG_CACHE_HOME DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR DOCKER_CREDENTIAL_LIGHTSAIL_LOG \
    DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT \
    HTTPS_PROXY HTTP_PROXY ALL_PROXY NO_PROXY https_proxy http_proxy all_proxy no_proxy \
    WINELOADER WINESERVER WINEDLLPATH DISPLAY WAYLAND_DISPLAY
export HOME=$work/home
mkdir -p "$HOME"
export WINEPREFIX=$work/prefix WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml=" WINEDEBUG=-all

# The .exe and, beside it, the ProcessPrng shim that Wine 8 lacks.
mkdir -p "$work/bin"
exe=$work/bin/docker-credential-lightsail.exe
cp "$HELPER_EXE" "$exe"
timeout 60 x86_64-w64-mingw32-gcc -shared -O2 -s -Wall -Wextra -Werror \
    -o "$work/bin/bcryptprimitives.dll" "$repo/tests/e2e/wine/bcryptprimitives.c" -ladvapi32 \
    >"$work/shim.log" 2>&1 || fatal "build the bcryptprimitives.dll shim" "$(cat "$work/shim.log")"
imports=$(x86_64-w64-mingw32-objdump -p "$exe" 2>/dev/null | awk '/DLL Name:/ { print tolower($3) }' | sort -u | tr '\n' ' ')
echo "# $(basename "$HELPER_EXE") ($(stat -c %s "$exe") bytes) imports: ${imports:-?}"

# The prefix, once: wineboot --init, then a wineserver that stays up until the end.
boot_started=$(date +%s.%N)
timeout "$BOOT_TIMEOUT" "$WINE_BIN" wineboot --init >"$work/wineboot.log" 2>&1 ||
    fatal "wineboot --init makes the prefix (within $BOOT_TIMEOUT s)" "$(tail -n 20 "$work/wineboot.log")"
timeout 30 "$WINESERVER_BIN" -w >>"$work/wineboot.log" 2>&1 ||
    fatal "the wineserver of wineboot ends" "$(tail -n 20 "$work/wineboot.log")"
"$WINESERVER_BIN" -p >>"$work/wineboot.log" 2>&1 ||
    fatal "start a persistent wineserver" "$(tail -n 20 "$work/wineboot.log")"
echo "# wineboot --init took $(elapsed "$boot_started") s ($("$WINE_BIN" --version 2>/dev/null || echo "wine ?"), prefix $(du -sm "$WINEPREFIX" | cut -f1) MB)"
users=$WINEPREFIX/drive_c/users

# The fake Lightsail endpoint, handing out a fixed password.
"$FAKE_BIN" --password "$PASSWORD" >"$work/fake.out" 2>"$work/fake.err" &
pids+=($!)
fake_has_url() { [ -n "$(head -n 1 "$work/fake.out" 2>/dev/null)" ]; }
wait_until 60 fake_has_url || fatal "the fake Lightsail endpoint starts" "$(cat "$work/fake.err")"
fake_url=$(head -n 1 "$work/fake.out")
echo "# fake Lightsail $fake_url"

export AWS_ACCESS_KEY_ID=AKIAWINEE2EEXAMPLE
export AWS_SECRET_ACCESS_KEY=$AWS_SECRET
export AWS_ENDPOINT_URL_LIGHTSAIL=$fake_url
export AWS_EC2_METADATA_DISABLED=true
export DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT=20
checks_started=$(date +%s.%N)

# ---- version ------------------------------------------------------------------------------------

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
helper version version
check "version prints exactly \"docker-credential-lightsail $version\"" \
    eval 'succeeded && [ "$(cat "$out")" = "docker-credential-lightsail $version" ] && [ "$(wc -l <"$out")" -eq 1 ]'
if [ "$rc" -ne 0 ]; then
    # Nothing runs: show why, with the loader's own messages (a DLL or an import Wine lacks).
    WINEDEBUG=err+module run version-debug "$WINE_BIN" "$exe" version
    echo "# with WINEDEBUG=err+module:"
    printf '%s\n' "${last_output[@]}" | sed 's/^/#   /'
fi

# ---- get: a foreign host, a login from the API, the cache ---------------------------------------

INPUT=docker.io helper get-foreign get
check "get docker.io prints exactly \"credentials not found in native keychain\", exits 1, no API call" \
    eval '[ "$rc" -eq 1 ] && [ "$(cat "$out")" = "credentials not found in native keychain" ] && [ "$(login_calls)" = 0 ]'

INPUT=$HOST helper get-api get
check "get $HOST (default cache folder) prints the JSON credentials from one API call" \
    eval 'succeeded && credentials "$out" "$PASSWORD" && [ "$(login_calls)" = 1 ]'
find_entries() { find "$users" -path '*/AppData/Local/*' -name 'login-*.json' -type f 2>/dev/null; }
entry=$(find_entries | head -n 1)
entry_found() {
    # On failure: the files the helper made anywhere under the prefix or the Unix HOME.
    last_output=("no users/*/AppData/Local/**/login-*.json; files written since the fake started:"
        "$(find "$WINEPREFIX/drive_c" "$HOME" -newer "$work/fake.out" -type f 2>/dev/null | sed "s|^$work/||" | head -n 20)")
    [ -n "$entry" ] && json "$entry" <<<"import json, sys; json.load(open(sys.argv[1]))"
}
check "the cache entry is a JSON file in the prefix's per-user local app data (users/*/AppData/Local/...)" \
    entry_found
[ -z "$entry" ] || echo "# cache entry: ${entry#"$WINEPREFIX"/}"

INPUT=$HOST helper get-cached get
check "a second get answers from the cache: the same credentials, no second API call" \
    eval 'succeeded && credentials "$out" "$PASSWORD" && [ "$(login_calls)" = 1 ]'

# ---- a corrupt cache entry is replaced ----------------------------------------------------------

if [ -n "$entry" ]; then
    printf 'garbage {"format": \0\377 not json' >"$entry"
    INPUT=$HOST helper get-corrupt get
    check "after the cache entry was overwritten with garbage, get still answers, with one new API call" \
        eval 'succeeded && credentials "$out" "$PASSWORD" && [ "$(login_calls)" = 2 ]'
    check "and the entry was replaced: it parses again" \
        eval 'json "$entry" <<<"import json, sys; json.load(open(sys.argv[1]))" >"$work/parse.out" 2>&1 || { last_output=("$(cat "$work/parse.out")" "file: $(head -c 300 "$entry" | od -c | head -n 5)"); false; }'
else
    not_ok "a corrupt cache entry is replaced (no cache entry to corrupt)"
fi

# ---- store, get, list, erase --------------------------------------------------------------------

# ECR-shaped, as a real registry password is (base64 of JSON with its expiry, an hour ahead): the
# helper serves it until then without asking the account; one of unknown age would give way.
typed=$(printf '{"payload":"typed","expiration":%d}' "$(($(date +%s) + 3600))" | base64 -w0)
INPUT="{\"ServerURL\":\"https://$HOST\",\"Username\":\"AWS\",\"Secret\":\"$typed\"}" helper store store
check "store {\"ServerURL\":\"https://$HOST\",...,\"Secret\":\"(typed)\"} succeeds silently" \
    eval 'succeeded && [ ! -s "$out" ]'
calls_before=$(login_calls)
INPUT=$HOST helper get-stored get
check "get then returns the stored secret (typed), with no API call" \
    eval 'succeeded && credentials "$out" "$typed" && [ "$(login_calls)" = "$calls_before" ]'
lists_host() {
    json "$out" "$HOST" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
sys.exit(0 if {k.removeprefix("https://"): v for k, v in doc.items()}.get(sys.argv[2]) == "AWS" else 1)
EOF
}
INPUT=unused helper list list
check "list shows $HOST (username AWS)" eval 'succeeded && lists_host'
INPUT=$HOST helper erase erase
check "erase $HOST succeeds silently" eval 'succeeded && [ ! -s "$out" ]'
INPUT=unused helper list-after-erase list
check "list then shows {}" eval 'succeeded && [ "$(tr -d " \r\n" <"$out")" = "{}" ]'

# ---- two processes at once on an empty cache: one API call -------------------------------------

"$FAKE_BIN" --password "$PASSWORD" --delay-ms 1000 >"$work/slow-fake.out" 2>"$work/slow-fake.err" &
pids+=($!)
slow_fake_has_url() { [ -n "$(head -n 1 "$work/slow-fake.out" 2>/dev/null)" ]; }
if wait_until 60 slow_fake_has_url; then
    slow_url=$(head -n 1 "$work/slow-fake.out")
    # A cache folder of its own, named by a Windows path, that does not exist yet.
    mkdir -p "$work/out"
    for i in 1 2; do
        (
            set +e
            date +%s.%N >"$work/out/concurrent-$i.started"
            printf '%s\n' "$HOST" | DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR='C:\dcl-concurrent-cache' \
                AWS_ENDPOINT_URL_LIGHTSAIL=$slow_url timeout "$CMD_TIMEOUT" "$WINE_BIN" "$exe" get \
                >"$work/out/concurrent-$i.stdout" 2>"$work/out/concurrent-$i.stderr"
            echo $? >"$work/out/concurrent-$i.rc"
            date +%s.%N >"$work/out/concurrent-$i.ended"
        ) &
        concurrent[i]=$!
    done
    wait "${concurrent[1]}" "${concurrent[2]}" || true
    both_answered() {
        local i
        last_output=("API calls: $(login_calls "$slow_url")")
        for i in 1 2; do
            last_output+=("get $i: exit code $(cat "$work/out/concurrent-$i.rc")"
                "  stdout: $(head -c 1000 "$work/out/concurrent-$i.stdout")"
                "  stderr: $(head -c 1000 "$work/out/concurrent-$i.stderr")")
        done
        for i in 1 2; do
            [ "$(cat "$work/out/concurrent-$i.rc")" = 0 ] &&
                credentials "$work/out/concurrent-$i.stdout" "$PASSWORD" || return 1
        done
        [ "$(login_calls "$slow_url")" = 1 ]
    }
    check "two concurrent gets on an empty cache (API answering in 1 s) both answer, with exactly one API call" \
        both_answered
    # Otherwise the second would only have been a cache hit.
    overlapped() {
        local s1 s2 e1 e2
        s1=$(cat "$work/out/concurrent-1.started") e1=$(cat "$work/out/concurrent-1.ended")
        s2=$(cat "$work/out/concurrent-2.started") e2=$(cat "$work/out/concurrent-2.ended")
        last_output=("get 1 ran from $s1 to $e1, get 2 from $s2 to $e2")
        awk -v s1="$s1" -v s2="$s2" -v e1="$e1" -v e2="$e2" 'BEGIN { exit !(s1 < e2 && s2 < e1) }'
    }
    check "the two gets did run at the same time" overlapped
    check "that cache folder (C:\\dcl-concurrent-cache) holds the entry" \
        eval '[ -n "$(find "$WINEPREFIX/drive_c/dcl-concurrent-cache" -name "login-*.json" 2>/dev/null)" ]'
else
    not_ok "two concurrent gets make one API call (the slow fake did not start)" "$(cat "$work/slow-fake.err")"
fi

# ---- configure keeps a config.json in a Windows folder as it was, but for the one key -----------

export DOCKER_CONFIG='C:\dcl-docker'
config_dir=$WINEPREFIX/drive_c/dcl-docker
mkdir -p "$config_dir"
cat >"$config_dir/config.json" <<'EOF'
{
    "auths": {
        "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNzd29yZA=="},
        "ghcr.io": {}
    },
    "credsStore": "wincred",
    "credHelpers": {
        "gcr.io": "gcloud",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com": "lightsail"
    },
    "zzz-not-docker": {"nested": {"deeper": [1, -2, 2.5, 1e3, 12345678901234567, true, null, "\u00e9 \ud83d\udc33"], "empty": {}}},
    "a-key-that-sorts-first": "",
    "detachKeys": "ctrl-e,e"
}
EOF
cp "$config_dir/config.json" "$work/config-original.json"
helper configure configure --region "$REGION"
check "configure --region $REGION with DOCKER_CONFIG=C:\\dcl-docker succeeds and names $HOST" \
    eval 'succeeded && stdout_has "$HOST"'
same_but_one_key() {
    json "$work/config-original.json" "$config_dir/config.json" "$HOST" <<'EOF'
import json, sys
from decimal import Decimal
def load(path):
    # Pairs keep key order (and would keep duplicates); Decimal compares numbers by value.
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=lambda pairs: ("object", pairs), parse_float=Decimal)
before, after, host = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
helpers = dict(before[1])["credHelpers"][1]
helpers.append((host, "lightsail"))
if before != after:
    print("expected:", json.dumps(before, default=str, ensure_ascii=False))
    print("written: ", json.dumps(after, default=str, ensure_ascii=False))
    sys.exit(1)
EOF
}
check "it changes only credHelpers[\"$HOST\"], keeping every other key, its order and value" \
    eval 'same_but_one_key >"$work/compare.out" 2>&1 || { last_output=("$(cat "$work/compare.out")"); false; }'
check "and leaves nothing else in C:\\dcl-docker (no temp file)" \
    eval '[ "$(ls -A "$config_dir")" = config.json ] || { last_output=("$(ls -la "$config_dir")"); false; }'
unset DOCKER_CONFIG

# ---- nothing leaked -----------------------------------------------------------------------------

checks_took=$(elapsed "$checks_started")
leaks() {
    grep -lF -e "$PASSWORD" -e "$AWS_SECRET" "$work"/out/*.stderr 2>/dev/null || true
    grep -lF -e "$AWS_SECRET" "$work"/out/*.stdout 2>/dev/null || true
}
check "no stderr shows the fake's password or the AWS secret key, no stdout the AWS secret key" \
    eval '[ -z "$(leaks)" ] || { last_output=("in: $(leaks | tr "\n" " ")"); false; }'
noisy() { find "$work/out" -name '*.stderr' ! -name 'version-debug.stderr' -size +0 | sort; }
check "every helper run left stderr empty" \
    eval '[ -z "$(noisy)" ] || { last_output=(); for f in $(noisy); do last_output+=("$(basename "$f"): $(head -c 500 "$f")"); done; false; }'

echo "# checks took $checks_took s; the whole run $(elapsed "$started_at") s"
if [ "$failed" -gt 0 ]; then
    echo "# fake Lightsail stderr:"
    tail -n 15 "$work/fake.err" | sed 's/^/#   /'
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
