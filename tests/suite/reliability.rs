//! Bounded time and crash consistency: a `get` against an endpoint that never answers, or answers
//! one byte a second, fails with the timeout message within a bound; waiters on a held lock give
//! up within theirs; and the crash-consistency soak (ignored here: `soak/run` runs it for a set
//! time; a short version runs with the suite) checks the cache after processes are SIGKILLed.
//!
//! Nothing here asserts on time: which limit ended a run shows in its message (the timeout's or
//! the lock timeout's, with the seconds configured), the time taken is printed beside the
//! documented bound, and a run that hangs is ended by the harness's own bound (`RUN_TIMEOUT`).
//! Waits are on events (the fake's call counter, process exits), never on sleeps, except for
//! the soak's deliberately random start and kill moments.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::fake_lightsail::LOGIN;
use crate::support::{ClosedPort, RunOutput, TestEnv};

const REGION: &str = "us-east-1";
/// `DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT` in the bounded-time tests, in seconds.
const TIMEOUT: u64 = 3;
/// Waits for events that happen at once on an idle machine: only ends a hung test.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

const TIMEOUT_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT";
const LOCK_TIMEOUT_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT";
const MARGIN_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN";

fn timeout_message(seconds: u64) -> String {
    format!(
        "Lightsail in {REGION} did not answer within {seconds} s (DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT)"
    )
}

fn lock_timeout_message(seconds: u64) -> String {
    format!("gave up after {seconds} s waiting for another docker-credential-lightsail process")
}

/// Runs `get` for the fake's registry and measures it.
fn timed_get(env: &TestEnv, cmd: Command) -> (RunOutput, Duration) {
    let started = Instant::now();
    let output = env.run_cmd(cmd, env.registry_host(REGION));
    (output, started.elapsed())
}

/// A failed run whose only output is the one-line `message` (Docker shows stdout on failure).
fn assert_failed_with(output: &RunOutput, message: &str) {
    assert_eq!(output.code, Some(1), "{output:#?}");
    assert_eq!(output.stdout, format!("{message}\n"), "{output:#?}");
    assert!(
        output.stderr.is_empty(),
        "stderr must stay silent: {output:#?}"
    );
}

/// Prints how long `what` took beside its documented bound: a figure, not an assertion (a
/// loaded CI machine may take longer; which limit ended the run shows in its message).
fn print_time(elapsed: Duration, bound: Duration, what: &str) {
    eprintln!("figure: {what} took {elapsed:?} (documented bound {bound:?})");
}

// ---- an endpoint that never answers -------------------------------------------------------------

#[test]
fn an_endpoint_that_never_answers_times_out_with_a_clear_message() {
    let mut env = TestEnv::new();
    env.set_env(TIMEOUT_VAR, TIMEOUT.to_string());
    env.fake.hang();
    let (output, elapsed) = timed_get(&env, env.cmd(&["get"]));
    assert_failed_with(&output, &timeout_message(TIMEOUT));
    assert!(
        env.fake.login_calls() >= 1,
        "the request never reached the fake"
    );
    print_time(elapsed, Duration::from_secs(TIMEOUT), "get");
    eprintln!("hang: failed after {elapsed:?} (TIMEOUT={TIMEOUT})");
}

#[test]
fn an_endpoint_that_answers_one_byte_a_second_times_out_with_a_clear_message() {
    let mut env = TestEnv::new();
    env.set_env(TIMEOUT_VAR, TIMEOUT.to_string());
    env.fake.drip();
    let (output, elapsed) = timed_get(&env, env.cmd(&["get"]));
    assert_failed_with(&output, &timeout_message(TIMEOUT));
    print_time(elapsed, Duration::from_secs(TIMEOUT), "get");
    eprintln!("drip: failed after {elapsed:?} (TIMEOUT={TIMEOUT})");
}

