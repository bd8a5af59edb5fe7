//! The test suite's fake Lightsail endpoint as a standalone process, for benchmarks and soak
//! scripts:
//!
//! ```text
//! cargo run --example fake_lightsail -- [--port N] [--delay-ms N] [--fail-every N] [--expires-in S]
//!                                         [--password P]
//! ```
//!
//! Prints `http://127.0.0.1:<port>` as its first line, then serves until killed. `GET /__calls`
//! answers the number of login calls so far, as text. With `--password`, every login returns
//! that password (to match a real registry's htpasswd) instead of a unique one. `GET /__images`
//! lists the registered images, `GET /__services` every container service as
//! `GetContainerServices` would; new deployments settle after
//! `--deploy-ms`, as ACTIVE or, with `--deploy-fails true`, FAILED.

// A test tool, not the helper: it prints, and reads its own arguments.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

#[allow(dead_code)] // The example uses a part of the suite's fake.
#[path = "../tests/suite/support/fake_lightsail.rs"]
mod fake_lightsail;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use fake_lightsail::FakeLightsail;

const USAGE: &str = "usage: fake_lightsail [--port N] [--delay-ms N] [--fail-every N] \
                     [--expires-in SECONDS] [--password PASSWORD] [--deploy-ms N] \
                     [--deploy-fails true|false]";

#[derive(Default)]
struct Options {
    port: u16,
    delay_ms: u64,
    fail_every: usize,
    expires_in: Option<i64>,
    password: Option<String>,
    deploy_ms: Option<u64>,
    deploy_fails: bool,
}

/// Parses `--flag value` pairs by hand: seven options do not need an argument parser.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let invalid = |_: &dyn std::fmt::Debug| format!("invalid value {value:?} for {flag}");
        match flag.as_str() {
            "--port" => options.port = value.parse().map_err(|e| invalid(&e))?,
            "--delay-ms" => options.delay_ms = value.parse().map_err(|e| invalid(&e))?,
            "--fail-every" => options.fail_every = value.parse().map_err(|e| invalid(&e))?,
            "--expires-in" => options.expires_in = Some(value.parse().map_err(|e| invalid(&e))?),
            "--password" => options.password = Some(value),
            "--deploy-ms" => options.deploy_ms = Some(value.parse().map_err(|e| invalid(&e))?),
            "--deploy-fails" => options.deploy_fails = value.parse().map_err(|e| invalid(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("fake_lightsail: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeLightsail::bind(options.port) {
        Ok(fake) => fake,
        Err(err) => {
            eprintln!(
                "fake_lightsail: cannot listen on port {}: {err}",
                options.port
            );
            return ExitCode::FAILURE;
        }
    };
    fake.set_delay(Duration::from_millis(options.delay_ms));
    fake.fail_every(options.fail_every);
    if let Some(seconds) = options.expires_in {
        fake.set_expires_in(seconds);
    }
    fake.set_password(options.password.as_deref());
    if let Some(ms) = options.deploy_ms {
        fake.set_deployment_outcome(Duration::from_millis(ms), options.deploy_fails);
    }

    // Scripts read this line to learn the port: flush it at once.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{}", fake.url());
    let _ = stdout.flush();

    // The server runs on its own threads; this one only keeps the process (and `fake`) alive.
    loop {
        std::thread::park();
    }
}
