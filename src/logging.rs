//! Debug logs on stderr, off unless asked for: Docker shows the helper's stderr to the user.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Turns on logging of this crate's events only: the AWS SDK's own debug and trace events can
/// hold raw request and response bodies, and a login response holds the registry password.
pub fn init(level: Option<tracing::Level>) {
    let Some(level) = level else {
        return;
    };
    let only_ours =
        Targets::new().with_target(env!("CARGO_CRATE_NAME"), LevelFilter::from_level(level));
    #[allow(clippy::disallowed_methods)] // Logs go to the user's terminal, as Docker shows it.
    let to_stderr = std::io::stderr;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(to_stderr)
                .with_ansi(false)
                .with_target(false),
        )
        .with(only_ours)
        .try_init();
}