#[test]
fn a_socket_that_accepts_and_never_reads_times_out_with_a_clear_message() {
    // Not even HTTP (or a TLS handshake): the kernel completes the connection, and nobody ever
    // reads or answers.
    for scheme in ["http", "https"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut env = TestEnv::new();
        env.set_env(TIMEOUT_VAR, TIMEOUT.to_string());
        env.set_env(
            "AWS_ENDPOINT_URL_LIGHTSAIL",
            format!("{scheme}://{}", listener.local_addr().unwrap()),
        );
        let (output, elapsed) = timed_get(&env, env.cmd(&["get"]));
        assert_failed_with(&output, &timeout_message(TIMEOUT));
        print_time(elapsed, Duration::from_secs(TIMEOUT), scheme);
        drop(listener);
    }
}

#[test]
fn a_closed_port_fails_fast_as_unreachable_not_as_a_timeout() {
    let closed = ClosedPort::new();
    let port = closed.port();
    let mut env = TestEnv::new();
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("http://127.0.0.1:{port}"),
    );
    // The default timeout (30 s) leaves the SDK room for its retries.
    let (output, elapsed) = timed_get(&env, env.cmd(&["get"]));
    assert_eq!(output.code, Some(1), "{output:#?}");
    assert!(
        output.stdout.starts_with(&format!(
            "could not reach the Lightsail endpoint for {REGION}: "
        )),
        "{output:#?}"
    );
    assert_eq!(output.stdout.lines().count(), 1, "{output:#?}");
    print_time(elapsed, Duration::from_secs(30), "get");
}

#[test]
fn a_hung_credential_process_is_bounded_and_named_as_such() {
    // No request reaches Lightsail: a message that blamed the endpoint would send the user to
    // check the network and AWS_ENDPOINT_URL_LIGHTSAIL instead of their profile.
    let mut env = TestEnv::new();
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");
    env.set_env("AWS_PROFILE", "stuck");
    env.write_aws_config("[profile stuck]\ncredential_process = sleep 30\n");
    env.set_env(TIMEOUT_VAR, TIMEOUT.to_string());
    let (output, elapsed) = timed_get(&env, env.cmd(&["get"]));
    assert_eq!(env.fake.login_calls(), 0);
    assert_eq!(output.code, Some(1), "{output:#?}");
    assert_eq!(
        output.stdout,
        format!(
            "could not load AWS credentials: no credentials from profile 'stuck' within {TIMEOUT} s \
             (DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT): check the profile's credential_process, SSO or role settings\n"
        )
    );
    print_time(elapsed, Duration::from_secs(TIMEOUT), "get");
}

// ---- lock waiters -----------------------------------------------------------------------------

#[test]
fn lock_waiters_give_up_with_the_lock_timeout_message_while_a_fetch_is_held() {
    const LOCK_TIMEOUT: u64 = 2;
    let env = TestEnv::new();
    env.fake.hold_calls();
    let holder = env.spawn(&["get"], env.registry_host(REGION));
    assert!(
        env.fake.wait_for_calls(LOGIN, 1, EVENT_TIMEOUT),
        "the holder never called the API"
    );

    let started = Instant::now();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = env.cmd(&["get"]);
            cmd.env(LOCK_TIMEOUT_VAR, LOCK_TIMEOUT.to_string());
            env.spawn_cmd(cmd, env.registry_host(REGION))
        })
        .collect();
    for waiter in waiters {
        let output = env.wait(waiter);
        assert_eq!(output.code, Some(1), "{output:#?}");
        assert!(
            output
                .stdout
                .starts_with(&lock_timeout_message(LOCK_TIMEOUT)),
            "{output:#?}"
        );
        assert!(
            output
                .stdout
                .trim_end()
                .ends_with("(DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT)")
        );
        assert_eq!(output.stdout.lines().count(), 1);
    }
    let elapsed = started.elapsed();
    print_time(elapsed, Duration::from_secs(LOCK_TIMEOUT), "the waiters");
    assert_eq!(env.fake.login_calls(), 1, "a waiter called the API itself");

    env.fake.release();
    let output = env.wait(holder);
    assert_eq!(output.credentials().secret, env.fake.passwords()[0]);
    eprintln!("4 lock waiters gave up after {elapsed:?} (LOCK_TIMEOUT={LOCK_TIMEOUT})");
}

