//! docker-credential-lightsail: Docker's credential-helper protocol over the Amazon Lightsail
//! registry login API, with a locked, atomic per-user cache.

pub mod cache;
pub mod cli;
pub mod config;
pub mod configure;
pub mod docker_config;
pub mod error;
pub mod helper;
pub mod lightsail;
pub mod logging;
pub mod protocol;
pub mod register;
pub mod registry;
pub mod secret;

use std::io::{Read, Write};

use cli::{Cli, Command};
use config::Config;
use error::Result;
use protocol::Action;

/// Runs one command line. Everything it prints goes to `output`.
pub fn run(cli: Cli, input: impl Read, output: &mut impl Write) -> Result<()> {
    let config = Config::from_env()?;
    logging::init(config.log_level);
    let action = match cli.command {
        Command::Get => Action::Get,
        Command::Store => Action::Store,
        Command::Erase => Action::Erase,
        Command::List => Action::List,
        Command::Version => {
            return writeln!(
                output,
                "{} {}",
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION")
            )
            .map_err(|err| error::Error::io("cannot write to", "standard output", err));
        }
        Command::Configure(args) => return configure::configure(&config, &args, output),
        Command::Register(args) => return register::register(&config, &args, output),
    };
    protocol::handle(action, &config, input, output)
}
