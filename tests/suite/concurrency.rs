//! One API call however many processes ask at once; a killed lock holder blocks nobody.
//! Every wait here is on an event (a call counted, a log line written, a process ended).

use std::time::{Duration, Instant};

use crate::support::TestEnv;
use crate::support::fake_lightsail::LOGIN;

const REGION: &str = "us-east-1";
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn fifty_parallel_cold_gets_make_exactly_one_api_call() {
    let mut env = TestEnv::new();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", "debug");
    // Starting 50 processes on a loaded machine can take a while: keep the held attempt from
    // timing out and being retried (a second call by the same process).
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT", "300");
    let host = env.registry_host(REGION);
    // The first caller's answer is held until every other process is seen waiting on the lock:
    // without the lock, each of them would reach the API meanwhile.
    env.fake.hold_calls();
    let runs: Vec<_> = (0..50).map(|_| env.spawn(&["get"], &host)).collect();
    assert!(env.fake.wait_for_calls(LOGIN, 1, EVENT_TIMEOUT));
    // The event: 49 of them have said so (the holder never does). One bound for all, which
    // only ends a hung test; the 20 ms between looks is no wait on time.
    let waiting = || {
        runs.iter()
            .filter(|run| run.wait_for_stderr("waiting for lock", Duration::ZERO))
            .count()
    };
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while waiting() < 49 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(waiting(), 49, "every other process waits on the lock");
    env.fake.release();

    let outputs: Vec<_> = runs.into_iter().map(|run| env.wait(run)).collect();
    assert_eq!(env.fake.login_calls(), 1);
    let first = outputs[0].credentials();
    assert!(first.secret.starts_with("LSPW-"));
    for output in &outputs {
        assert_eq!(output.credentials(), first);
    }
}

#[test]
fn a_lock_holder_killed_mid_fetch_blocks_nobody() {
    let env = TestEnv::new();
    let host = env.registry_host(REGION);
    env.fake.hold_calls();
    let mut holder = env.spawn(&["get"], &host);
    assert!(env.fake.wait_for_calls(LOGIN, 1, EVENT_TIMEOUT));
    // The holder is inside its API call, with the lock: kill it there (SIGKILL).
    holder.kill().expect("SIGKILL the lock holder");
    let killed = env.wait(holder);
    assert_eq!(killed.code, None, "killed by a signal");
    env.fake.release();

    let next = env.run(&["get"], &host);
    assert!(next.credentials().secret.starts_with("LSPW-"));
    assert_eq!(env.fake.login_calls(), 2);
    assert!(
        std::fs::read_dir(env.cache_dir())
            .unwrap()
            .all(|entry| !entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")),
        "no temp file left behind"
    );
}

#[test]
fn a_waiter_gives_up_after_the_lock_timeout_with_a_clear_error() {
    let env = TestEnv::new();
    let host = env.registry_host(REGION);
    env.fake.hold_calls();
    let holder = env.spawn(&["get"], &host);
    assert!(env.fake.wait_for_calls(LOGIN, 1, EVENT_TIMEOUT));

    let mut cmd = env.cmd(&["get"]);
    cmd.env("DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT", "1");
    let waiter = env.run_cmd(cmd, &host);
    assert_eq!(waiter.code, Some(1));
    assert!(
        waiter.stdout.starts_with(
            "gave up after 1 s waiting for another docker-credential-lightsail process"
        ),
        "{}",
        waiter.stdout
    );
    assert!(
        waiter
            .stdout
            .contains("DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT")
    );
    assert_eq!(waiter.stdout.lines().count(), 1);

    env.fake.release();
    assert!(env.wait(holder).success());
    assert_eq!(env.fake.login_calls(), 1);
}

#[test]
fn different_regions_do_not_wait_for_each_other() {
    let env = TestEnv::new();
    env.fake.hold_calls();
    let east = env.spawn(&["get"], env.registry_host("us-east-1"));
    assert!(env.fake.wait_for_calls(LOGIN, 1, EVENT_TIMEOUT));
    // us-east-1's lock is held; eu-west-1 has its own and reaches the API too.
    let west = env.spawn(&["get"], env.registry_host("eu-west-1"));
    assert!(env.fake.wait_for_calls(LOGIN, 2, EVENT_TIMEOUT));
    env.fake.release();
    let (east, west) = (env.wait(east), env.wait(west));
    assert_eq!(
        east.credentials().server_url,
        env.registry_host("us-east-1")
    );
    assert_eq!(
        west.credentials().server_url,
        env.registry_host("eu-west-1")
    );
}

#[test]
fn configure_waits_for_a_held_lock_then_answers_from_the_unexpired_login_as_get_does() {
    let mut env = TestEnv::new();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT", "1");
    let host = env.registry_host(REGION);
    // Ten minutes left: inside the refresh margin, so the next `get` refreshes it, under the lock.
    env.fake.set_expires_in(600);
    let aging = env.run(&["get"], &host).credentials();
    env.fake.hold_calls();
    let holder = env.spawn(&["get"], &host);
    assert!(env.fake.wait_for_calls(LOGIN, 2, EVENT_TIMEOUT));

    // The lock stays held past the lock timeout: the unexpired login answers, as for `get`.
    let configure = env.run(&["configure", "--region", REGION], "");
    assert!(configure.success(), "{configure:?}");
    let config = std::fs::read_to_string(env.docker_config_dir().join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["credHelpers"][&host], "lightsail");
    assert_eq!(env.fake.login_calls(), 2, "no call of its own");

    env.fake.release();
    assert_ne!(env.wait(holder).credentials(), aging);
}
