//! `push` through the real binary, against the fake Lightsail and a stand-in `docker` (a shell
//! script on PATH that logs its calls and answers as told): every decision, check and failure.
//! tests/e2e/engine.sh pushes through a real Docker Engine and podman.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_lightsail::{DEPLOY, GET_SERVICES, LOGIN, REGISTER, default_deployment};
use crate::support::{RunOutput, TestEnv};

const REGION: &str = "us-east-1";
const DIGEST_HEX: &str = "4f53c1e2d3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e";

/// The stand-in engine: answers `version` with the API version in `api` (or fails as told by
/// `version-error`), `image inspect` from the file `inspect` (or fails as told by
/// `inspect-error`), `image rm` (or fails as told by `rm-error`), `push` by printing the digest
/// in `digest` between the lines in `push-before` and `push-after` (or failing with
/// `push-error`), and keeps every command line in `calls`, the config.json `push` was given,
/// the modes of it and its folder, and its pid. With `hold`, `push` waits for `go` after its
/// first line; with `ignore-term`, it says so on SIGTERM and goes on.
const FAKE_DOCKER: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
case "$1" in
version)
    if [ -e "$dir/version-error" ]; then cat "$dir/version-error" >&2; exit 1; fi
    cat "$dir/api" ;;
image)
    if [ "$2" = inspect ]; then
        if [ -e "$dir/inspect-error" ]; then cat "$dir/inspect-error" >&2; exit 1; fi
        cat "$dir/inspect"
    fi
    if [ "$2" = rm ] && [ -e "$dir/rm-error" ]; then cat "$dir/rm-error" >&2; exit 1; fi ;;
push)
    for target; do :; done
    echo $$ > "$dir/push-pid"
    cp "$DOCKER_CONFIG/config.json" "$dir/push-config.json"
    stat -c %a "$DOCKER_CONFIG" "$DOCKER_CONFIG/config.json" | tr '\n' ' ' > "$dir/push-modes"
    if [ -e "$dir/push-error" ]; then cat "$dir/push-error" >&2; exit 1; fi
    if [ -e "$dir/ignore-term" ]; then trap 'echo "ignoring SIGTERM" >&2' TERM; fi
    echo "The push refers to repository [${target%:*}]"
    if [ -e "$dir/hold" ]; then
        # Also ends when the test is over (its folder gone), so no stand-in outlives it.
        while [ ! -e "$dir/go" ] && [ -d "$dir" ]; do sleep 0.05; done
    fi
    echo "5f70bf18a086: Pushed"
    if [ -e "$dir/push-before" ]; then cat "$dir/push-before"; fi
    echo "${target##*:}: digest: sha256:$(cat "$dir/digest") size: 528"
    if [ -e "$dir/push-after" ]; then cat "$dir/push-after"; fi ;;
esac
exit 0
"#;

struct Engine {
    dir: PathBuf,
}

impl Engine {
    /// Puts a stand-in `docker` first on the PATH of `env`'s runs, with an amd64 image.
    fn install(env: &mut TestEnv) -> Engine {
        let dir = env.root().join("engine");
        fs::create_dir(&dir).unwrap();
        let docker = dir.join("docker");
        fs::write(&docker, FAKE_DOCKER).unwrap();
        fs::set_permissions(&docker, fs::Permissions::from_mode(0o755)).unwrap();
        let engine = Engine { dir };
        engine.set("api", "1.41\n");
        engine.set("inspect", "linux/amd64 1\n");
        engine.set("digest", DIGEST_HEX);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![engine.dir.clone()];
        dirs.extend(std::env::split_paths(&path));
        env.set_env("PATH", std::env::join_paths(dirs).unwrap());
        env.set_env("AWS_REGION", REGION);
        engine
    }

    fn set(&self, file: &str, contents: &str) {
        fs::write(self.dir.join(file), contents).unwrap();
    }

    /// Every command line the engine was given.
    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Makes the next pushes wait, after their first line, until `go`.
    fn hold(&self) {
        let _ = fs::remove_file(self.dir.join("go"));
        self.set("hold", "");
    }

    fn go(&self) {
        self.set("go", "");
    }

