#!/usr/bin/env bash
# End-to-end test of docker-credential-lightsail with real clients and a real registry:
#   Debian's docker-registry (the CNCF distribution registry) with htpasswd auth and TLS, under
#   the ECR-shaped host name the fake Lightsail endpoint hands out; skopeo pushing through the
#   helper; the docker CLI (no engine needed) reading back, logging in and out.
#
# It re-executes itself in private mount, network and PID namespaces: loopback only, its own
# /etc/hosts and /etc/docker, its files on a tmpfs. Nothing it does is visible outside, and
# everything it started dies with it.
#
# Needs root and the Debian packages that tests/e2e/install-deps installs.
# Environment:
#   HELPER_BIN  the helper binary (default target/debug/docker-credential-lightsail)
#   FAKE_BIN    the fake Lightsail endpoint (default target/debug/examples/fake_lightsail)
# Prints one `ok - ...` / `not ok - ...` line per check and ends with `N passed, M failed`;
# exits non-zero when a check failed.

# Conditions are passed to `check` as eval strings, which use variables shellcheck cannot see.
# shellcheck disable=SC2016,SC2034
set -euo pipefail

readonly REGION=us-east-1
readonly HOST=123456789012.dkr.ecr.$REGION.amazonaws.com
# ECR-shaped, as real registry passwords are: base64 of JSON saying when it expires (6 h from
# now). The helper serves a `docker login` of such a password until then; one of unknown age gives
# way to the account's own login.
PASSWORD=$(printf '{"payload":"LSPW-e2e-fixed-registry-password","expiration":%d}' \
    "$(($(date +%s) + 6 * 3600))" | base64 -w0)
readonly PASSWORD
readonly TAG=e2e-1
# Bounds only end a hung run (a loaded CI machine stays far inside them); no check is timed.
readonly CMD_TIMEOUT=60 # seconds, for every client command
readonly RUN_TIMEOUT=300 # seconds, for the whole run

self=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$self")/../.." && pwd)
HELPER_BIN=$(readlink -f "${HELPER_BIN:-$repo/target/debug/docker-credential-lightsail}" || true)
FAKE_BIN=$(readlink -f "${FAKE_BIN:-$repo/target/debug/examples/fake_lightsail}" || true)
export HELPER_BIN FAKE_BIN

# ---- outside the namespaces: preflight, then re-execute inside ---------------------------------

if [ -z "${DCL_E2E_INSIDE:-}" ]; then
    # shellcheck source=tests/e2e/preflight.sh
    source "$(dirname "$self")/preflight.sh"
    need_root "it makes namespaces and mounts"
    need_tools tests/e2e/install-deps docker-registry:docker-registry skopeo:skopeo \
        htpasswd:apache2-utils openssl:openssl unshare:util-linux ip:iproute2 python3:python3 \
        timeout:coreutils docker:docker.io
    need [ -x "$HELPER_BIN" ] -- "no helper binary at ${HELPER_BIN:-?}: cargo build, or set HELPER_BIN"
    need [ -x "$FAKE_BIN" ] -- "no fake Lightsail at ${FAKE_BIN:-?}: cargo build --example fake_lightsail, or set FAKE_BIN"
    need [ -d /etc/docker ] -- "no /etc/docker to mount over (the docker-registry package makes it)"
    # shellcheck disable=SC2119 # no variables to pass in
    enter_namespaces
fi

# ---- inside: private mounts, loopback only ------------------------------------------------------

ip link set lo up
work=$(mktemp -d "${TMPDIR:-/tmp}/dcl-e2e.XXXXXX")
mount -t tmpfs -o mode=0700,size=256m dcl-e2e "$work"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    umount /etc/docker /etc/hosts "$work" 2>/dev/null || true
    rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'fatal "interrupted (the whole run has ${RUN_TIMEOUT} s)"' TERM INT

