//! The command line: Docker's actions plus the `configure`, `register` and `push` commands.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::ENVIRONMENT;
use crate::engine::EngineKind;
use crate::registry::Region;

/// Docker credential helper for Amazon Lightsail container service registries.
///
/// Docker, podman, skopeo and other clients run it through `credHelpers` in
/// ~/.docker/config.json; it gets registry logins from the Lightsail API and caches them
/// until shortly before they expire.
#[derive(Debug, Parser)]
#[command(
    name = "docker-credential-lightsail",
    version,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print credentials for the server URL read from stdin (Docker protocol).
    Get,
    /// Keep the {"ServerURL","Username","Secret"} read from stdin for 12 hours (`docker login`).
    Store,
    /// Forget everything held for the server URL read from stdin (`docker logout`).
    Erase,
    /// Print the registries held, with their usernames, as JSON.
    List,
    /// Print the name and version.
    Version,
    /// Point Docker at this helper for your Lightsail registries (edits config.json).
    Configure(ConfigureArgs),
    /// Register a pushed image with a Lightsail container service.
    Register(RegisterArgs),
    /// Push a local image to a container service's registry, register it, and optionally deploy it.
    Push(PushArgs),
    /// Check everything between `docker push` and a Lightsail registry; say how to fix what is wrong.
    ///
    /// Checks, in order: Docker's config.json and its credHelpers entries, DOCKER_AUTH_CONFIG;
    /// the first docker-credential-lightsail on PATH; for each registry (the credHelpers
    /// entries, the hosts bound to AWS profiles, --region and --profile) the AWS identity and
    /// region, its credentials, the Lightsail endpoint with its proxy and CA bundle, the login
    /// and its registry host, the registry's /v2/ without and with the login, the cached login;
    /// the clock against Lightsail's; the cache folder; the container engine for push. One line
    /// per check (ok, warn or FAIL), each FAIL with the command that fixes it, then a summary.
    /// Exit status 0 when no check failed, 1 otherwise. Network checks share a budget of 12 s.
    /// Never prints a secret.
    Doctor(DoctorArgs),
    /// Print the shell completion script for bash, zsh, fish or powershell (the packages and
    /// ./install put it where the shell finds it).
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// AWS region to configure (repeatable; default: the region of the current AWS profile).
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<Region>,
    /// AWS profile to log in with, and to bind the registry hosts to: `get` then uses this
    /// profile for them whatever AWS_PROFILE or keys in the environment say (the binding is kept
    /// in the helper's configuration file).
    #[arg(long, value_name = "NAME", value_parser = profile_name)]
    pub profile: Option<String>,
    /// Print the changes to config.json and the helper's configuration without writing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Add the credHelpers entry for this registry host without calling AWS (no credentials
    /// needed, for logins made with `docker login`): 123456789012.dkr.ecr.us-east-1.amazonaws.com
    #[arg(long = "registry", value_name = "HOST", value_parser = registry_host,
          conflicts_with_all = ["regions", "profile"])]
    pub registries: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Name of the Lightsail container service.
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// Label of the image: 1 to 53 of a-z, 0-9 and '-', not starting or ending with '-'.
    #[arg(long, value_name = "LABEL")]
    pub label: String,
    /// Digest of the pushed image: sha256:<64 hex digits>.
    #[arg(long, value_name = "DIGEST")]
    pub digest: String,
    /// AWS region of the service (default: the region of the current AWS profile).
    #[arg(long, value_name = "REGION")]
    pub region: Option<Region>,
    /// AWS profile to use (its credentials, and its region when --region is not given).
    #[arg(long, value_name = "NAME", value_parser = profile_name)]
    pub profile: Option<String>,
    /// Print the whole containerImage object as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Name of the Lightsail container service.
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// Label of the image: 1 to 53 of a-z, 0-9 and '-', not starting or ending with '-'.
    #[arg(long, value_name = "LABEL")]
    pub label: String,
    /// AWS region of the service (default: the region of the current AWS profile).
    #[arg(long, value_name = "REGION")]
    pub region: Option<Region>,
    /// AWS profile to use (its credentials, and its region when --region is not given).
    #[arg(long, value_name = "NAME", value_parser = profile_name)]
    pub profile: Option<String>,
    /// The container engine whose image to push, through its own command line.
    #[arg(long, value_enum, default_value_t = EngineKind::Docker)]
    pub engine: EngineKind,
    /// Then deploy it: the current deployment, with this container's image replaced.
    #[arg(long, value_name = "CONTAINER")]
    pub deploy: Option<String>,
    /// With --deploy: return once Lightsail has accepted the deployment.
    #[arg(long)]
    pub no_wait: bool,
    /// With --deploy: how long to wait for the deployment to become ACTIVE.
    #[arg(long, value_name = "SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub wait_timeout: u64,
    /// No progress on stderr: only the registered image name on stdout, or an error.
    #[arg(long, short)]
    pub quiet: bool,
    /// The local image to push (name:tag or id), built for linux/amd64.
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also check this AWS region's registry (default: the registries in config.json, else the
    /// region of the current AWS profile).
    #[arg(long, value_name = "REGION")]
    pub region: Option<Region>,
    /// Also check the registry of this AWS profile.
    #[arg(long, value_name = "NAME", value_parser = profile_name)]
    pub profile: Option<String>,
    /// Print the checks as one JSON document.
    ///
    /// Its keys are stable: "version"; "checks", a list of objects with "id" (such as
    /// "docker.cred_helpers" or "registry.v2_login"), "status" ("ok", "warn" or "fail"),
    /// "subject" (the registry host or region it is about, or null), "message" and "fix" (the
    /// command that fixes it, or null); "summary", with the counts "ok", "warn" and "fail" and
    /// "network_cut_short" (true when the network did not answer in time).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