#[test]
fn lock_waiters_serve_an_aging_login_when_the_refresh_is_held() {
    const LOCK_TIMEOUT: u64 = 2;
    let mut env = TestEnv::new();
    // Logins last 10 minutes; inside the 30-minute margin they are aging from the start.
    env.fake.set_expires_in(600);
    let first = env.run(&["get"], env.registry_host(REGION));
    let old = first.credentials().secret;
    env.set_env(LOCK_TIMEOUT_VAR, LOCK_TIMEOUT.to_string());

    env.fake.hold_calls();
    let holder = env.spawn(&["get"], env.registry_host(REGION));
    assert!(env.fake.wait_for_calls(LOGIN, 2, EVENT_TIMEOUT));
    let started = Instant::now();
    let waiters: Vec<_> = (0..3)
        .map(|_| env.spawn(&["get"], env.registry_host(REGION)))
        .collect();
    for waiter in waiters {
        assert_eq!(env.wait(waiter).credentials().secret, old);
    }
    print_time(
        started.elapsed(),
        Duration::from_secs(LOCK_TIMEOUT),
        "the waiters",
    );
    assert_eq!(env.fake.login_calls(), 2);
    env.fake.release();
    let refreshed = env.wait(holder).credentials().secret;
    assert_ne!(refreshed, old);
}

#[test]
fn waiters_take_the_holders_login_once_it_is_released_with_one_api_call() {
    let env = TestEnv::new();
    env.fake.hold_calls();
    let holder = env.spawn(&["get"], env.registry_host(REGION));
    assert!(env.fake.wait_for_calls(LOGIN, 1, EVENT_TIMEOUT));
    let waiters: Vec<_> = (0..6)
        .map(|_| env.spawn(&["get"], env.registry_host(REGION)))
        .collect();
    env.fake.release();
    let expected = env.wait(holder).credentials().secret;
    for waiter in waiters {
        assert_eq!(env.wait(waiter).credentials().secret, expected);
    }
    assert_eq!(env.fake.login_calls(), 1);
}

#[test]
fn a_lock_holder_killed_mid_fetch_frees_the_waiters_at_once() {
    let env = TestEnv::new();
    env.fake.hold_calls();
    let mut holder = env.spawn(&["get"], env.registry_host(REGION));
    assert!(env.fake.wait_for_calls(LOGIN, 1, EVENT_TIMEOUT));
    let mut cmd = env.cmd(&["get"]);
    cmd.env("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", "debug");
    // A lock timeout far past every bound here: the waiter can only get on by the OS dropping
    // the dead holder's lock, not by waiting it out.
    cmd.env(LOCK_TIMEOUT_VAR, "600");
    let waiter = env.spawn_cmd(cmd, env.registry_host(REGION));
    assert!(
        waiter.wait_for_stderr("waiting for lock", EVENT_TIMEOUT),
        "the waiter never waited for the lock"
    );
    holder.kill().unwrap();
    let killed = Instant::now();
    assert_eq!(env.wait(holder).code, None, "the holder was not killed");
    // The OS dropped the dead holder's lock: the waiter takes it and asks the API itself.
    assert!(
        env.fake.wait_for_calls(LOGIN, 2, EVENT_TIMEOUT),
        "the waiter never got the lock"
    );
    env.fake.release();
    let output = env.wait(waiter);
    // (The dead holder's held call may be answered too, into a closed socket.)
    assert!(env.fake.passwords().contains(&output.credentials().secret));
    eprintln!(
        "figure: the waiter had its login {:?} after the holder was killed",
        killed.elapsed()
    );
}

