//! What the human commands (`configure`, `register`, `push`, `completions`, `version`) print:
//! results on stdout, notes and errors on stderr, an error as one `error: <line>` with exit code
//! 1, so that a script reading `register --json` never parses an error. Protocol actions print
//! through `protocol.rs` instead.

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

use crate::error::{Error, Result};

/// The two streams of a human command.
pub struct Output<'a> {
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
}

impl<'a> Output<'a> {
    pub fn new(stdout: &'a mut dyn Write, stderr: &'a mut dyn Write) -> Self {
        Output { stdout, stderr }
    }

    /// The command's result, on stdout, ending with a newline.
    pub fn result(&mut self, text: impl Display) -> Result<()> {
        writeln!(self.stdout, "{text}")
            .and_then(|()| self.stdout.flush())
            .map_err(Error::stdout)
    }

    /// A result that is a whole file (a completion script), on stdout as it is.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stdout
            .write_all(bytes)
            .and_then(|()| self.stdout.flush())
            .map_err(Error::stdout)
    }

    /// Something the person at the terminal should know, on stderr. Best effort: a closed
    /// stderr must not fail a command that did its work.
    pub fn note(&mut self, text: impl Display) {
        let _ = writeln!(self.stderr, "{text}");
    }

    /// Ends the command: success, or its error as one line on stderr and exit code 1.
    pub fn finish(mut self, result: Result<()>) -> ExitCode {
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                self.note(format_args!("error: {err}"));
                ExitCode::from(err.exit_code())
            }
        }
    }
}

/// A panic message could quote data: say only where it happened, on stderr.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        #[allow(clippy::disallowed_methods)] // The hook has no writer to be given.
        let mut stderr = std::io::stderr();
        let _ = writeln!(
            stderr,
            "{}: internal error at {place}; please report it",
            env!("CARGO_PKG_NAME")
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_go_to_stdout_and_errors_to_stderr_as_one_line() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut output = Output::new(&mut out, &mut err);
        output.result(":hello.web.1").unwrap();
        let code = output.finish(Err(Error::NoRegion));
        assert_eq!(code, ExitCode::FAILURE);
        assert_eq!(String::from_utf8(out).unwrap(), ":hello.web.1\n");
        assert_eq!(
            String::from_utf8(err).unwrap(),
            format!("error: {}\n", Error::NoRegion)
        );
    }
}
