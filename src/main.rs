use std::io::Write;
use std::process::ExitCode;

use docker_credential_lightsail::{cli, protocol, run};

fn main() -> ExitCode {
    // A panic message could quote data; say only where it happened.
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "docker-credential-lightsail: internal error at {place}; please report it"
        );
    }));
    let cli = cli::parse();
    let mut stdout = std::io::stdout().lock();
    match run(cli, std::io::stdin().lock(), &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            protocol::write_error(&mut stdout, &err);
            ExitCode::FAILURE
        }
    }
}