#[test]
fn a_herd_against_a_dead_endpoint_all_give_up_within_lock_timeout_plus_timeout() {
    // Each process that gets the lock waits TIMEOUT for the dead endpoint, so the herd is
    // served one at a time; those still queued when their LOCK_TIMEOUT (default TIMEOUT + 10)
    // runs out give up. Documented worst case for one get: LOCK_TIMEOUT + TIMEOUT.
    const HERD: usize = 8;
    let lock_timeout = TIMEOUT + 10;
    let mut env = TestEnv::new();
    env.set_env(TIMEOUT_VAR, TIMEOUT.to_string());
    env.fake.hang();
    let started = Instant::now();
    let herd: Vec<_> = (0..HERD)
        .map(|_| env.spawn(&["get"], env.registry_host(REGION)))
        .collect();
    let (mut timeouts, mut lock_timeouts) = (0, 0);
    for process in herd {
        let output = env.wait(process);
        assert_eq!(output.code, Some(1), "{output:#?}");
        if output.stdout == format!("{}\n", timeout_message(TIMEOUT)) {
            timeouts += 1;
        } else if output
            .stdout
            .starts_with(&lock_timeout_message(lock_timeout))
        {
            lock_timeouts += 1;
        } else {
            panic!("unexpected message: {output:#?}");
        }
    }
    let elapsed = started.elapsed();
    print_time(
        elapsed,
        Duration::from_secs(lock_timeout + TIMEOUT),
        "the herd",
    );
    assert_eq!(timeouts + lock_timeouts, HERD);
    assert!(timeouts >= 1);
    eprintln!(
        "herd of {HERD}: {timeouts} timed out, {lock_timeouts} gave up on the lock, all within {elapsed:?}"
    );
}

// ---- crash-consistency soak ---------------------------------------------------------------------

/// What a soak counts.
#[derive(Debug, Default)]
struct Figures {
    rounds: u64,
    processes: u64,
    kills: u64,
    killed_after_answer: u64,
    api_calls: u64,
    successes: u64,
    failures: u64,
    not_ours: u64,
    orphan_temps: u64,
    corruptions: u64,
    slowest_get: Duration,
}

impl Figures {
    fn table(&self, seconds: f64, per_round: usize, seed: u64) -> String {
        let rows = [
            ("rounds", self.rounds.to_string()),
            ("processes", self.processes.to_string()),
            ("killed (SIGKILL) while running", self.kills.to_string()),
            (
                "  of which after printing an answer",
                self.killed_after_answer.to_string(),
            ),
            ("API calls", self.api_calls.to_string()),
            ("gets that succeeded", self.successes.to_string()),
            (
                "failures seen (exit 1, clear message)",
                self.failures.to_string(),
            ),
            (
                "foreign hosts answered not-found",
                self.not_ours.to_string(),
            ),
            (
                "temp files seen after kills (swept)",
                self.orphan_temps.to_string(),
            ),
            (
                "slowest get",
                format!("{:.2} s", self.slowest_get.as_secs_f64()),
            ),
            ("corruptions", self.corruptions.to_string()),
        ];
        let mut table = format!(
            "soak: {seconds:.0} s, {per_round} processes a round, seed {seed} (SOAK_SEED)\n"
        );
        for (name, value) in rows {
            table.push_str(&format!("  {name:<40}{value:>8}\n"));
        }
        table
    }
}

/// splitmix64: a tiny seeded generator, so that a run can be replayed with SOAK_SEED.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }

    fn micros(&mut self, max: u64) -> Duration {
        Duration::from_micros(self.below(max + 1))
    }
}

/// When a planned process is killed.
#[derive(Clone, Copy)]
enum Kill {
    /// This long after it started.
    After(Duration),
    /// This long after the next API call arrives at the fake: a moment when some process is
    /// about to write an entry.
    AfterNextCall(Duration),
}

