//! The one error type. Its messages are part of the contract: Docker compares the first three
//! to exact strings, and shows every other one to the user as a single line.

use std::path::PathBuf;
use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// "Not mine / nothing here": Docker then goes on without credentials.
    #[error("credentials not found in native keychain")]
    NotFound,
    #[error("no credentials server URL")]
    MissingServerUrl,
    #[error("no credentials username")]
    MissingUsername,

    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("invalid setting {name}={value:?}: {expected}")]
    InvalidSetting {
        name: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error(
        "no AWS credentials found ({0}): set AWS_PROFILE, run `aws configure` or `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoAwsCredentials(String),
    #[error("could not load AWS credentials: {0}")]
    AwsCredentials(String),
    #[error(
        "AWS rejected the credentials from {identity} ({code}): check the access key and secret, or refresh the session (`aws sso login`)"
    )]
    BadAwsCredentials { identity: String, code: String },
    #[error(
        "access denied by Lightsail in {region} ({code}: {message}): the AWS identity from {identity} needs the lightsail:{action} permission"
    )]
    AccessDenied {
        region: String,
        code: String,
        message: String,
        identity: String,
        action: &'static str,
    },
    #[error("Lightsail in {region} refused the request ({code}): {message}")]
    Api {
        region: String,
        code: String,
        message: String,
    },
    #[error(
        "could not reach the Lightsail endpoint for {region}: {reason} (check the network, proxy settings and AWS_ENDPOINT_URL_LIGHTSAIL)"
    )]
    Unreachable { region: String, reason: String },
    #[error(
        "Lightsail in {region} did not answer within {} s (DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT)", .after.as_secs_f32()
    )]
    Timeout { region: String, after: Duration },
    #[error("unexpected answer from Lightsail in {region}: {reason}")]
    BadResponse { region: String, reason: String },

    #[error(
        "gave up after {} s waiting for another docker-credential-lightsail process holding {} (DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT)", .after.as_secs_f32(), .path.display()
    )]
    LockTimeout { path: PathBuf, after: Duration },
    #[error("{context} {}: {source}", .path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    DockerConfig(String),
}

impl Error {
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }
}

/// Make a message from outside (an AWS error message) safe to show: one line, bounded length.
pub fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if text.chars().count() > MAX {
        line.push('…');
    }
    line.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_contract_strings_are_exact() {
        assert_eq!(
            Error::NotFound.to_string(),
            "credentials not found in native keychain"
        );
        assert_eq!(
            Error::MissingServerUrl.to_string(),
            "no credentials server URL"
        );
        assert_eq!(
            Error::MissingUsername.to_string(),
            "no credentials username"
        );
    }

    #[test]
    fn outside_text_is_one_bounded_line() {
        assert_eq!(one_line("a\nb\r\tc "), "a b  c");
        let long = "x".repeat(1000);
        assert_eq!(one_line(&long).chars().count(), 301);
    }
}