# shellcheck source=tests/e2e/checks.sh
source "$(dirname "$self")/checks.sh"
json() { python3 - "$@"; }
# login_calls: how many registry logins the fake has answered.
login_calls() {
    python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "/__calls", timeout=30).read().decode().strip())' "$fake_url"
}
helper_was_called() { grep -qx "$1" "$work/helper-calls.log" 2>/dev/null; }
reset_helper_log() { : >"$work/helper-calls.log"; }

# The registry host resolves to loopback, for this namespace only.
printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 %s\n' "$HOST" >"$work/hosts"
mount --bind "$work/hosts" /etc/hosts

# A throwaway CA and a server certificate for the registry host.
mkdir -p "$work/tls" "$work/etc-docker/certs.d/$HOST" "$work/skopeo-certs"
(
    cd "$work/tls"
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
        -subj "/CN=docker-credential-lightsail e2e CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout ca.key -out ca.crt
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -subj "/CN=$HOST" -keyout server.key -out server.csr
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' \
        "$HOST" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.crt
) >"$work/openssl.log" 2>&1 || fatal "make a CA and server certificate" "$(cat "$work/openssl.log")"
# The docker CLI trusts /etc/docker/certs.d/<host>/ca.crt (a private /etc/docker here);
# skopeo gets its own folder through --dest-cert-dir / --cert-dir.
cp "$work/tls/ca.crt" "$work/etc-docker/certs.d/$HOST/ca.crt"
cp "$work/tls/ca.crt" "$work/skopeo-certs/ca.crt"
mount --bind "$work/etc-docker" /etc/docker

# The registry: htpasswd user AWS with the fixed password, TLS on :443, storage on the tmpfs.
htpasswd -Bbn AWS "$PASSWORD" >"$work/htpasswd" 2>/dev/null
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:443
  secret: docker-credential-lightsail-e2e
  tls:
    certificate: $work/tls/server.crt
    key: $work/tls/server.key
auth:
  htpasswd:
    realm: lightsail-e2e
    path: $work/htpasswd
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
registry_pid=$!
wait_until 60 port_open 443 ||
    fatal "docker-registry listens on 443" "$(tail -n 20 "$work/registry.log")"
kill -0 "$registry_pid" 2>/dev/null || fatal "docker-registry runs" "$(tail -n 20 "$work/registry.log")"

# The fake Lightsail endpoint, handing out the registry's password.
"$FAKE_BIN" --password "$PASSWORD" >"$work/fake.out" 2>"$work/fake.err" &
pids+=($!)
fake_has_url() { [ -n "$(head -n 1 "$work/fake.out" 2>/dev/null)" ]; }
wait_until 60 fake_has_url || fatal "the fake Lightsail endpoint starts" "$(cat "$work/fake.err")"
fake_url=$(head -n 1 "$work/fake.out")

# A user with nothing configured, whose clients find the helper on PATH. The wrapper records
# each action a client asks for, then runs the real binary.
mkdir -p "$work/home" "$work/bin" "$work/run"
cat >"$work/bin/docker-credential-lightsail" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$work/helper-calls.log"
exec "$HELPER_BIN" "\$@"
EOF
chmod +x "$work/bin/docker-credential-lightsail"
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_DEFAULT_REGION REGISTRY_AUTH_FILE \
    DOCKER_CONTEXT DOCKER_CERT_PATH DOCKER_TLS_VERIFY XDG_CONFIG_HOME XDG_CACHE_HOME \
    DOCKER_CREDENTIAL_LIGHTSAIL_LOG DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN \
    DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT
export PATH="$work/bin:$PATH"
export HOME=$work/home
unset DOCKER_CONFIG # the default, ~/.docker, first; DOCKER_CONFIG is used further on
export XDG_RUNTIME_DIR=$work/run   # skopeo's own auth.json would live here: keep it empty
export DOCKER_HOST=unix://$work/no-engine.sock
export DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR=$work/cache
export DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT=10
export AWS_ENDPOINT_URL_LIGHTSAIL=$fake_url
export AWS_ACCESS_KEY_ID=AKIAE2ETESTEXAMPLE
export AWS_SECRET_ACCESS_KEY=e2e-secret-access-key-example
export AWS_REGION=$REGION
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$work/aws/config
export AWS_SHARED_CREDENTIALS_FILE=$work/aws/credentials
config=$HOME/.docker/config.json