    /// The pid of the last `push` the engine ran.
    fn push_pid(&self) -> i32 {
        fs::read_to_string(self.dir.join("push-pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The config.json that `push` handed the engine.
    fn push_config(&self) -> Value {
        serde_json::from_slice(&fs::read(self.dir.join("push-config.json")).unwrap()).unwrap()
    }
}

fn push(env: &TestEnv, more: &[&str]) -> RunOutput {
    let args = [
        &["push", "--service", "hello", "--label", "web"],
        more,
        &["app:1"],
    ]
    .concat();
    env.run(&args, "")
}

/// A `push` that registered `image`, then failed: the name on stdout all the same, and one
/// `error:` line on stderr with `expected` in it.
fn assert_registered_then_failed(out: &RunOutput, image: &str, expected: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, format!("{image}\n"), "{out:?}");
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(expected),
        "{expected}: {out:?}"
    );
}

/// A failed `push`: nothing on stdout, one `error:` line on stderr with `expected` in it.
fn assert_refused(out: &RunOutput, expected: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(expected),
        "{expected}: {out:?}"
    );
}

#[test]
fn push_tags_pushes_registers_and_removes_its_tag() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    let host = env.registry_host(REGION);
    let out = push(&env, &[]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, ":hello.web.1\n");
    assert!(
        out.stderr.contains("5f70bf18a086: Pushed"),
        "the engine's progress: {out:?}"
    );

    let calls = engine.calls();
    let target = calls[2]
        .strip_prefix("tag app:1 ")
        .expect("tag third")
        .to_string();
    assert!(target.starts_with(&format!("{host}/sr:push-")), "{target}");
    assert_eq!(
        calls,
        [
            "version --format {{.Server.APIVersion}}".to_string(),
            "image inspect --format {{.Os}}/{{.Architecture}} {{len .RepoTags}} app:1".to_string(),
            format!("tag app:1 {target}"),
            format!("push {target}"),
            format!("image rm {target}"),
        ]
    );
    // The password went to the engine in a private config.json, never on a command line.
    let password = env.fake.passwords()[0].clone();
    assert!(calls.iter().all(|call| !call.contains(&password)));
    let auth = engine.push_config()["auths"][&host]["auth"].clone();
    let expected = aws_smithy_types::base64::encode(format!("AWS:{password}"));
    assert_eq!(auth, json!(expected));
    // The registered digest is the one the push reported.
    assert_eq!(env.fake.calls(REGISTER), 1);
    // The user's Docker configuration was not touched.
    assert!(!env.docker_config_dir().join("config.json").exists());
    // The password file is the user's only, in a folder that is too.
    let modes = fs::read_to_string(engine.dir.join("push-modes")).unwrap();
    assert_eq!(modes.trim(), "700 600");

    let again = push(&env, &["--quiet"]);
    assert_eq!(again.stdout, ":hello.web.2\n");
    assert_eq!(again.stderr, "", "--quiet");
    assert_eq!(
        env.fake.calls(LOGIN),
        1,
        "the second push used the cached login"
    );
}

/// A refused push: its label argument, more arguments, an engine answer, the expected error.
type Case<'a> = (&'a str, &'a [&'a str], Option<(&'a str, &'a str)>, &'a str);

#[test]
fn every_check_fails_before_anything_is_pushed() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    let no_image = ("inspect-error", "Error: No such image: app:1");
    let not_running = (
        "version-error",
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
    );
    let arm = ("inspect", "linux/arm64 1");
    let cases: [Case; 6] = [
        ("--label=-x", &[], None, "label \"-x\" must be"),
        (
            "--label=web",
            &[],
            Some(no_image),
            "docker has no image \"app:1\"",
        ),
        (
            "--label=web",
            &[],
            Some(not_running),
            "docker is not running or cannot be reached",
        ),
        (
            "--label=web",
            &[],
            Some(arm),
            "app:1 is built for linux/arm64, and Lightsail runs linux/amd64 images only: build one with `docker build --platform linux/amd64`",
        ),
        (
            "--label=web",
            &["--service", "nope"],
            None,
            "no container service named 'nope' in us-east-1",
        ),
        (
            "--label=web",
            &["--service", "hello", "--deploy", "db"],
            None,
            "the current deployment of hello has no container named \"db\" (it has: cache, web)",
        ),
    ];
    for (label, more, setting, expected) in cases {
        let _ = fs::remove_file(engine.dir.join("inspect-error"));
        let _ = fs::remove_file(engine.dir.join("version-error"));
        engine.set("inspect", "linux/amd64 1\n");
        if let Some((file, contents)) = setting {
            engine.set(file, contents);
        }
        let service: &[&str] = if more.contains(&"--service") {
            &[]
        } else {
            &["--service", "hello"]
        };
        let args = [&["push", label], service, more, &["app:1"]].concat();
        assert_refused(&env.run(&args, ""), expected);
    }
    assert!(
        engine
            .calls()
            .iter()
            .all(|call| call.starts_with("image inspect") || call.starts_with("version"))
    );
    let calls = env.fake.calls(LOGIN) + env.fake.calls(REGISTER) + env.fake.calls(DEPLOY);
    assert_eq!(calls, 0, "no login, registration or deployment");
}