/// One process of a round, planned before it starts.
struct Plan {
    host: String,
    ours: bool,
    start_after: Duration,
    kill: Option<Kill>,
}

/// What one process did.
struct Outcome {
    plan_host: String,
    ours: bool,
    started: Instant,
    elapsed: Duration,
    output: RunOutput,
}

/// Rounds of concurrent `get`s, some SIGKILLed at random moments, against a fake whose logins
/// expire within seconds and that fails now and then; after every round, the invariants.
fn soak(duration: Duration, per_round: usize, max_rounds: u64) -> Figures {
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let mut rng = Rng(seed);
    let mut env = TestEnv::new();
    // Logins live 0 to 8 s and are refreshed in their last 2 s: entries expire all the time.
    env.set_env(MARGIN_VAR, "2");
    env.set_env(TIMEOUT_VAR, "10");
    env.fake.fail_every(9);
    let regions = ["us-east-1", "eu-west-3"];
    let foreign = ["docker.io", "999999999999.dkr.ecr.us-east-1.amazonaws.com"];

    let mut figures = Figures::default();
    // When each password was issued, at the latest, and how long it was to live.
    let mut issued: HashMap<String, (Instant, u64)> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration && figures.rounds < max_rounds {
        figures.rounds += 1;
        let round = figures.rounds;
        let expires_in: u64 = [0, 1, 2, 3, 5, 8][rng.below(6) as usize];
        env.fake.set_expires_in(expires_in as i64);
        if rng.chance(50) {
            // More failures in a row than the SDK's 3 attempts: some gets must fail.
            env.fake.fail_next(
                3 + rng.below(4) as usize,
                500,
                "ServiceException",
                "injected by the soak",
            );
        }
        // Most rounds open with a lead process that must refresh, SIGKILLed a few milliseconds
        // after its API call arrives: around the moment it writes the entry. The herd's lock
        // holders must then cope with whatever it left.
        let mut lead = Vec::new();
        if rng.chance(60) {
            let host = env.registry_host(regions[rng.below(2) as usize]);
            let calls = env.fake.login_calls();
            let mut cmd = env.cmd(&["get"]);
            cmd.env(MARGIN_VAR, "86400");
            let started = Instant::now();
            let mut child = spawn_raw(cmd, &host);
            env.fake
                .wait_for_calls(LOGIN, calls + 1, Duration::from_secs(5));
            thread::sleep(rng.micros(12_000));
            let _ = child.kill();
            lead.push(Outcome {
                plan_host: host,
                ours: true,
                started,
                elapsed: started.elapsed(),
                output: collect_killed(child),
            });
            figures.orphan_temps += check_cache(&env.cache_dir(), true, &mut problems, round);
        }
        let plans: Vec<Plan> = (0..per_round)
            .map(|_| {
                let ours = !rng.chance(8);
                let host = if ours {
                    env.registry_host(regions[rng.below(2) as usize])
                } else {
                    foreign[rng.below(2) as usize].to_string()
                };
                let kill = match rng.below(100) {
                    0..15 => {
                        let max = [20, 80, 250][rng.below(3) as usize];
                        Some(Kill::After(rng.millis(max)))
                    }
                    15..25 => Some(Kill::AfterNextCall(rng.millis(40))),
                    _ => None,
                };
                Plan {
                    host,
                    ours,
                    start_after: rng.millis(300),
                    kill,
                }
            })
            .collect();

        let outcomes: Vec<Outcome> = thread::scope(|scope| {
            let env = &env;
            let handles: Vec<_> = plans
                .into_iter()
                .map(|plan| {
                    scope.spawn(move || {
                        thread::sleep(plan.start_after);
                        let started = Instant::now();
                        let calls = env.fake.login_calls();
                        let output = match plan.kill {
                            None => env.wait(env.spawn(&["get"], &plan.host)),
                            Some(kill) => {
                                let mut child = spawn_raw(env.cmd(&["get"]), &plan.host);
                                match kill {
                                    Kill::After(after) => thread::sleep(after),
                                    Kill::AfterNextCall(after) => {
                                        env.fake.wait_for_calls(
                                            LOGIN,
                                            calls + 1,
                                            Duration::from_secs(2),
                                        );
                                        thread::sleep(after);
                                    }
                                }
                                let _ = child.kill();
                                collect_killed(child)
                            }
                        };
                        Outcome {
                            plan_host: plan.host,
                            ours: plan.ours,
                            started,
                            elapsed: started.elapsed(),
                            output,
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a soak thread panicked"))
                .collect()
        });

        let killed_this_round = outcomes.iter().any(|o| o.output.code.is_none());
        // Invariants of the cache as the herd left it (before anyone cleans up).
        let killed_this_round = killed_this_round || lead.iter().any(|o| o.output.code.is_none());
        let orphans = check_cache(&env.cache_dir(), killed_this_round, &mut problems, round);
        figures.orphan_temps += orphans;

        // One clean get per region, refreshing (so taking the lock, which sweeps a temp file
        // left by a killed writer): afterwards no temp file may remain anywhere.
        let mut verifiers = Vec::new();
        for region in regions {
            let mut cmd = env.cmd(&["get"]);
            cmd.env(MARGIN_VAR, "86400");
            let started = Instant::now();
            let output = env.run_cmd(cmd, env.registry_host(region));
            verifiers.push(Outcome {
                plan_host: env.registry_host(region),
                ours: true,
                started,
                elapsed: started.elapsed(),
                output,
            });
        }
        check_cache(&env.cache_dir(), false, &mut problems, round);

        // Every password issued so far was issued by now.
        let round_end = Instant::now();
        for password in env.fake.passwords() {
            issued.entry(password).or_insert((round_end, expires_in));
        }
        for outcome in lead.iter().chain(&outcomes).chain(&verifiers) {
            figures.processes += 1;
            figures.slowest_get = figures.slowest_get.max(outcome.elapsed);
            check_outcome(outcome, &issued, &mut figures, &mut problems, round);
        }
    }
    figures.api_calls = env.fake.login_calls() as u64;
    figures.corruptions = problems.len() as u64;
    let table = figures.table(started.elapsed().as_secs_f64(), per_round, seed);
    println!("{table}");
    for problem in problems.iter().take(20) {
        println!("CORRUPTION: {problem}");
    }
    let _ = fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak-figures.txt"),
        &table,
    );
    figures
}

/// Starts `get` for `host` outside the harness's `wait`: a process killed right after printing
/// its answer holds a password in its stdout without exiting 0, which the harness's leak rule
/// would flag; `check_outcome` checks such output itself (a whole, correct answer, or nothing).
fn spawn_raw(mut cmd: Command, host: &str) -> std::process::Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the binary");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // The input is far smaller than a pipe buffer: this cannot block.
    let _ = stdin.write_all(host.as_bytes());
    child
}

/// The output of a process that was sent SIGKILL (it may have finished first).
fn collect_killed(child: std::process::Child) -> RunOutput {
    let output = child
        .wait_with_output()
        .expect("cannot collect a killed process");
    RunOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A `get` answer must be one line of exactly `ServerURL`, `Username`, `Secret`, for the host
/// asked, with a password the API issued that had not expired when the `get` started.
fn check_answer(outcome: &Outcome, issued: &HashMap<String, (Instant, u64)>) -> Result<(), String> {
    let stdout = &outcome.output.stdout;
    if stdout.matches('\n').count() != 1 || !stdout.ends_with('\n') {
        return Err("not exactly one line".into());
    }
    let value: serde_json::Value =
        serde_json::from_str(stdout).map_err(|_| "not JSON".to_string())?;
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let keys = value.as_object().map_or(0, |o| o.len());
    if keys != 3 || field("ServerURL") != Some(outcome.plan_host.clone()) {
        return Err("wrong ServerURL or keys".into());
    }
    if field("Username").as_deref() != Some("AWS") {
        return Err("wrong Username".into());
    }
    let secret = field("Secret").unwrap_or_default();
    let Some((at, lifetime)) = issued.get(&secret) else {
        return Err("a Secret the API never issued".into());
    };
    // Issued at the latest at `at`, so expired at the latest `lifetime` s later (plus a second
    // of rounding): a get started after that served it expired.
    let expired = *at + Duration::from_secs(lifetime + 1);
    if outcome.started > expired {
        return Err(format!(
            "served a login that had expired {:?} before the get started",
            outcome.started - expired
        ));
    }
    Ok(())
}

/// Checks one process's result: killed, a correct answer, or a clear one-line failure.
fn check_outcome(
    outcome: &Outcome,
    issued: &HashMap<String, (Instant, u64)>,
    figures: &mut Figures,
    problems: &mut Vec<String>,
    round: u64,
) {
    let output = &outcome.output;
    let mut problem = |what: String| problems.push(format!("round {round}: {what}: {output:?}"));
    if !output.stderr.is_empty() {
        problem("wrote to stderr".into());
    }
    match output.code {
        None => {
            figures.kills += 1;
            // Killed after it printed: what it printed must be a whole, correct answer or a
            // whole error line.
            if output.stdout.starts_with('{') {
                figures.killed_after_answer += 1;
                if let Err(what) = check_answer(outcome, issued) {
                    problem(what);
                }
            } else if !output.stdout.is_empty() && output.stdout.lines().count() != 1 {
                problem("killed with a partial error message".into());
            }
        }
        Some(0) if !outcome.ours => problem(format!("{} answered", outcome.plan_host)),
        Some(0) => {
            figures.successes += 1;
            if let Err(what) = check_answer(outcome, issued) {
                problem(what);
            }
        }
        Some(1) => {
            let message = output.stdout.trim_end_matches('\n');
            if message == "credentials not found in native keychain" {
                if outcome.ours {
                    problem("our registry answered not-found".into());
                } else {
                    figures.not_ours += 1;
                }
            } else if ecr_shaped(&outcome.plan_host)
                && !message.contains('\n')
                && (message.starts_with("Lightsail in ") || message.starts_with("gave up after"))
            {
                figures.failures += 1;
            } else {
                problem("unclear failure".into());
            }
        }
        Some(code) => problem(format!("exit code {code}")),
    }
}

/// Whether a host could be this account's registry: for those (another account's ECR host in
/// the same region included) the helper needs the API, so an API failure is a fair answer.
fn ecr_shaped(host: &str) -> bool {
    docker_credential_lightsail::registry::Registry::parse(host).is_some()
}

/// The cache's invariants: every entry parses, nothing half-written, only known names, private
/// modes; a temp file only where a writer was killed. Returns the number of temp files seen.
fn check_cache(dir: &Path, kills_allowed: bool, problems: &mut Vec<String>, round: u64) -> u64 {
    let cache = docker_credential_lightsail::cache::Cache::open(dir);
    let Ok(cache) = cache else {
        problems.push(format!("round {round}: the cache dir was refused"));
        return 0;
    };
    let readable: BTreeMap<String, ()> = cache
        .entries()
        .into_iter()
        .map(|(_, entry)| (entry.login.registry, ()))
        .collect();
    let mut temps = 0;
    let mut entries = 0;
    for item in fs::read_dir(dir).expect("cannot list the cache") {
        let item = item.expect("cannot list the cache");
        let name = item.file_name().into_string().unwrap_or_default();
        let meta = fs::symlink_metadata(item.path()).expect("cannot stat");
        if !meta.is_file() || meta.mode() & 0o777 != 0o600 {
            problems.push(format!("round {round}: {name} is not a private file"));
        }
        if name.starts_with('.') && name.ends_with(".json.tmp") {
            temps += 1;
            if !kills_allowed {
                problems.push(format!("round {round}: temp file {name} left behind"));
            }
        } else if name.ends_with(".json")
            && (name.starts_with("login-") || name.starts_with("stored-"))
        {
            entries += 1;
            let bytes = fs::read(item.path()).unwrap_or_default();
            let parses = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| Some(v.get("format")?.as_u64()? == 1))
                .unwrap_or(false);
            if !parses {
                problems.push(format!(
                    "round {round}: half-written or unreadable entry {name} ({} bytes)",
                    bytes.len()
                ));
            }
        } else if !name.ends_with(".lock") {
            problems.push(format!("round {round}: unexpected file {name}"));
        }
    }
    if readable.len() > entries {
        problems.push(format!("round {round}: more logins than entries"));
    }
    let dir_mode = fs::metadata(dir).map(|m| m.mode() & 0o777).unwrap_or(0);
    if dir_mode != 0o700 {
        problems.push(format!("round {round}: cache dir mode {dir_mode:o}"));
    }
    temps
}

/// The soak itself, for `soak/run`: SOAK_SECONDS (default 60) of rounds of SOAK_PROCESSES
/// (default 50) concurrent gets. Prints the figures; fails on any corruption.
#[test]
#[ignore = "long: run by soak/run"]
fn soak_crash_consistency() {
    let seconds = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let per_round = std::env::var("SOAK_PROCESSES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let figures = soak(Duration::from_secs(seconds), per_round, u64::MAX);
    assert_eq!(figures.corruptions, 0, "see CORRUPTION lines above");
    assert!(figures.kills > 0 && figures.rounds > 0);
}

/// The soak's checks have teeth: damage it must report is reported.
#[test]
fn soak_checks_catch_a_half_written_entry_and_a_stray_temp_file() {
    let env = TestEnv::new();
    let output = env.run(&["get"], env.registry_host(REGION));
    assert!(output.success());
    let mut problems = Vec::new();
    assert_eq!(check_cache(&env.cache_dir(), false, &mut problems, 0), 0);
    assert!(problems.is_empty(), "{problems:?}");

    let entry = fs::read_dir(env.cache_dir())
        .unwrap()
        .map(|item| item.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let whole = fs::read(&entry).unwrap();
    fs::write(&entry, &whole[..whole.len() / 2]).unwrap();
    let temp = env.cache_dir().join(format!(
        ".{}.tmp",
        entry.file_name().unwrap().to_string_lossy()
    ));
    fs::write(&temp, &whole).unwrap();
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&entry, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(check_cache(&env.cache_dir(), false, &mut problems, 0), 1);
    let text = problems.join("\n");
    assert!(text.contains("half-written"), "{text}");
    assert!(text.contains("left behind"), "{text}");

    // A served secret the API never issued, or an expired one, is reported too.
    let issued = HashMap::from([("old".to_string(), (Instant::now(), 0))]);
    let outcome = |secret: &str, started: Instant| Outcome {
        plan_host: env.registry_host(REGION),
        ours: true,
        started,
        elapsed: Duration::ZERO,
        output: RunOutput {
            code: Some(0),
            stdout: format!(
                "{{\"ServerURL\":\"{}\",\"Username\":\"AWS\",\"Secret\":\"{secret}\"}}\n",
                env.registry_host(REGION)
            ),
            stderr: String::new(),
        },
    };
    assert!(check_answer(&outcome("never-issued", Instant::now()), &issued).is_err());
    let later = Instant::now() + Duration::from_secs(5);
    assert!(check_answer(&outcome("old", later), &issued).is_err());
    assert!(check_answer(&outcome("old", Instant::now()), &issued).is_ok());
}

/// A few rounds of the soak with the suite, so that a regression shows without `soak/run`.
#[test]
fn soak_smoke() {
    let figures = soak(Duration::from_secs(10), 16, 3);
    assert_eq!(figures.corruptions, 0, "see CORRUPTION lines above");
    assert!(figures.rounds >= 1);
}
