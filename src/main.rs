use std::io;
use std::process::ExitCode;

use docker_credential_lightsail::{cli, output, run};

fn main() -> ExitCode {
    // SAFETY: the first thing the process does, before any other thread exists.
    unsafe { docker_credential_lightsail::config::unset_blank_aws_variables() };
    output::install_panic_hook();
    let cli = cli::parse();
    #[allow(clippy::disallowed_methods)] // The process's own streams, handed to the library.
    let (stdout, stderr) = (io::stdout(), io::stderr());
    run(
        cli,
        io::stdin().lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}
