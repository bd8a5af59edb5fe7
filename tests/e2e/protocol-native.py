#!/usr/bin/env python3
"""The credential-helper protocol of a native build against the fake Lightsail endpoint, on any
OS with Python 3.9+ (the published pipeline runs it on macOS and Windows; here it runs the Linux
build): version, get for a foreign host, a login from the API, a cache hit with no second call,
two concurrent cold gets with one call, store/get/list/erase, and no stderr.

Usage: tests/e2e/protocol-native.py [HELPER FAKE]
  HELPER  the helper binary (docker-credential-lightsail, or .exe; default: $HELPER_BIN)
  FAKE    the fake Lightsail endpoint (cargo build --example fake_lightsail; default: $FAKE_BIN)
Prints `ok - ...` / `not ok - ...` per check and ends with `N passed, M failed`.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.request

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
PASSWORD = "LSPW-native-e2e-fixed-registry-password"
AWS_SECRET = "native-e2e-secret-access-key-example"
NOT_FOUND = "credentials not found in native keychain"
TIMEOUT = 60

passed = failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {what}")
    else:
        failed += 1
        print(f"not ok - {what}")
        for line in str(detail).splitlines():
            print(f"#   {line}")


def start_fake(fake, *args):
    proc = subprocess.Popen(
        [fake, "--password", PASSWORD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    # The fake prints its URL on the first line, flushed at once.
    url = proc.stdout.readline().strip()
    if not url:
        sys.exit("the fake Lightsail endpoint did not start")
    return proc, url


def login_calls(url):
    with urllib.request.urlopen(url + "/__calls", timeout=5) as answer:
        return int(answer.read().decode().strip())


def main():
    if len(sys.argv) == 3:
        helper, fake = sys.argv[1:3]
    else:
        helper, fake = os.environ["HELPER_BIN"], os.environ["FAKE_BIN"]
    work = tempfile.mkdtemp(prefix="dcl-native-")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "DOCKER_"))
        and key.lower() not in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
    }
    fake_proc, url = start_fake(fake)
    slow_proc, slow_url = start_fake(fake, "--delay-ms", "1000")
    env.update(
        AWS_ACCESS_KEY_ID="AKIANATIVEE2EEXAMPLE",
        AWS_SECRET_ACCESS_KEY=AWS_SECRET,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL_LIGHTSAIL=url,
        AWS_CONFIG_FILE=os.path.join(work, "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=os.path.join(work, "aws-credentials"),
        DOCKER_CONFIG=os.path.join(work, "docker"),
        DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR=os.path.join(work, "cache"),
    )
    stderrs = []

    def helper_run(*args, stdin="", extra=None):
        run_env = dict(env, **(extra or {}))
        done = subprocess.run(
            [helper, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=run_env,
            timeout=TIMEOUT,
        )
        stderrs.append(done.stderr)
        return done

    def credentials(text, secret):
        try:
            doc = json.loads(text)
        except ValueError:
            return False
        return (
            text.endswith("\n")
            and text.count("\n") == 1
            and list(doc) == ["ServerURL", "Username", "Secret"]
            and doc["ServerURL"].removeprefix("https://").rstrip("/") == HOST
            and doc["Username"] == "AWS"
            and doc["Secret"] == secret
        )

    try:
        version = helper_run("version")
        check(
            "version prints docker-credential-lightsail and a version",
            version.returncode == 0
            and version.stdout.startswith("docker-credential-lightsail "),
            version,
        )
        foreign = helper_run("get", stdin="docker.io\n")
        check(
            f'get docker.io prints exactly "{NOT_FOUND}", exits 1, no API call',
            foreign.returncode == 1
            and foreign.stdout.strip() == NOT_FOUND
            and login_calls(url) == 0,
            foreign,
        )
        first = helper_run("get", stdin=HOST + "\n")
        check(
            f"get {HOST} prints the JSON credentials from one API call",
            first.returncode == 0
            and credentials(first.stdout, PASSWORD)
            and login_calls(url) == 1,
            first,
        )
        second = helper_run("get", stdin=HOST + "\n")
        check(
            "a second get answers from the cache: no second API call",
            second.returncode == 0
            and credentials(second.stdout, PASSWORD)
            and login_calls(url) == 1,
            second,
        )

        results = [None, None]

        def cold_get(index):
            results[index] = helper_run(
                "get",
                stdin=HOST + "\n",
                extra={
                    "AWS_ENDPOINT_URL_LIGHTSAIL": slow_url,
                    "DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR": os.path.join(
                        work, "cold-cache"
                    ),
                },
            )

        threads = [threading.Thread(target=cold_get, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        check(
            "two concurrent gets on an empty cache both answer, with one API call",
            all(r.returncode == 0 and credentials(r.stdout, PASSWORD) for r in results)
            and login_calls(slow_url) == 1,
            results,
        )

        # What `docker login` stores, for a user with no AWS credentials (with them, a stored
        # password of unknown age gives way to the account's login), in a cache of its own.
        env.pop("AWS_ACCESS_KEY_ID")
        env.pop("AWS_SECRET_ACCESS_KEY")
        env["DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR"] = os.path.join(work, "store-cache")
        stored = helper_run(
            "store",
            stdin=json.dumps(
                {"ServerURL": "https://" + HOST, "Username": "AWS", "Secret": "typed"}
            ),
        )
        check("store succeeds silently", stored.returncode == 0 and stored.stdout == "", stored)
        typed = helper_run("get", stdin=HOST + "\n")
        check(
            'get then returns the stored secret "typed", with no API call',
            typed.returncode == 0 and credentials(typed.stdout, "typed") and login_calls(url) == 1,
            typed,
        )
        listed = helper_run("list")
        try:
            held = {k.removeprefix("https://"): v for k, v in json.loads(listed.stdout).items()}
        except ValueError:
            held = {}
        check(f"list shows {HOST} (username AWS)", held.get(HOST) == "AWS", listed)
        erased = helper_run("erase", stdin=HOST + "\n")
        check("erase succeeds silently", erased.returncode == 0 and erased.stdout == "", erased)
        after = helper_run("list")
        check("list then shows {}", after.stdout.strip() == "{}", after)
        check(
            "every run left stderr empty, and none shows a secret",
            all(text == "" for text in stderrs),
            "\n".join(text for text in stderrs if text),
        )
    finally:
        for proc in (fake_proc, slow_proc):
            proc.kill()
            proc.wait()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