fn profile_name(name: &str) -> Result<String, String> {
    if crate::bindings::valid_profile_name(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{:?} is not an AWS profile name (no spaces, brackets, '#' or ';')",
            crate::error::one_line(name)
        ))
    }
}

/// `--registry HOST`: an ECR-shaped registry host, as Docker keys `credHelpers` (lower case,
/// no scheme or path).
fn registry_host(host: &str) -> Result<String, String> {
    match crate::registry::Registry::parse(host) {
        Some(registry) if registry.host == host.to_ascii_lowercase() => Ok(registry.host),
        _ => Err(format!(
            "{:?} is not an Amazon Lightsail registry host (like 123456789012.dkr.ecr.us-east-1.amazonaws.com, without https:// or a path)",
            crate::error::one_line(host)
        )),
    }
}

/// The clap command with the environment variables appended to `--help`.
pub fn command() -> clap::Command {
    Cli::command().after_long_help(environment_help())
}

pub fn parse() -> Cli {
    if let Some(command) = protocol_action(std::env::args_os().skip(1)) {
        return Cli { command };
    }
    let matches = command().get_matches_from(help_help(std::env::args_os()));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    if let Err(err) = check_push_options(&cli, &matches) {
        err.exit();
    }
    cli
}

/// clap's `help` subcommand takes command names only, so `help --help` fails: asked for help
/// about `help`, give `help help`, and `help push --help` is `help push`.
fn help_help(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.collect();
    if args.get(1).is_some_and(|arg| arg == "help") {
        let before = args.len();
        args.retain(|arg| arg != "--help" && arg != "-h");
        if args.len() < before && args.len() == 2 {
            args.push("help".into());
        }
    }
    args
}

/// `--no-wait` and `--wait-timeout` only mean something with `--deploy`. Checked here rather
/// than with clap's `requires`, whose usage line would list `--deploy` as if always required.
fn check_push_options(cli: &Cli, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
    let Command::Push(args) = &cli.command else {
        return Ok(());
    };
    if args.deploy.is_some() {
        return Ok(());
    }
    let given = |id: &str| {
        matches
            .subcommand_matches("push")
            .and_then(|push| push.value_source(id))
            == Some(clap::parser::ValueSource::CommandLine)
    };
    let option = match (given("no_wait"), given("wait_timeout")) {
        (true, _) => "--no-wait",
        (false, true) => "--wait-timeout",
        (false, false) => return Ok(()),
    };
    let mut push = command();
    push.build();
    let push = push
        .find_subcommand_mut("push")
        .expect("push is a subcommand");
    Err(push.error(
        clap::error::ErrorKind::MissingRequiredArgument,
        format!(
            "{option} is about the deployment: use it with --deploy CONTAINER, or leave it out"
        ),
    ))
}

/// Writes the completion script for `shell`, from the same command definition as `--help`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut command = command();
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, &name, &mut script);
    if shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 spells a hyphenated binary's subcommand states one way in the loop
        // and another in the case labels, so nothing after a subcommand would complete
        // (clap-rs/clap#6421): label them as the loop does. A no-op once clap_complete is fixed.
        let labels = name.replace('-', "__subcmd__");
        let state = name.replace('-', "__");
        let text = String::from_utf8_lossy(&script).replace(&labels, &state);
        return text.into_bytes();
    }
    script
}

/// Docker runs the helper with the action as its only argument. Those four lines skip building
/// the whole command definition, which costs more than the rest of a cache hit; anything else
/// (`get --help` included) goes through clap.
fn protocol_action(mut args: impl Iterator<Item = std::ffi::OsString>) -> Option<Command> {
    let action = args.next()?;
    if args.next().is_some() {
        return None;
    }
    match action.to_str()? {
        "get" => Some(Command::Get),
        "store" => Some(Command::Store),
        "erase" => Some(Command::Erase),
        "list" => Some(Command::List),
        _ => None,
    }
}

fn environment_help() -> String {
    let mut help = String::from("Environment:\n");
    for (name, what) in ENVIRONMENT {
        help.push_str(&format!("  {name}\n          {what}\n"));
    }
    help
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Option<Command> {
        protocol_action(args.iter().map(|arg| arg.into()))
    }

    #[test]
    fn the_four_protocol_actions_alone_take_the_short_way() {
        assert!(matches!(parsed(&["get"]), Some(Command::Get)));
        assert!(matches!(parsed(&["store"]), Some(Command::Store)));
        assert!(matches!(parsed(&["erase"]), Some(Command::Erase)));
        assert!(matches!(parsed(&["list"]), Some(Command::List)));
        for other in [
            &[][..],
            &["get", "--help"],
            &["version"],
            &["Get"],
            &["push"],
        ] {
            assert!(parsed(other).is_none(), "{other:?}");
        }
    }
}
