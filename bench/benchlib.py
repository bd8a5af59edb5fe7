#!/usr/bin/env python3
"""Measurement helpers for bench/run. Standard library only.

Subcommands (each prints machine-readable lines that bench/run reads, or a table):
  stats JSON NAME...        median and p95 (ms) of each hyperfine command in JSON, in order
  prefill-ecr DIR AKID HOST SECRET
                            writes an unexpired amazon-ecr-credential-helper cache entry
  fake-rtt URL AKID REGION N
                            median round trip (ms) of N raw login POSTs to the fake endpoint
  concurrent BIN HOSTFILE N OUTDIR
                            spawns N `BIN get` at once; prints wall seconds, exit codes, outputs
  check-get FILE SECRET_PREFIX HOST
                            checks one `get` output: valid JSON, right keys, host and secret
  calls URL                 the fake endpoint's count of login calls so far
"""

import base64
import datetime
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default), p in 0..100."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cmd_stats(path, *names):
    results = json.load(open(path))["results"]
    if len(results) != len(names):
        sys.exit(f"benchlib: {path} has {len(results)} results, expected {len(names)}")
    for name, result in zip(names, results):
        times = result["times"]
        median = statistics.median(times) * 1000
        p95 = percentile(times, 95) * 1000
        print(f"{name} {median:.3f} {p95:.3f} {len(times)}")


def cmd_prefill_ecr(cache_dir, akid, host, secret):
    # amazon-ecr-credential-helper 0.6.x (ecr-login/cache/build.go, file.go, credentials.go):
    # one file "cache.json" in the cache dir (AWS_ECR_CACHE_DIR), {"Registries": {...}, "Version": "1.0"};
    # key = "<region>-<checksum(access key id)>-<registry id>" where checksum(text) is
    # base64(text bytes followed by md5 of nothing) (md5.New().Sum(text) appends, it does not hash);
    # AuthEntry {AuthorizationToken: base64("user:password"), RequestedAt, ExpiresAt (RFC 3339),
    # ProxyEndpoint, Service}; an entry is served while now < ExpiresAt - (ExpiresAt - RequestedAt)/2.
    account, _, _, region = host.split(".")[:4]
    checksum = base64.b64encode(akid.encode() + hashlib.md5(b"").digest()).decode()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {
        "AuthorizationToken": base64.b64encode(f"AWS:{secret}".encode()).decode(),
        "RequestedAt": stamp(now),
        "ExpiresAt": stamp(now + datetime.timedelta(hours=12)),
        "ProxyEndpoint": f"https://{host}",
        "Service": "ecr",
    }
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(cache_dir, "cache.json"), "w") as out:
        json.dump({"Registries": {f"{region}-{checksum}-{account}": entry}, "Version": "1.0"}, out)


def cmd_fake_rtt(url, akid, region, n):
    """What one login costs the fake itself, seen from a client with no start-up cost:
    a new TCP connection, a signed-looking POST, the whole answer read."""
    host, port = url.removeprefix("http://").split(":")
    body = b"{}"
    date = time.strftime("%Y%m%d", time.gmtime())
    request = (
        "POST / HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/x-amz-json-1.1\r\n"
        "X-Amz-Target: Lightsail_20161128.CreateContainerServiceRegistryLogin\r\n"
        f"Authorization: AWS4-HMAC-SHA256 Credential={akid}/{date}/{region}/lightsail/aws4_request, "
        "SignedHeaders=host;x-amz-target, Signature=00\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    times = []
    for _ in range(int(n)):
        start = time.perf_counter()
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        times.append(time.perf_counter() - start)
        if not answer.startswith(b"HTTP/1.1 200") or b"registryLogin" not in answer:
            sys.exit(f"benchlib: the fake answered {answer[:80]!r}")
    print(f"{statistics.median(times) * 1000:.3f} {percentile(times, 95) * 1000:.3f}")


def cmd_concurrent(binary, hostfile, n, outdir):
    n = int(n)
    os.makedirs(outdir, exist_ok=True)
    inputs = [open(hostfile, "rb") for _ in range(n)]
    outputs = [open(os.path.join(outdir, f"out-{i}"), "wb") for i in range(n)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen([binary, "get"], stdin=inputs[i], stdout=outputs[i], stderr=subprocess.DEVNULL)
        for i in range(n)
    ]
    spawned = time.perf_counter()
    codes = [p.wait() for p in procs]
    end = time.perf_counter()
    for f in inputs + outputs:
        f.close()
    texts = [open(os.path.join(outdir, f"out-{i}"), "rb").read() for i in range(n)]
    print(f"wall {end - start:.4f}")
    print(f"spawn {spawned - start:.4f}")
    print(f"failed {sum(1 for c in codes if c != 0)}")
    print(f"distinct {len(set(texts))}")


def cmd_check_get(path, secret_prefix, host):
    try:
        answer = json.loads(open(path, "rb").read())
    except ValueError as err:
        sys.exit(f"not JSON: {err}")
    if set(answer) != {"ServerURL", "Username", "Secret"}:
        sys.exit(f"unexpected keys {sorted(answer)}")
    if answer["ServerURL"] != host or not answer["Secret"].startswith(secret_prefix):
        sys.exit("wrong ServerURL or Secret")


def cmd_calls(url):
    # No proxy: the fake is on loopback whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/__calls", timeout=10) as answer:
        print(int(answer.read().decode().strip()))


COMMANDS = {
    "calls": cmd_calls,
    "stats": cmd_stats,
    "prefill-ecr": cmd_prefill_ecr,
    "fake-rtt": cmd_fake_rtt,
    "concurrent": cmd_concurrent,
    "check-get": cmd_check_get,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
