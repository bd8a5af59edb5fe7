//! docker-credential-lightsail: Docker's credential-helper protocol over the Amazon Lightsail
//! registry login API, with a locked, atomic per-user cache.
//!
//! # Where things are
//!
//! | module | what it owns |
//! |---|---|
//! | `main.rs` | argv to [`run`]; the process's streams; the exit code |
//! | [`cli`] | the command line (clap): Docker's actions and the human commands |
//! | [`config`] | every environment variable, read once into [`config::Config`]; the only reader |
//! | [`protocol`] | Docker's wire format: stdin, stdout and the exact error strings of `get`/`store`/`erase`/`list` |
//! | [`output`] | what human commands print: results on stdout, `error: …` on stderr |
//! | [`actions`] | the protocol actions' decisions between cache and API, with `now` passed in |
//! | [`cache`] | the per-user cache: checked directory, one JSON file per entry, lock, atomic write |
//! | [`registry`] | server URL to [`registry::Registry`] `{ host, region }`, and the [`registry::Region`] type |
//! | [`lightsail`] | the AWS SDK and the async runtime: login, images, services, deployments, default region; its `network` (HTTPS client, proxy, CA bundle) and `credentials` (bound profiles, failures by cause) |
//! | [`bindings`] | the helper's configuration file: which AWS profile each registry host uses |
//! | [`files`] | the shared file defences: owner and mode checks, atomic replacement |
//! | [`private_dir`] | the cache's folder: checked once, then used through its handle (Unix) or path (Windows) |
//! | [`configure`] | the `configure` command: log in, then one `credHelpers` entry |
//! | [`docker_config`] | Docker's `config.json`: load, change one key, save atomically |
//! | [`register`] | the `register` command: checks, then `RegisterContainerImage` |
//! | [`push`] | the `push` command: checks, push through the engine, register, deploy and wait |
//! | [`doctor`] | the `doctor` command: every check between `docker push` and a registry, as data rendered as text or JSON |
//! | [`engine`] | the user's `docker` or `podman`, driven through its command line |
//! | [`error`] | the one error type; its messages are the contract |
//! | [`secret`] | [`secret::Secret`]: a password that `Debug` never shows |
//! | [`logging`] | debug logs on stderr, off unless asked for |

pub mod actions;
pub mod bindings;
pub mod cache;
pub mod cli;
pub mod config;
pub mod configure;
pub mod docker_config;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod files;
pub mod lightsail;
pub mod logging;
pub mod output;
pub mod private_dir;
pub mod protocol;
pub mod push;
pub mod register;
pub mod registry;
pub mod secret;

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use cli::{Cli, Command};
use config::Config;
use error::Result;
use output::Output;
use protocol::Action;

/// Runs one command line and returns its exit code. A protocol action answers on `stdout` only,
/// errors included, as Docker expects; a human command prints its result on `stdout` and its
/// error on `stderr`.
pub fn run(
    cli: Cli,
    stdin: impl Read,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> ExitCode {
    let now = unix_now();
    let action = match cli.command {
        Command::Get => Action::Get,
        Command::Store => Action::Store,
        Command::Erase => Action::Erase,
        Command::List => Action::List,
        Command::Version => return human(stdout, stderr, |_, output| output.result(VERSION)),
        Command::Configure(args) => {
            return human(stdout, stderr, |config, output| {
                configure::configure(config, &args, now?, output)
            });
        }
        Command::Register(args) => {
            return human(stdout, stderr, |config, output| {
                register::register(config, &args, output)
            });
        }
        Command::Push(args) => {
            return human(stdout, stderr, |config, output| {
                push::push(config, &args, now?, output)
            });
        }
        Command::Completions(args) => {
            return human(stdout, stderr, |_, output| {
                output.raw(&cli::completions(args.shell))
            });
        }
        Command::Doctor(args) => {
            // Exit 1 when a check failed: the checks themselves are the result, on stdout.
            let mut output = Output::new(stdout, stderr);
            return match load_config()
                .and_then(|config| doctor::doctor(&config, &args, now?, &mut output))
            {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(err) => output.finish(Err(err)),
            };
        }
    };
    let result =
        load_config().and_then(|config| protocol::handle(action, &config, now?, stdin, stdout));
    protocol::finish(result, stdout)
}

const VERSION: &str = concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"));

/// Runs a human command with its configuration and output.
fn human(
    stdout: &mut impl Write,
    stderr: &mut impl Write,
    command: impl FnOnce(&Config, &mut Output) -> Result<()>,
) -> ExitCode {
    let mut output = Output::new(stdout, stderr);
    let result = load_config().and_then(|config| command(&config, &mut output));
    output.finish(result)
}

fn load_config() -> Result<Config> {
    let config = Config::from_env()?;
    logging::init(config.log_level);
    Ok(config)
}

/// The clock, read once per run: every decision takes it as `now`.
fn unix_now() -> Result<u64> {
    unix_seconds(SystemTime::now())
}

/// A clock before 1970 is broken, not "time 0": that would make every cached login look
/// fresh forever.
fn unix_seconds(time: SystemTime) -> Result<u64> {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|_| error::Error::ClockBeforeEpoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_clock_before_1970_is_an_error_not_time_zero() {
        assert_eq!(unix_seconds(UNIX_EPOCH).unwrap(), 0);
        assert_eq!(
            unix_seconds(UNIX_EPOCH + Duration::from_secs(1_800_000_000)).unwrap(),
            1_800_000_000
        );
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert!(matches!(
            unix_seconds(before),
            Err(error::Error::ClockBeforeEpoch)
        ));
    }
}