#[test]
fn an_engine_that_can_picks_the_linux_amd64_image_of_a_multi_platform_image() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    engine.set("api", "1.49\n");
    let out = push(&env, &[]);
    assert!(out.success(), "{out:?}");
    let calls = engine.calls();
    assert!(
        calls[1].starts_with("image inspect --platform linux/amd64 "),
        "{calls:?}"
    );
    assert!(
        calls[3].starts_with("push --platform linux/amd64 "),
        "{calls:?}"
    );

    // A multi-platform image without linux/amd64, as Docker says it.
    engine.set(
        "inspect-error",
        "Error response from daemon: image with reference app:1 was found but does not provide the specified platform (linux/amd64)",
    );
    assert_refused(
        &push(&env, &[]),
        "app:1 is built for other platforms only, and Lightsail runs linux/amd64 images only",
    );
}

#[test]
fn a_refused_push_is_one_line_and_leaves_no_tag() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    engine.set(
        "push-error",
        "denied: requested access to the resource is denied\n",
    );
    let out = push(&env, &[]);
    assert_refused(
        &out,
        "docker push failed: denied: requested access to the resource is denied",
    );
    let calls = engine.calls();
    assert!(calls.last().unwrap().starts_with("image rm "), "{calls:?}");
    assert_eq!(env.fake.calls(REGISTER), 0);
}

#[test]
fn an_image_known_only_by_its_id_keeps_the_tag_rather_than_be_deleted() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    engine.set("inspect", "linux/amd64 0\n");
    let out = push(&env, &[]);
    assert!(out.success(), "{out:?}");
    assert!(
        engine
            .calls()
            .iter()
            .all(|call| !call.starts_with("image rm"))
    );
    assert!(out.stderr.contains("so that it is not deleted"), "{out:?}");
}

#[test]
fn deploy_keeps_every_other_part_of_the_deployment_and_waits_until_active() {
    let mut env = TestEnv::new();
    Engine::install(&mut env);
    let out = push(&env, &["--deploy", "web"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, ":hello.web.1\n");
    for state in ["ACTIVATING", "ACTIVE"] {
        assert!(
            out.stderr
                .contains(&format!("Deployment 2 of hello: {state}")),
            "{out:?}"
        );
    }
    let services = env.fake.services();
    let current = &services["containerServices"][0]["currentDeployment"];
    assert_eq!(current["version"], 2);
    assert_eq!(current["state"], "ACTIVE");
    let mut expected = default_deployment("hello");
    expected["containers"]["web"]["image"] = json!(":hello.web.1");
    assert_eq!(current["containers"], expected["containers"]);
    assert_eq!(current["publicEndpoint"], expected["publicEndpoint"]);
    assert!(env.fake.calls(GET_SERVICES) >= 2);
}

#[test]
fn deploy_failures_say_what_happened_to_the_service() {
    let mut env = TestEnv::new();
    Engine::install(&mut env);
    env.fake
        .set_deployment_outcome(Duration::from_millis(100), true);
    let failed = push(&env, &["--deploy", "web"]);
    assert_registered_then_failed(
        &failed,
        ":hello.web.1",
        "deployment 2 of hello FAILED, and the service goes on running version 1",
    );

    // One is under way now (the fake keeps the failed one as next; make a slow one).
    env.fake.set_services(&["hello"]);
    env.fake
        .set_deployment_outcome(Duration::from_secs(3600), false);
    let slow = push(&env, &["--deploy", "web", "--wait-timeout", "1"]);
    assert_registered_then_failed(
        &slow,
        ":hello.web.2",
        "deployment 2 of hello is still ACTIVATING after 1 s (--wait-timeout), and the service runs version 1",
    );
    let busy = push(&env, &["--deploy", "web"]);
    assert_refused(
        &busy,
        "a deployment of hello is already in progress (version 2, ACTIVATING)",
    );

    env.fake.set_services(&["hello"]);
    let accepted = push(&env, &["--deploy", "web", "--no-wait"]);
    assert!(accepted.success(), "{accepted:?}");
    assert!(
        accepted
            .stderr
            .contains("Deployment 2 of hello: ACTIVATING")
    );

    env.fake.set_deployment("hello", None);
    let none = push(&env, &["--deploy", "web"]);
    assert_refused(
        &none,
        "container service hello has no current deployment to update",
    );
}

#[test]
fn the_digest_registered_is_the_one_reported_for_our_tag() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    // Another tag's digest before and after ours, as a push of several tags would print.
    let other = |c: &str| format!("latest: digest: sha256:{} size: 1570\n", c.repeat(64));
    engine.set("push-before", &other("a"));
    engine.set("push-after", &other("b"));
    let out = push(&env, &[]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("Registering sha256:{DIGEST_HEX} with hello")),
        "{out:?}"
    );
}

