#!/usr/bin/env bash
# End-to-end test of a plain `docker push`, `podman push` and `buildah push` to a Lightsail
# registry host through docker-credential-lightsail, with nothing but
#   {"credHelpers": {"<host>": "lightsail"}}
# in the client's config.json and no `docker login`:
#   - a real Docker Engine (Debian's dockerd 20.10, with its own containerd) started here, driven
#     by whatever docker CLI is on PATH (API version negotiated);
#   - Debian's docker-registry (the CNCF distribution registry) with htpasswd auth and TLS on :443,
#     under the ECR-shaped host name the fake Lightsail endpoint hands out;
#   - podman and buildah (containers/image) with private vfs storage.
# Each push must land the very manifest the client reported, cost at most the one Lightsail
# login call the helper caches, and be refused when the helper hands out a wrong password.
# `docker-credential-lightsail push` must register what it pushed, and leave nothing behind
# (no private folder, no tag, no engine push running) when SIGTERM stops it mid-push.
#
# It re-executes itself in private mount, network and PID namespaces: loopback only, its own
# /etc/hosts, /etc/docker, /etc/containers and /run, writes to /var/lib kept on a tmpfs (podman
# keeps a cache in /var/lib/containers), its files on a tmpfs. Nothing it does is visible
# outside, and everything it started (dockerd, containerd, the registry) dies with it.
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
readonly PASSWORD=LSPW-engine-fixed-registry-password
readonly WRONG_PASSWORD=LSPW-engine-not-the-registry-password
# Bounds only end a hung run (a loaded CI machine stays far inside them); no check is timed.
readonly CMD_TIMEOUT=60 # seconds, for every client command
readonly RUN_TIMEOUT=300 # seconds, for the whole run (plus 10 to kill what is left)

self=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$self")/../.." && pwd)
HELPER_BIN=$(readlink -f "${HELPER_BIN:-$repo/target/debug/docker-credential-lightsail}" || true)
FAKE_BIN=$(readlink -f "${FAKE_BIN:-$repo/target/debug/examples/fake_lightsail}" || true)
export HELPER_BIN FAKE_BIN

# ---- outside the namespaces: preflight, then re-execute inside ---------------------------------

if [ -z "${DCL_E2E_INSIDE:-}" ]; then
    # shellcheck source=tests/e2e/preflight.sh
    source "$(dirname "$self")/preflight.sh"
    need_root "it starts dockerd, makes namespaces and mounts"
    need_tools tests/e2e/install-deps dockerd:docker.io containerd:containerd docker:docker.io \
        podman:podman buildah:buildah docker-registry:docker-registry htpasswd:apache2-utils \
        openssl:openssl unshare:util-linux ip:iproute2 python3:python3 curl:curl timeout:coreutils
    need [ -x "$HELPER_BIN" ] -- "no helper binary at ${HELPER_BIN:-?}: cargo build, or set HELPER_BIN"
    need [ -x "$FAKE_BIN" ] -- "no fake Lightsail at ${FAKE_BIN:-?}: cargo build --example fake_lightsail, or set FAKE_BIN"
    # Mount points: this script makes none on the real file system.
    need [ -d /etc/docker ] -- "no /etc/docker to mount over (the docker-registry package makes it)"
    need [ -d /etc/containers ] -- "no /etc/containers to mount over (podman's containers-common makes it)"
    # shellcheck disable=SC2119 # no variables to pass in
    enter_namespaces
fi

# ---- inside: private mounts, loopback only ------------------------------------------------------