# A one-layer image in an OCI layout, made by hand: no engine, no network.
image=$work/image
mkdir -p "$image/blobs/sha256" "$work/rootfs"
printf 'hello from the docker-credential-lightsail e2e test\n' >"$work/rootfs/hello.txt"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/layer.tar" .
gzip -9n <"$work/layer.tar" >"$work/layer.tar.gz"
blob() { # blob FILE: stores FILE as a blob and prints its digest and size
    local digest
    digest=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$image/blobs/sha256/$digest"
    echo "sha256:$digest $(stat -c %s "$1")"
}
diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
read -r layer_digest layer_size < <(blob "$work/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello.txt"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$diff_id" >"$work/image-config.json"
read -r config_digest config_size < <(blob "$work/image-config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$work/manifest.json"
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
    "$manifest_digest" "$manifest_size" >"$image/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$image/oci-layout"
printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$work/policy.json"
skopeo_env=() # VAR=value settings for the next skopeo_push
skopeo_push() { # skopeo_push NAME [skopeo copy options...]
    local name=$1
    shift
    run "$name" env "${skopeo_env[@]}" skopeo --policy "$work/policy.json" copy --retry-times 0 --dest-cert-dir "$work/skopeo-certs" \
        "$@" "oci:$image:v1" "docker://$HOST/sr:$TAG"
}

echo "# registry https://$HOST (docker-registry $(docker-registry --version | awk '{print $NF}')), fake Lightsail $fake_url"
echo "# skopeo $(skopeo --version | awk '{print $NF}'), $(docker --version)"

# ---- configure, then push with the helper's credentials only ------------------------------------

run configure docker-credential-lightsail configure --region "$REGION"
check "configure succeeds and names $HOST" eval 'succeeded && stdout_has "$HOST"'
has_cred_helper() {
    json "$1" "$HOST" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
sys.exit(0 if doc.get("credHelpers", {}).get(sys.argv[2]) == "lightsail" else 1)
EOF
}
check "configure writes credHelpers[\"$HOST\"] = \"lightsail\" to ~/.docker/config.json" \
    has_cred_helper "$config"
check "the new ~/.docker is 0700 and config.json 0600" \
    eval '[ "$(stat -c %a "$HOME/.docker")" = 700 ] && [ "$(stat -c %a "$config")" = 600 ]'
# no_auths_no_secret: no credentials in any auths entry, no password anywhere in $DOCKER_CONFIG.
no_auths_no_secret() {
    last_output=("config.json: $(cat "$config")")
    ! grep -rqF "$PASSWORD" "$(dirname "$config")" && json "$config" <<'EOF'
import json, sys
auths = json.load(open(sys.argv[1])).get("auths", {})
sys.exit(0 if all(not entry for entry in auths.values()) else 1)
EOF
}
check "config.json holds no auths and no password" no_auths_no_secret
check "configure made exactly one Lightsail login call" eval '[ "$(login_calls)" = 1 ]'

skopeo_push push-anonymous --dest-no-creds
check "the registry refuses an anonymous push" eval 'refused && stderr_has unauthorized'
skopeo_push push-wrong-password --dest-creds AWS:wrong-password
check "the registry refuses a push with a wrong password" eval 'refused && stderr_has unauthorized'

reset_helper_log
skopeo_push push --digestfile "$work/pushed-digest"
check "skopeo copy pushes $HOST/sr:$TAG with credentials from the helper (credHelpers)" \
    eval 'succeeded && helper_was_called get'
pushed_digest=$(cat "$work/pushed-digest" 2>/dev/null || true)
check "the pushed digest is the manifest's ($manifest_digest)" \
    eval '[ "$pushed_digest" = "$manifest_digest" ]'
check "the push was served from the helper's cache: still one login call" \
    eval '[ "$(login_calls)" = 1 ]'

# skopeo (containers/image) also reads $DOCKER_CONFIG/config.json, like the docker CLI.
mkdir -p "$work/other-home"
reset_helper_log
skopeo_env=(HOME="$work/other-home" DOCKER_CONFIG="$HOME/.docker")
skopeo_push push-docker-config
skopeo_env=()
check "skopeo also finds credHelpers through \$DOCKER_CONFIG (with a HOME that has no .docker)" \
    eval 'succeeded && helper_was_called get'

# ---- read it back with the docker CLI -----------------------------------------------------------

reset_helper_log
run manifest-inspect docker manifest inspect --verbose "$HOST/sr:$TAG"
inspected_digest() {
    json "$out" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
print((doc[0] if isinstance(doc, list) else doc)["Descriptor"]["digest"])
EOF
}
check "docker manifest inspect reads $HOST/sr:$TAG back through the helper" \
    eval 'succeeded && helper_was_called get && [ "$(inspected_digest)" = "$manifest_digest" ]'

# ---- register the pushed image ------------------------------------------------------------------

run register-1 docker-credential-lightsail register --region "$REGION" --service hello --label web \
    --digest "$pushed_digest"
check "register the pushed digest: :hello.web.1" eval 'succeeded && [ "$(cat "$out")" = ":hello.web.1" ]'
run register-2 docker-credential-lightsail register --region "$REGION" --service hello --label web \
    --digest "$pushed_digest"
check "register it again: :hello.web.2" eval 'succeeded && [ "$(cat "$out")" = ":hello.web.2" ]'
run register-unknown docker-credential-lightsail register --region "$REGION" --service no-such-service \
    --label web --digest "$pushed_digest"
one_clear_line() { [ ! -s "$out" ] && [ "$(wc -l <"$err")" -eq 1 ] && grep -q '^error: .*no-such-service' "$err"; }
check "register for an unknown service fails with one clear line naming it" \
    eval 'refused && one_clear_line'

# ---- docker login / logout store and erase through the helper -----------------------------------

# A fresh cache: whatever `list` shows now, `docker login` put there.
export DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR=$work/login-cache
lists_host() { run list docker-credential-lightsail list && succeeded && json "$out" "$HOST" <<'EOF'; }
import json, sys
sys.exit(0 if json.load(open(sys.argv[1])).get(sys.argv[2]) == "AWS" else 1)
EOF
lists_nothing() { run list docker-credential-lightsail list && succeeded && [ "$(tr -d ' \n' <"$out")" = "{}" ]; }
check "list shows nothing held in a fresh cache" lists_nothing

reset_helper_log
INPUT=wrong-password run login-wrong docker login -u AWS --password-stdin "$HOST"
check "docker login with a wrong password is refused, and nothing is stored" \
    eval 'refused && ! helper_was_called store && lists_nothing'

reset_helper_log
INPUT=$PASSWORD run login docker login -u AWS --password-stdin "$HOST"
check "docker login -u AWS --password-stdin stores through the helper" \
    eval 'succeeded && stdout_has "Login Succeeded" && helper_was_called store && ! stderr_has unencrypted'
check "docker-credential-lightsail list then shows $HOST" lists_host
check "config.json still holds no password" no_auths_no_secret

calls_before=$(login_calls)
run manifest-after-login docker manifest inspect "$HOST/sr:$TAG"
check "the docker login credentials serve docker manifest inspect with no Lightsail call" \
    eval 'succeeded && [ "$(login_calls)" = "$calls_before" ]'

reset_helper_log
run logout docker logout "$HOST"
check "docker logout erases through the helper" eval 'succeeded && helper_was_called erase'
check "docker-credential-lightsail list then shows nothing" lists_nothing
export DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR=$work/cache

# ---- configure keeps a full config.json as it was, but for the one key ---------------------------

export DOCKER_CONFIG=$work/full
mkdir -p "$DOCKER_CONFIG"
cat >"$DOCKER_CONFIG/config.json" <<'EOF'
{
    "auths": {
        "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNzd29yZA=="},
        "ghcr.io": {"auth": "Z2g6dG9rZW4=", "email": "zoë@example.org"},
        "registry.example.org:5000": {}
    },
    "credsStore": "desktop",
    "credHelpers": {
        "999999999999.dkr.ecr.us-east-1.amazonaws.com": "ecr-login",
        "gcr.io": "gcloud",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com": "lightsail"
    },
    "psFormat": "table {{.ID}}\t{{.Image}}\t{{.Names}}",
    "zzz-not-docker": {"nested": {"deeper": [1, -2, 2.5, 0.1, 1e3, 12345678901234567, true, false, null, "\u00e9\u6f22 \ud83d\udc33 \"q\" \\ /"], "empty": {}, "list": []}},
    "proxies": {"default": {"httpProxy": "http://proxy.invalid:3128", "noProxy": "*.test,localhost"}},
    "aliases": {"builder": "buildx"},
    "currentContext": "default",
    "a-key-that-sorts-first": "",
    "日本語のキー": "値",
    "detachKeys": "ctrl-e,e"
}
EOF
chmod 0640 "$DOCKER_CONFIG/config.json"
cp -p "$DOCKER_CONFIG/config.json" "$work/full-original.json"
run configure-full docker-credential-lightsail configure --region "$REGION"
same_but_one_key() {
    json "$work/full-original.json" "$DOCKER_CONFIG/config.json" "$HOST" <<'EOF'
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
mode_of() { stat -c %a "$1"; }
check "configure on a full config.json succeeds" succeeded
check "it keeps every key, its order and value, adding only credHelpers[\"$HOST\"] last" \
    eval 'same_but_one_key >"$work/compare.out" || { last_output=("$(cat "$work/compare.out")"); false; }'
check "it keeps the file mode 0640" eval '[ "$(mode_of "$DOCKER_CONFIG/config.json")" = 640 ]'

cp -p "$DOCKER_CONFIG/config.json" "$work/full-configured.json"
inode=$(stat -c %i "$DOCKER_CONFIG/config.json")
run configure-again docker-credential-lightsail configure --region "$REGION"
check "a second configure reports nothing to change" eval 'succeeded && stdout_has "nothing to change"'
check "and leaves config.json byte-identical and in place" \
    eval 'cmp -s "$work/full-configured.json" "$DOCKER_CONFIG/config.json" && [ "$(stat -c %i "$DOCKER_CONFIG/config.json")" = "$inode" ]'

# ---- --dry-run, a missing folder, a symlink -----------------------------------------------------

export DOCKER_CONFIG=$work/dry
mkdir -p "$DOCKER_CONFIG"
printf '{\n\t"auths": {}\n}\n' >"$DOCKER_CONFIG/config.json"
cp -p "$DOCKER_CONFIG/config.json" "$work/dry-original.json"
run dry-run docker-credential-lightsail configure --region "$REGION" --dry-run
check "configure --dry-run shows the change" eval 'succeeded && stdout_has "$HOST"'
check "configure --dry-run writes nothing" \
    eval 'cmp -s "$work/dry-original.json" "$DOCKER_CONFIG/config.json" && [ "$(ls -A "$DOCKER_CONFIG")" = config.json ]'
export DOCKER_CONFIG=$work/no-such-folder
run dry-run-missing docker-credential-lightsail configure --region "$REGION" --dry-run
check "configure --dry-run creates no Docker config folder" eval 'succeeded && [ ! -e "$DOCKER_CONFIG" ]'

export DOCKER_CONFIG=$work/linked
mkdir -p "$DOCKER_CONFIG" "$work/dotfiles"
printf '{"credHelpers": {"gcr.io": "gcloud"}}\n' >"$work/dotfiles/docker.json"
ln -s ../dotfiles/docker.json "$DOCKER_CONFIG/config.json"
run configure-symlink docker-credential-lightsail configure --region "$REGION"
check "configure through a config.json symlink succeeds" succeeded
check "the symlink stays a symlink to the same file, which gets the entry" \
    eval '[ -L "$DOCKER_CONFIG/config.json" ] && [ "$(readlink "$DOCKER_CONFIG/config.json")" = ../dotfiles/docker.json ] && has_cred_helper "$work/dotfiles/docker.json"'

# ---- doctor against the real registry -----------------------------------------------------------

# doctor asks the registry's /v2/ trusting the system's roots, as Docker's engine does: here, the
# test CA. There is no engine (DOCKER_HOST leads nowhere), so engine.found is its one FAIL.
export DOCKER_CONFIG=$HOME/.docker
doctor() { run "$1" env SSL_CERT_FILE="$work/tls/ca.crt" docker-credential-lightsail doctor --json; }
# doctor_says ID STATUS [TEXT]: the check ID of the last doctor run has STATUS (and TEXT in its
# message or fix).
doctor_says() {
    json "$out" "$@" <<'EOF'
import json, sys
checks = json.load(open(sys.argv[1]))["checks"]
text = sys.argv[4] if len(sys.argv) > 4 else ""
sys.exit(0 if any(c["id"] == sys.argv[2] and c["status"] == sys.argv[3]
                  and text in c["message"] + " " + (c["fix"] or "") for c in checks) else 1)
EOF
}
# doctor_fails_only ID: ID is the only failed check of the last doctor run.
doctor_fails_only() {
    json "$out" "$1" <<'EOF'
import json, sys
failed = [c["id"] for c in json.load(open(sys.argv[1]))["checks"] if c["status"] == "fail"]
sys.exit(0 if failed == [sys.argv[2]] else 1)
EOF
}
doctor doctor
check "doctor: the real registry's /v2/ answers 401 with its challenge" \
    doctor_says registry.v2 ok 'Basic realm="lightsail-e2e"'
check "doctor: the registry accepts the login the helper serves" doctor_says registry.v2_login ok
check "doctor: the login's registry host is the credHelpers key" doctor_says registry.entry ok
check "doctor exits 1 with the missing engine as its only FAIL" \
    eval 'refused && doctor_fails_only engine.found'

# A cached login whose password the registry no longer takes (revoked, say): doctor finds that
# the registry refuses it but takes a fresh one, and names erase; after erase all is well.
stale_cache() {
    python3 - "$DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR" <<'EOF'
import glob, json, os, sys
paths = glob.glob(os.path.join(sys.argv[1], "login-*.json"))
for path in paths:
    doc = json.load(open(path))
    doc["login"]["secret"] = "no-longer-the-registry-password"
    with open(path, "w") as f:
        json.dump(doc, f)
sys.exit(0 if paths else 1)
EOF
}
check "the cached login's password is made stale" stale_cache
doctor doctor-stale
check "doctor: the registry refuses the stale cached login and takes a fresh one; the fix is erase" \
    doctor_says registry.v2_login fail "echo $HOST | docker-credential-lightsail erase"
INPUT=$HOST run erase-stale docker-credential-lightsail erase
doctor doctor-fixed
check "after that fix the registry accepts the helper's login again" \
    eval 'doctor_says registry.v2_login ok && doctor_fails_only engine.found'

# ---- the password never showed ------------------------------------------------------------------

leaks() { grep -rlF -e "$PASSWORD" -e "$AWS_SECRET_ACCESS_KEY" "$work/out" "$work/helper-calls.log" 2>/dev/null || true; }
check "no client output and no helper argument shows the password or the AWS secret key" eval '[ -z "$(leaks)" ]'

if [ "$failed" -gt 0 ]; then
    echo "# last lines of the registry log:"
    tail -n 15 "$work/registry.log" | sed 's/^/#   /'
    echo "# fake Lightsail stderr:"
    tail -n 15 "$work/fake.err" | sed 's/^/#   /'
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