#[test]
fn a_failed_untag_warns_and_still_registers_and_deploys() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    engine.set(
        "rm-error",
        "Error response from daemon: conflict: unable to remove\n",
    );
    let out = push(&env, &["--deploy", "web", "--quiet"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, ":hello.web.1\n");
    let target = engine.calls()[2]
        .strip_prefix("tag app:1 ")
        .expect("tag third")
        .to_string();
    let warning = out.stderr.lines().next().unwrap_or_default();
    assert!(
        warning.starts_with(&format!(
            "warning: could not remove the temporary tag {target} ("
        )) && warning.ends_with(&format!("remove it with `docker image rm {target}`")),
        "one warning, even with --quiet: {out:?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert_eq!(env.fake.calls(DEPLOY), 1);
}

/// Sends `signal` to a running push.
fn send(spawned: &crate::support::Spawned, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(spawned.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

fn is_gone(pid: i32) -> bool {
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
}

#[test]
fn an_interrupted_push_stops_the_engine_and_leaves_nothing_behind() {
    use rustix::process::Signal;
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    let temp = env.root().join("tmp");
    fs::create_dir(&temp).unwrap();
    env.set_env("TMPDIR", &temp);
    engine.hold();
    for (signal, name, code) in [
        (Signal::TERM, "SIGTERM", 143),
        (Signal::INT, "SIGINT", 130),
        (Signal::HUP, "SIGHUP", 129),
    ] {
        let _ = fs::remove_file(engine.dir.join("calls"));
        let running = env.spawn(
            &[
                "push",
                "--service",
                "hello",
                "--label",
                "web",
                "--deploy",
                "web",
                "app:1",
            ],
            "",
        );
        assert!(
            running.wait_for_stderr("The push refers to repository", Duration::from_secs(60)),
            "the engine's push started"
        );
        send(&running, signal);
        let out = env.wait(running);
        assert_eq!(out.code, Some(code), "{name}: {out:?}");
        assert_eq!(out.stdout, "", "{out:?}");
        assert_eq!(
            out.stderr.lines().last().unwrap_or_default(),
            format!(
                "error: interrupted by {name}: stopped docker push of app:1, removed its temporary tag; nothing was registered"
            ),
            "{out:?}"
        );
        assert!(
            is_gone(engine.push_pid()),
            "{name}: the engine's push was stopped"
        );
        let calls = engine.calls();
        assert!(calls.last().unwrap().starts_with("image rm "), "{calls:?}");
        let left: Vec<_> = fs::read_dir(&temp).unwrap().collect();
        assert!(left.is_empty(), "{name}: {left:?}");
    }
    assert_eq!(env.fake.calls(REGISTER) + env.fake.calls(DEPLOY), 0);
}

#[test]
fn an_engine_that_ignores_sigterm_is_killed_and_a_second_signal_ends_push_at_once() {
    use rustix::process::Signal;
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    let temp = env.root().join("tmp");
    fs::create_dir(&temp).unwrap();
    env.set_env("TMPDIR", &temp);
    engine.hold();
    engine.set("ignore-term", "");
    let args = ["push", "--service", "hello", "--label", "web", "app:1"];

    let running = env.spawn(&args, "");
    assert!(running.wait_for_stderr("The push refers to repository", Duration::from_secs(60)));
    send(&running, Signal::TERM);
    assert!(running.wait_for_stderr("ignoring SIGTERM", Duration::from_secs(60)));
    let out = env.wait(running);
    assert_eq!(out.code, Some(143), "{out:?}");
    assert!(is_gone(engine.push_pid()), "killed after its grace time");
    assert!(fs::read_dir(&temp).unwrap().next().is_none());

    // While push waits for the engine to stop, a second signal ends it there and then.
    let running = env.spawn(&args, "");
    assert!(running.wait_for_stderr("The push refers to repository", Duration::from_secs(60)));
    send(&running, Signal::TERM);
    assert!(running.wait_for_stderr("ignoring SIGTERM", Duration::from_secs(60)));
    send(&running, Signal::INT);
    let out = env.wait(running);
    assert_eq!(out.code, Some(130), "{out:?}");
    assert!(!out.stderr.contains("error:"), "{out:?}");
    // What the second signal left behind is the next push's to remove; the engine may end.
    engine.go();
}

#[test]
fn a_folder_left_by_a_killed_push_is_removed_by_the_next_push() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    let temp = env.root().join("tmp");
    fs::create_dir(&temp).unwrap();
    env.set_env("TMPDIR", &temp);
    engine.hold();
    let mut running = env.spawn(
        &["push", "--service", "hello", "--label", "web", "app:1"],
        "",
    );
    assert!(running.wait_for_stderr("The push refers to repository", Duration::from_secs(60)));
    running.kill().unwrap();
    let _ = env.wait(running);
    engine.go();
    let left: Vec<_> = fs::read_dir(&temp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left.len(), 1, "SIGKILL left the folder: {left:?}");
    // A folder of a run still going (this test's own pid) is left alone.
    let live = temp.join(format!(
        "docker-credential-lightsail-{}-x",
        std::process::id()
    ));
    fs::create_dir(&live).unwrap();

    let _ = fs::remove_file(engine.dir.join("hold"));
    let out = push(&env, &[]);
    assert!(out.success(), "{out:?}");
    let left: Vec<_> = fs::read_dir(&temp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, [live], "the killed run's folder is gone");
}

#[test]
fn deploy_builds_on_a_deployment_made_during_the_push() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    engine.hold();
    let running = env.spawn(
        &[
            "push",
            "--service",
            "hello",
            "--label",
            "web",
            "--deploy",
            "web",
            "app:1",
        ],
        "",
    );
    assert!(running.wait_for_stderr("The push refers to repository", Duration::from_secs(60)));
    // Someone deploys meanwhile: a new variable for web, another image for cache.
    let mut theirs = default_deployment("hello");
    theirs["containers"]["web"]["environment"]["FEATURE"] = json!("on");
    theirs["containers"]["cache"]["image"] = json!("redis:8");
    env.fake.set_deployment("hello", Some(theirs.clone()));
    engine.go();
    let out = env.wait(running);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stderr.contains("Deployment 3 of hello: ACTIVE"),
        "{out:?}"
    );
    let services = env.fake.services();
    let current = &services["containerServices"][0]["currentDeployment"];
    let mut expected = theirs;
    expected["containers"]["web"]["image"] = json!(":hello.web.1");
    assert_eq!(
        current["containers"], expected["containers"],
        "theirs is kept"
    );
}