started=$SECONDS
ip link set lo up
work=$(mktemp -d "${TMPDIR:-/tmp}/dcl-engine.XXXXXX")
mount -t tmpfs -o mode=0700,size=1g dcl-engine "$work"
pids=()
alive() { kill -0 "$1" 2>/dev/null; }
cleanup() {
    local pid deadline
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # dockerd stops its containerd on TERM; give them a few seconds, then the namespace's end
    # (this shell is its PID 1) kills whatever is left.
    deadline=$((SECONDS + 5))
    for pid in "${pids[@]}"; do
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
    done
    umount -l /etc/docker /etc/containers /etc/hosts /run /var/lib 2>/dev/null || true
    umount -R -l "$work" 2>/dev/null || true
    rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'fatal "interrupted (the whole run has ${RUN_TIMEOUT} s)"' TERM INT

# shellcheck source=tests/e2e/checks.sh
source "$(dirname "$self")/checks.sh"
# calls_of URL: how many registry logins the fake at URL has answered.
calls_of() { timeout 60 curl -fsS --max-time 30 "$1/__calls" 2>/dev/null | tr -d ' \n' || echo '?'; }
login_calls() { calls_of "$fake_url"; }
helper_was_called() { grep -qx "$1" "$work/helper-calls.log" 2>/dev/null; }
reset_helper_log() { : >"$work/helper-calls.log"; }

# ---- private /etc/hosts, /etc/docker, /etc/containers, /run, /var/lib ---------------------------

# The registry host resolves to loopback, for this namespace only.
printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 %s\n' "$HOST" >"$work/hosts"
mount --bind "$work/hosts" /etc/hosts

# A throwaway CA and a server certificate for the registry host.
mkdir -p "$work/tls"
(
    cd "$work/tls"
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
        -subj "/CN=docker-credential-lightsail engine e2e CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout ca.key -out ca.crt
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -subj "/CN=$HOST" -keyout server.key -out server.csr
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' \
        "$HOST" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.crt
) >"$work/openssl.log" 2>&1 || fatal "make a CA and server certificate" "$(cat "$work/openssl.log")"

# dockerd trusts /etc/docker/certs.d/<host>/ca.crt; podman and buildah trust
# /etc/containers/certs.d/<host>/ca.crt. Both folders are private copies made here, mounted
# over the real ones: no daemon.json, no registries.conf or policy.json of the machine's.
mkdir -p "$work/etc-docker/certs.d/$HOST" "$work/etc-containers/certs.d/$HOST"
cp "$work/tls/ca.crt" "$work/etc-docker/certs.d/$HOST/ca.crt"
cp "$work/tls/ca.crt" "$work/etc-containers/certs.d/$HOST/ca.crt"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$work/etc-containers/policy.json"
printf 'unqualified-search-registries = []\n' >"$work/etc-containers/registries.conf"
mount --bind "$work/etc-docker" /etc/docker
mount --bind "$work/etc-containers" /etc/containers

# /run gets an empty tmpfs: no root auth.json (/run/containers/0/auth.json) of the machine's is
# seen, and dockerd's /run/docker stays here. Writes to /var/lib (podman's
# /var/lib/containers/cache) go to an overlay's upper layer on the tmpfs.
mount -t tmpfs -o mode=0755,size=64m dcl-engine-run /run
mkdir -p "$work/varlib-upper" "$work/varlib-work"
if ! mount -t overlay -o "lowerdir=/var/lib,upperdir=$work/varlib-upper,workdir=$work/varlib-work" \
    dcl-engine-varlib /var/lib 2>"$work/overlay.err"; then
    echo "# no overlay over /var/lib ($(cat "$work/overlay.err")): an empty tmpfs instead"
    mount -t tmpfs -o mode=0755,size=64m dcl-engine-varlib /var/lib
fi
mkdir -p "$work/tmp"
export TMPDIR=$work/tmp

# ---- the registry and the fake Lightsail endpoints ----------------------------------------------

# htpasswd user AWS with the fixed password, TLS on :443, storage on the tmpfs.
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
http:
  addr: 127.0.0.1:443
  secret: docker-credential-lightsail-engine-e2e
  tls:
    certificate: $work/tls/server.crt
    key: $work/tls/server.key
auth:
  htpasswd:
    realm: lightsail-engine-e2e
    path: $work/htpasswd
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
registry_pid=$!

# The fake Lightsail endpoint, handing out the registry's password; and a second one handing out
# a wrong password, for the negative controls.
fake_has_url() { [ -n "$(head -n 1 "$work/$1.out" 2>/dev/null)" ]; }
start_fake() { # start_fake NAME PASSWORD: starts a fake; its URL is the first line of $work/NAME.out
    "$FAKE_BIN" --password "$2" >"$work/$1.out" 2>"$work/$1.err" &
    pids+=($!)
    wait_until 60 fake_has_url "$1" || fatal "the fake Lightsail endpoint ($1) starts" "$(cat "$work/$1.err")"
}
start_fake fake "$PASSWORD"
start_fake wrong-fake "$WRONG_PASSWORD"
fake_url=$(head -n 1 "$work/fake.out")
wrong_fake_url=$(head -n 1 "$work/wrong-fake.out")

wait_until 60 port_open 443 ||
    fatal "docker-registry listens on 443" "$(tail -n 20 "$work/registry.log")"
alive "$registry_pid" || fatal "docker-registry runs" "$(tail -n 20 "$work/registry.log")"

# ---- the Docker Engine ---------------------------------------------------------------------------

# No bridge, no iptables/ip6tables, no forwarding or masquerading: it has only loopback anyway.
# vfs storage: works on the tmpfs with no kernel module. Everything it writes is under $work
# (and /run/docker, a tmpfs here). --ip6tables is off by default in 20.10; it is said anyway.
echo '{}' >"$work/daemon.json"
DOCKER_TMPDIR=$work/tmp dockerd --config-file "$work/daemon.json" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false --storage-driver=vfs \
    --data-root "$work/docker-data" --exec-root "$work/docker-exec" --pidfile "$work/dockerd.pid" \
    -H "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
pids+=($!)
dockerd_pid=$!
export DOCKER_HOST=unix://$work/docker.sock
engine_answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
wait_until 60 engine_answers || fatal "dockerd starts and answers on $DOCKER_HOST" \
    "$(tail -n 20 "$work/dockerd.log")"
alive "$dockerd_pid" || fatal "dockerd runs" "$(tail -n 20 "$work/dockerd.log")"

# ---- the user: the helper on PATH, a config.json with credHelpers only ---------------------------

# The wrapper records each action a client asks for, then runs the real binary.
mkdir -p "$work/home" "$work/bin" "$work/xdg-run"
cat >"$work/bin/docker-credential-lightsail" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$work/helper-calls.log"
exec "$HELPER_BIN" "\$@"
EOF
chmod +x "$work/bin/docker-credential-lightsail"
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_DEFAULT_REGION REGISTRY_AUTH_FILE \
    DOCKER_CONTEXT DOCKER_CERT_PATH DOCKER_TLS_VERIFY DOCKER_API_VERSION XDG_CONFIG_HOME \
    XDG_CACHE_HOME XDG_DATA_HOME DOCKER_CREDENTIAL_LIGHTSAIL_LOG \
    DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT \
    CONTAINERS_REGISTRIES_CONF BUILDAH_ISOLATION
export PATH="$work/bin:$PATH"
export HOME=$work/home              # has no .docker: config.json is found through DOCKER_CONFIG
export XDG_RUNTIME_DIR=$work/xdg-run # where containers/image's auth.json would be: stays empty
export DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR=$work/cache
export DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT=10
export AWS_ENDPOINT_URL_LIGHTSAIL=$fake_url
export AWS_ACCESS_KEY_ID=AKIAENGINETESTEXAMPLE
export AWS_SECRET_ACCESS_KEY=engine-e2e-secret-access-key-example
export AWS_REGION=$REGION
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$work/aws/config
export AWS_SHARED_CREDENTIALS_FILE=$work/aws/credentials

# The one config.json every client uses: credHelpers, nothing else.
export DOCKER_CONFIG=$work/docker-config
mkdir -p "$DOCKER_CONFIG" "$work/anonymous-config"
printf '{"credHelpers": {"%s": "lightsail"}}\n' "$HOST" >"$DOCKER_CONFIG/config.json"
cp "$DOCKER_CONFIG/config.json" "$work/config-original.json"
printf '{}\n' >"$work/anonymous-config/config.json"

# podman and buildah: private vfs storage and engine folders on the tmpfs.
cat >"$work/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$work/containers/run"
graphroot = "$work/containers/root"
EOF
cat >"$work/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
tmp_dir = "$work/containers/tmp"
image_copy_tmp_dir = "$work/tmp"
EOF
export CONTAINERS_STORAGE_CONF=$work/storage.conf
export CONTAINERS_CONF=$work/containers.conf

# A root file system of a few files, as a tar: no image can be pulled here.
mkdir -p "$work/rootfs/etc"
printf 'hello from the docker-credential-lightsail engine e2e test\n' >"$work/rootfs/hello.txt"
printf 'engine-e2e\n' >"$work/rootfs/etc/hostname"
head -c 4096 /dev/urandom >"$work/rootfs/random.bin" # every run's image is new to the registry
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/rootfs.tar" .

echo "# registry https://$HOST (docker-registry $(docker-registry --version | awk '{print $NF}')), fake Lightsail $fake_url, wrong-password fake $wrong_fake_url"
echo "# $(docker version --format 'docker CLI {{.Client.Version}} (API {{.Client.APIVersion}}), dockerd {{.Server.Version}} (API {{.Server.APIVersion}}, min {{.Server.MinAPIVersion}})' 2>&1)"
echo "# $(podman --version), $(buildah --version | cut -d' ' -f1-3)"

# ---- helpers for the checks ---------------------------------------------------------------------

readonly ACCEPT="application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"
# The registry's password stays off command lines: curl reads it from a config file.
printf 'user = "AWS:%s"\n' "$PASSWORD" >"$work/curl-auth"
chmod 600 "$work/curl-auth"
# registry_digest TAG: the Docker-Content-Digest the registry serves for sr:TAG (empty if none).
registry_digest() {
    timeout 60 curl -sS --max-time 30 --cacert "$work/tls/ca.crt" -K "$work/curl-auth" \
        -H "Accept: $ACCEPT" -o "$work/manifest-$1.json" -D "$work/manifest-$1.headers" \
        -w '%{http_code}' "https://$HOST/v2/sr/manifests/$1" >"$work/manifest-$1.code" 2>&1 || true
    [ "$(cat "$work/manifest-$1.code")" = 200 ] || return 0
    tr -d '\r' <"$work/manifest-$1.headers" | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}
# served_as_reported TAG DIGEST: the registry serves sr:TAG under DIGEST, and the bytes it serves
# hash to DIGEST.
served_as_reported() {
    local served body
    served=$(registry_digest "$1")
    body=sha256:$(sha256sum <"$work/manifest-$1.json" | cut -d' ' -f1)
    last_output=("client reported: ${2:-nothing}" "registry serves: ${served:-nothing (HTTP $(cat "$work/manifest-$1.code"))}" "served bytes hash to: $body")
    [ -n "$2" ] && [ "$served" = "$2" ] && [ "$body" = "$2" ]
}
# not_in_registry TAG: the registry has no manifest sr:TAG.
not_in_registry() {
    registry_digest "$1" >/dev/null
    last_output=("registry answers HTTP $(cat "$work/manifest-$1.code") for sr:$1")
    [ "$(cat "$work/manifest-$1.code")" = 404 ]
}
# config_untouched: config.json is still exactly the one credHelpers line: no auths were written.
config_untouched() {
    last_output=("config.json: $(cat "$DOCKER_CONFIG/config.json")")
    cmp -s "$work/config-original.json" "$DOCKER_CONFIG/config.json" &&
        [ "$(ls -A "$DOCKER_CONFIG")" = config.json ]
}
# no_auth_file: no containers auth.json anywhere a client would read or write one.
no_auth_file() {
    local found
    found=$(find "$XDG_RUNTIME_DIR" "$HOME" /run "$work/containers" -name auth.json 2>/dev/null)
    last_output=("auth.json files: ${found:-none}")
    [ -z "$found" ]
}
# push_digest: the digest `docker push` printed ("TAG: digest: sha256:... size: N").
push_digest() { sed -n 's/.*: digest: \(sha256:[0-9a-f]\{64\}\) size: .*/\1/p' "$out" | tail -n 1; }

# ---- docker push ---------------------------------------------------------------------------------

check "the docker CLI and dockerd agree on an API version (negotiated, no DOCKER_API_VERSION)" \
    eval 'run version docker version --format "{{.Client.APIVersion}} {{.Server.APIVersion}}" && succeeded && [ "$(cut -d" " -f1 "$out")" = "$(cut -d" " -f2 "$out")" ]'

run docker-import docker import "$work/rootfs.tar" "$HOST/sr:docker-1"
check "docker import makes $HOST/sr:docker-1 from a tar" succeeded
check "no Lightsail login call yet" eval '[ "$(login_calls)" = 0 ]'

reset_helper_log
run docker-push-1 docker push "$HOST/sr:docker-1"
docker_digest_1=$(push_digest)
check "docker push $HOST/sr:docker-1 succeeds with only credHelpers, no docker login" \
    eval 'succeeded && [ -n "$docker_digest_1" ] && helper_was_called get'
check "the registry serves sr:docker-1 under the digest docker push printed ($docker_digest_1)" \
    served_as_reported docker-1 "$docker_digest_1"
check "the fake Lightsail counted exactly one login call" eval '[ "$(login_calls)" = 1 ]'
check "config.json is still only the credHelpers line" config_untouched

run docker-tag-2 docker tag "$HOST/sr:docker-1" "$HOST/sr:docker-2"
reset_helper_log
run docker-push-2 docker push "$HOST/sr:docker-2"
docker_digest_2=$(push_digest)
check "a second docker push (sr:docker-2) succeeds, the helper asked again" \
    eval 'succeeded && helper_was_called get'
check "the registry serves sr:docker-2 under the digest docker push printed" \
    served_as_reported docker-2 "$docker_digest_2"
check "the second push cost no second login call (the helper's cache)" eval '[ "$(login_calls)" = 1 ]'

# ---- negative controls: the same push must fail without the right password ----------------------

run docker-tag-wrong docker tag "$HOST/sr:docker-1" "$HOST/sr:docker-wrong"
run docker-tag-anon docker tag "$HOST/sr:docker-1" "$HOST/sr:docker-anonymous"

DOCKER_CONFIG=$work/anonymous-config run docker-push-anonymous docker push "$HOST/sr:docker-anonymous"
check "control: docker push with no credHelpers (anonymous) is refused" \
    eval 'refused && stderr_has "no basic auth credentials"'
check "control: the registry has no sr:docker-anonymous" not_in_registry docker-anonymous

reset_helper_log
AWS_ENDPOINT_URL_LIGHTSAIL=$wrong_fake_url DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR=$work/cache-wrong \
    run docker-push-wrong docker push "$HOST/sr:docker-wrong"
check "control: docker push is refused when the helper hands out a wrong password" \
    eval 'refused && stderr_has unauthorized && helper_was_called get && [ "$(calls_of "$wrong_fake_url")" = 1 ]'
check "control: the registry has no sr:docker-wrong" not_in_registry docker-wrong

# ---- podman push ----------------------------------------------------------------------------------

run podman-import podman import "$work/rootfs.tar" "$HOST/sr:podman-1"
check "podman import makes $HOST/sr:podman-1 in private vfs storage" succeeded

reset_helper_log
run podman-push podman push --digestfile "$work/podman-1.digest" "$HOST/sr:podman-1"
podman_digest=$(cat "$work/podman-1.digest" 2>/dev/null || true)
check "podman push $HOST/sr:podman-1 succeeds through credHelpers in \$DOCKER_CONFIG/config.json" \
    eval 'succeeded && [ -n "$podman_digest" ] && helper_was_called get'
check "the registry serves sr:podman-1 under the digest podman pushed ($podman_digest)" \
    served_as_reported podman-1 "$podman_digest"
check "podman's push cost no login call (the helper's cache)" eval '[ "$(login_calls)" = 1 ]'

run podman-tag-wrong podman tag "$HOST/sr:podman-1" "$HOST/sr:podman-wrong"
reset_helper_log
AWS_ENDPOINT_URL_LIGHTSAIL=$wrong_fake_url DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR=$work/cache-wrong-podman \
    run podman-push-wrong podman push "$HOST/sr:podman-wrong"
check "control: podman push is refused when the helper hands out a wrong password" \
    eval 'refused && stderr_has unauthorized && helper_was_called get'
check "control: the registry has no sr:podman-wrong" not_in_registry podman-wrong

# ---- buildah push ---------------------------------------------------------------------------------

run buildah-from buildah from --name engine-e2e scratch
check "buildah from scratch" succeeded
run buildah-copy buildah copy engine-e2e "$work/rootfs/hello.txt" "$work/rootfs/random.bin" /
run buildah-config buildah config --cmd /hello.txt engine-e2e
run buildah-commit buildah commit -q engine-e2e "$HOST/sr:buildah-1"
check "buildah copy + commit makes $HOST/sr:buildah-1" succeeded

reset_helper_log
run buildah-push buildah push --digestfile "$work/buildah-1.digest" "$HOST/sr:buildah-1"
buildah_digest=$(cat "$work/buildah-1.digest" 2>/dev/null || true)
check "buildah push $HOST/sr:buildah-1 succeeds through credHelpers in \$DOCKER_CONFIG/config.json" \
    eval 'succeeded && [ -n "$buildah_digest" ] && helper_was_called get'
check "the registry serves sr:buildah-1 under the digest buildah pushed ($buildah_digest)" \
    served_as_reported buildah-1 "$buildah_digest"
check "buildah's push cost no login call (the helper's cache)" eval '[ "$(login_calls)" = 1 ]'

run buildah-tag-wrong buildah tag "$HOST/sr:buildah-1" "$HOST/sr:buildah-wrong"
reset_helper_log
AWS_ENDPOINT_URL_LIGHTSAIL=$wrong_fake_url DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR=$work/cache-wrong-buildah \
    run buildah-push-wrong buildah push "$HOST/sr:buildah-wrong"
check "control: buildah push is refused when the helper hands out a wrong password" \
    eval 'refused && stderr_has unauthorized && helper_was_called get'
check "control: the registry has no sr:buildah-wrong" not_in_registry buildah-wrong

# ---- docker-credential-lightsail push: image to registered (and deployed) image -----------------

# fake_json PATH PYTHON: runs PYTHON with `doc` = the fake's JSON at PATH; true if it exits 0.
fake_json() {
    timeout 60 curl -fsS --max-time 30 "$fake_url$1" >"$work/fake$(basename "$1").json" 2>/dev/null &&
        python3 -c "import json, sys; doc = json.load(open(sys.argv[1])); $2" "$work/fake$(basename "$1").json"
}
# registered_digest IMAGE: the digest the fake registered as IMAGE (:hello.web.N).
registered_digest() {
    fake_json /__images "print(next((i['digest'] for i in doc if i['image'] == '$1'), ''))"
}
# pushed_tag: the temporary tag `push` said it pushed ("Pushing IMAGE as HOST/sr:TAG").
pushed_tag() { sed -n "s|^Pushing .* as $HOST/sr:\(.*\)$|\1|p" "$err" | tail -n 1; }
# registered_as_served IMAGE: the registry serves push's tag under the digest registered as IMAGE.
registered_as_served() {
    local tag digest
    tag=$(pushed_tag)
    digest=$(registered_digest "$1")
    [ -n "$tag" ] && served_as_reported "$tag" "$digest"
}
local_push_tags() { docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -c "^$HOST/sr:push-" || true; }
registry_tags() {
    timeout 60 curl -sS --max-time 30 --cacert "$work/tls/ca.crt" -K "$work/curl-auth" \
        "https://$HOST/v2/sr/tags/list" 2>/dev/null | python3 -c 'import json, sys; print(" ".join(sorted(json.load(sys.stdin).get("tags") or [])))'
}
registrations() { fake_json /__images 'print(len(doc))'; }

run push-import docker import "$work/rootfs.tar" app:1
check "docker import makes app:1, a local image to push" succeeded
run push-1 docker-credential-lightsail push --service hello --label web app:1
check "push prints the registered name :hello.web.1 as its only line of stdout" \
    eval 'succeeded && [ "$(cat "$out")" = ":hello.web.1" ]'
check "the registered digest is the manifest digest the registry holds for what was pushed" \
    registered_as_served :hello.web.1
check "push leaves no temporary tag in the engine" eval '[ "$(local_push_tags)" = 0 ]'
check "push used the cached login: still one login call" eval '[ "$(login_calls)" = 1 ]'
run push-2 docker-credential-lightsail push --quiet --service hello --label web app:1
check "a second push counts up (:hello.web.2), and --quiet leaves stderr empty" \
    eval 'succeeded && [ "$(cat "$out")" = ":hello.web.2" ] && [ ! -s "$err" ]'

tags_before=$(registry_tags)
registrations_before=$(registrations)
run push-no-container docker-credential-lightsail push --service hello --label web --deploy db app:1
check "push --deploy db (no such container) is refused naming the containers there are" \
    eval 'refused && [ ! -s "$out" ] && grep -q "^error: .*no container named \"db\" (it has: cache, web)" "$err"'
run push-no-service docker-credential-lightsail push --service nosuch --label web app:1
check "push to an unknown service is refused" \
    eval 'refused && grep -q "^error: .*no container service named .nosuch." "$err"'
run push-no-image docker-credential-lightsail push --service hello --label web no-such-image:1
check "push of an image the engine does not have is refused" \
    eval 'refused && grep -q "^error: docker has no image \"no-such-image:1\"" "$err"'
check "the refused pushes pushed, tagged and registered nothing" \
    eval '[ "$(registry_tags)" = "$tags_before" ] && [ "$(registrations)" = "$registrations_before" ] && [ "$(local_push_tags)" = 0 ]'

run push-deploy docker-credential-lightsail push --service hello --label web --deploy web app:1
check "push --deploy web registers :hello.web.3 and waits until the deployment is ACTIVE" \
    eval 'succeeded && [ "$(cat "$out")" = ":hello.web.3" ] && stderr_has "Deployment 2 of hello: ACTIVE"'
check "the new deployment is the old one but for web's image (every container, command, environment, port, the endpoint and its health check)" \
    fake_json /__services '
current = doc["containerServices"][0]["currentDeployment"]
web, cache, endpoint = current["containers"]["web"], current["containers"]["cache"], current["publicEndpoint"]
assert current["version"] == 2 and current["state"] == "ACTIVE", current
assert web == {"image": ":hello.web.3", "command": ["serve", "--port", "80"], "environment": {"MODE": "production", "GREETING": "hello world"}, "ports": {"80": "HTTP"}}, web
assert cache == {"image": "redis:7", "command": [], "environment": {}, "ports": {"6379": "TCP"}}, cache
assert endpoint == {"containerName": "web", "containerPort": 80, "healthCheck": {"healthyThreshold": 2, "unhealthyThreshold": 3, "timeoutSeconds": 4, "intervalSeconds": 6, "path": "/health", "successCodes": "200-299"}}, endpoint
'

run push-podman-import podman import "$work/rootfs.tar" localhost/app:2
run push-podman docker-credential-lightsail push --engine podman --service hello --label web localhost/app:2
check "push --engine podman registers :hello.web.4" eval 'succeeded && [ "$(cat "$out")" = ":hello.web.4" ]'
check "podman's registered digest is the manifest digest the registry holds" registered_as_served :hello.web.4
check "push --engine podman leaves no temporary tag" \
    eval '! podman image ls --format "{{.Repository}}:{{.Tag}}" | grep -q "^$HOST/sr:push-"'

# ---- an interrupted push leaves nothing behind ---------------------------------------------------

# The registry is stopped (SIGSTOP), so that the engine's push, once started, cannot finish; push
# gets SIGTERM as soon as its private folder is there and the engine's `docker push` runs.
push_tmp=$work/push-tmp
mkdir -p "$push_tmp"
registrations_before=$(registrations)
engine_pushing() { grep -qas "sr:push-" /proc/[0-9]*/cmdline; }
push_started() { [ -n "$(ls -A "$push_tmp")" ] && engine_pushing; }
out=$work/out/push-interrupted.stdout
err=$work/out/push-interrupted.stderr
kill -STOP "$registry_pid"
set +e
TMPDIR=$push_tmp docker-credential-lightsail push --service hello --label web app:1 \
    >"$out" 2>"$err" </dev/null &
push_pid=$!
started_push=no
if wait_until "$CMD_TIMEOUT" push_started; then started_push=yes; fi
kill -TERM "$push_pid"
helper_gone() { ! alive "$push_pid"; }
wait_until "$CMD_TIMEOUT" helper_gone || kill -KILL "$push_pid"
wait "$push_pid"
rc=$?
set -e
kill -CONT "$registry_pid"
last_output=("push, SIGTERM once the engine pushed: $started_push" "exit code $rc" "stdout: $(head -c 3000 "$out")" "stderr: $(head -c 3000 "$err")" "left in TMPDIR: $(ls -A "$push_tmp")")
check "SIGTERM mid-push: push exits 143 with one line saying what was left undone" \
    eval '[ "$started_push" = yes ] && [ "$rc" = 143 ] && [ ! -s "$out" ] && [ "$(tail -n 1 "$err")" = "error: interrupted by SIGTERM: stopped docker push of app:1, removed its temporary tag; nothing was registered" ]'
check "SIGTERM mid-push: nothing is left under the temp directory (the folder with the password)" \
    eval '[ -z "$(ls -A "$push_tmp")" ]'
check "SIGTERM mid-push: no temporary tag is left in the engine" eval '[ "$(local_push_tags)" = 0 ]'
check "SIGTERM mid-push: the engine's push was stopped, and nothing was registered" \
    eval '! engine_pushing && [ "$(registrations)" = "$registrations_before" ]'

# ---- afterwards ----------------------------------------------------------------------------------

check "the registry still holds every pushed manifest (docker-1, docker-2, podman-1, buildah-1)" \
    eval 'served_as_reported docker-1 "$docker_digest_1" && served_as_reported docker-2 "$docker_digest_2" && served_as_reported podman-1 "$podman_digest" && served_as_reported buildah-1 "$buildah_digest"'
check "control: the digest check tells manifests apart (sr:podman-1 is not under docker-1's digest)" \
    eval '! served_as_reported podman-1 "$docker_digest_1"'
check "still exactly one login call to the right fake in the whole run" eval '[ "$(login_calls)" = 1 ]'
check "config.json is still only the credHelpers line, and no auth.json was used or made" \
    eval 'config_untouched && no_auth_file'
leaks() { grep -rlF -e "$PASSWORD" -e "$AWS_SECRET_ACCESS_KEY" "$work/out" "$work/helper-calls.log" 2>/dev/null || true; }
check "no client output and no helper argument shows the password or the AWS secret key" \
    eval '[ -z "$(leaks)" ]'
check "dockerd is still running" alive "$dockerd_pid"

if [ "$failed" -gt 0 ]; then
    echo "# last lines of the registry log:"
    tail -n 15 "$work/registry.log" | sed 's/^/#   /'
    echo "# last lines of the dockerd log:"
    tail -n 15 "$work/dockerd.log" | sed 's/^/#   /'
    echo "# fake Lightsail stderr:"
    tail -n 15 "$work/fake.err" | sed 's/^/#   /'
fi
echo "# $((SECONDS - started)) s inside the namespaces"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