#[test]
fn a_deployment_not_listed_at_first_is_waited_for_and_one_superseded_is_said_so() {
    let mut env = TestEnv::new();
    Engine::install(&mut env);
    env.fake.set_listing_lag(2);
    let out = push(&env, &["--deploy", "web"]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stderr.contains("Deployment 2 of hello: ACTIVE"),
        "{out:?}"
    );

    // Someone else's deployment goes through while ours is being made.
    env.fake.set_listing_lag(0);
    env.fake
        .set_deployment_outcome(Duration::from_secs(3600), false);
    let running = env.spawn(
        &[
            "push",
            "--service",
            "hello",
            "--label",
            "web",
            "--deploy",
            "web",
            "app:1",
        ],
        "",
    );
    assert!(running.wait_for_stderr("Deployment 3 of hello: ACTIVATING", Duration::from_secs(60)));
    env.fake
        .set_deployment("hello", Some(default_deployment("hello")));
    let out = env.wait(running);
    assert_registered_then_failed(
        &out,
        ":hello.web.2",
        "deployment 3 of hello was superseded by deployment 4, made meanwhile, and the service runs version 4",
    );
    assert!(!out.stderr.contains("FAILED"), "{out:?}");
}

#[test]
fn texts_from_the_network_reach_the_terminal_as_one_line() {
    let mut env = TestEnv::new();
    Engine::install(&mut env);
    let mut odd = default_deployment("hello");
    let cache = odd["containers"]["cache"].take();
    odd["containers"].as_object_mut().unwrap().remove("cache");
    odd["containers"]["cache\u{1b}[2J\nx"] = cache;
    env.fake.set_deployment("hello", Some(odd));
    let out = push(&env, &["--deploy", "db"]);
    assert_refused(
        &out,
        "the current deployment of hello has no container named \"db\" (it has: cache [2J x, web)",
    );
    assert!(!out.stderr.contains('\u{1b}'), "{out:?}");

    // A deployment state no API version has, as the SDK passes it on.
    env.fake.set_services(&["hello"]);
    env.fake
        .set_new_deployment_state(Some("PAUSED\u{1b}]0;owned\u{7}\r\nerror: fake"));
    let out = push(&env, &["--deploy", "web", "--wait-timeout", "1"]);
    assert_registered_then_failed(
        &out,
        ":hello.web.1",
        "deployment 2 of hello is still PAUSED ]0;owned   error: fake after 1 s",
    );
    assert!(
        out.stderr
            .contains("Deployment 2 of hello: PAUSED ]0;owned   error: fake\n"),
        "{out:?}"
    );
    assert!(!out.stderr.contains(['\u{1b}', '\u{7}', '\r']), "{out:?}");
}

/// Uses a profile whose `credential_process` is `script` (a shell script body) for `env`'s runs.
fn use_credential_process(env: &mut TestEnv, script: &str) {
    let path = env.root().join("issue-keys");
    fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    env.write_aws_config(&format!(
        "[profile ci]\ncredential_process = {}\n",
        path.display()
    ));
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");
    env.set_env("AWS_PROFILE", "ci");
}

#[test]
fn temporary_credentials_that_expire_during_the_push_are_refreshed() {
    let mut env = TestEnv::new();
    let engine = Engine::install(&mut env);
    let counter = env.root().join("sessions");
    // New keys on every call, each valid for 5 s: inside the SDK's refresh margin.
    use_credential_process(
        &mut env,
        &format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             expires=$(date -u -d @$(($(date +%s) + 5)) +%Y-%m-%dT%H:%M:%SZ)\n\
             printf '{{\"Version\":1,\"AccessKeyId\":\"ASIATEMP%011d\",\"SecretAccessKey\":\"TempSecret/%d\",\"SessionToken\":\"TempToken%d\",\"Expiration\":\"%s\"}}' $n $n $n $expires\n",
            c = counter.display()
        ),
    );
    engine.hold();
    let running = env.spawn(
        &[
            "push",
            "--service",
            "hello",
            "--label",
            "web",
            "--deploy",
            "web",
            "app:1",
        ],
        "",
    );
    assert!(running.wait_for_stderr("The push refers to repository", Duration::from_secs(60)));
    // Every key issued so far has expired by now: only later ones are accepted.
    let issued: usize = fs::read_to_string(&counter)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let later: Vec<String> = (issued + 1..issued + 50)
        .map(|n| format!("ASIATEMP{n:011}"))
        .collect();
    let later: Vec<&str> = later.iter().map(String::as_str).collect();
    env.fake.set_known_access_keys(Some(&later));
    engine.go();
    let out = env.wait(running);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, ":hello.web.1\n");
    assert_eq!(env.fake.calls(DEPLOY), 1);
}

#[test]
fn a_slow_credential_process_does_not_starve_the_calls_after_it() {
    let mut env = TestEnv::new();
    Engine::install(&mut env);
    let counter = env.root().join("sessions");
    // The first resolution takes 14 of the 20 s budget; every call then takes 4 s, which fits
    // a call's own budget (20 s, 6.7 s an attempt) with seconds to spare on a loaded machine,
    // and not what the credentials left of one (6 s, 2 s an attempt).
    use_credential_process(
        &mut env,
        &format!(
            "[ -e {c} ] || sleep 14; echo 1 > {c}\n\
             printf '{{\"Version\":1,\"AccessKeyId\":\"ASIASLOW\",\"SecretAccessKey\":\"SlowSecret\",\"SessionToken\":\"SlowToken\"}}'\n",
            c = counter.display()
        ),
    );
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT", "20");
    env.fake.set_delay(Duration::from_secs(4));
    let out = push(&env, &["--quiet"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, ":hello.web.1\n");
}
