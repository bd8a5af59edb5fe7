//! Docker's credential-helper wire format: what each action reads from stdin and writes to
//! stdout, errors included (the message on stdout, exit code 1). Nothing else in the crate writes
//! protocol output; human commands print through `output.rs`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::actions;
use crate::config::Config;
use crate::error::{Error, Result};

/// Server URLs and `store` documents are tiny; anything bigger is not a Docker client talking.
const MAX_INPUT_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Get,
    Store,
    Erase,
    List,
}

#[derive(Serialize)]
struct GetOutput<'a> {
    #[serde(rename = "ServerURL")]
    server_url: &'a str,
    #[serde(rename = "Username")]
    username: &'a str,
    #[serde(rename = "Secret")]
    secret: &'a str,
}

#[derive(Deserialize)]
struct StoreInput {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs one action at `now` (Unix seconds): reads its input, does it, writes its answer.
pub fn handle(
    action: Action,
    config: &Config,
    now: u64,
    input: impl Read,
    output: &mut impl Write,
) -> Result<()> {
    match action {
        Action::Get => {
            let server_url = read_server_url(input)?;
            let login = actions::get(config, &server_url, now)?;
            let answer = GetOutput {
                server_url: &server_url,
                username: &login.username,
                secret: login.secret.expose(),
            };
            write_json_line(output, &answer)
        }
        Action::Store => {
            let text = read_input(input)?;
            let doc: StoreInput = serde_json::from_str(&text).map_err(store_input_error)?;
            if doc.server_url.trim().is_empty() {
                return Err(Error::MissingServerUrl);
            }
            if doc.username.is_empty() {
                return Err(Error::MissingUsername);
            }
            actions::store(
                config,
                doc.server_url.trim(),
                &doc.username,
                &doc.secret,
                now,
            )
        }
        Action::Erase => actions::erase(config, &read_server_url(input)?),
        Action::List => {
            let held: BTreeMap<String, String> = actions::list(config, now);
            write_json_line(output, &held)
        }
    }
}

/// Says what is wrong with `store`'s input without quoting it: serde_json's own messages quote
/// a value of the wrong type, and that value may be the secret.
fn store_input_error(err: serde_json::Error) -> Error {
    use serde_json::error::Category;
    let problem = match err.classify() {
        Category::Eof => "it ends too early",
        Category::Syntax | Category::Io => "it is not valid JSON",
        Category::Data => "ServerURL, Username and Secret must be strings in one JSON object",
    };
    Error::BadStoreInput {
        problem,
        line: err.line(),
        column: err.column(),
    }
}

/// Docker's error convention: on failure, the message on stdout and exit code 1.
pub fn finish(result: Result<()>, output: &mut impl Write) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // If stdout is gone there is nobody left to tell.
            let _ = writeln!(output, "{err}").and_then(|()| output.flush());
            ExitCode::FAILURE
        }
    }
}

fn read_server_url(input: impl Read) -> Result<String> {
    let text = read_input(input)?;
    let server_url = text.trim();
    if server_url.is_empty() {
        return Err(Error::MissingServerUrl);
    }
    Ok(server_url.to_string())
}

fn read_input(input: impl Read) -> Result<String> {
    let mut bytes = Vec::new();
    input
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::UnreadableInput)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::InputTooLarge {
            limit: MAX_INPUT_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| Error::InputNotUtf8)
}

fn write_json_line(output: &mut impl Write, value: &impl Serialize) -> Result<()> {
    // One write of the whole line: a reader never sees half an answer.
    let mut write = || -> std::io::Result<()> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        output.write_all(&line)?;
        output.flush()
    };
    write().map_err(Error::stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn config(dir: &std::path::Path) -> Config {
        Config::for_tests(dir)
    }

    fn run(action: Action, input: &[u8], dir: &std::path::Path) -> (Result<()>, String) {
        let mut out = Vec::new();
        let result = handle(
            action,
            &config(dir),
            1_800_000_000,
            Cursor::new(input),
            &mut out,
        );
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn store_get_list_erase_speak_docker_json() {
        let tmp = tempfile::tempdir().unwrap();
        let doc = format!(r#"{{"ServerURL":"https://{HOST}","Username":"AWS","Secret":"s3cr3t"}}"#);
        let (result, out) = run(Action::Store, doc.as_bytes(), tmp.path());
        assert!(result.is_ok() && out.is_empty());

        let (result, out) = run(Action::Get, format!("{HOST}\n").as_bytes(), tmp.path());
        result.unwrap();
        assert_eq!(
            out,
            format!("{{\"ServerURL\":\"{HOST}\",\"Username\":\"AWS\",\"Secret\":\"s3cr3t\"}}\n")
        );

        let (result, out) = run(Action::List, b"unused", tmp.path());
        result.unwrap();
        assert_eq!(out, format!("{{\"{HOST}\":\"AWS\"}}\n"));

        let (result, out) = run(Action::Erase, HOST.as_bytes(), tmp.path());
        assert!(result.is_ok() && out.is_empty());
        let (_, out) = run(Action::List, b"", tmp.path());
        assert_eq!(out, "{}\n");
    }

    #[test]
    fn bad_input_gets_the_protocol_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let cases: &[(Action, &[u8], &str)] = &[
            (Action::Get, b"", "no credentials server URL"),
            (Action::Get, b" \n", "no credentials server URL"),
            (Action::Erase, b"", "no credentials server URL"),
            (
                Action::Get,
                b"docker.io",
                "credentials not found in native keychain",
            ),
            (
                Action::Store,
                br#"{"Username":"AWS","Secret":"x"}"#,
                "no credentials server URL",
            ),
            (
                Action::Store,
                format!(r#"{{"ServerURL":"{HOST}","Secret":"x"}}"#)
                    .as_bytes()
                    .to_vec()
                    .leak(),
                "no credentials username",
            ),
            (
                Action::Get,
                b"\xff\xfe\x00",
                "invalid input: standard input is not UTF-8 text",
            ),
            (Action::Store, b"{not json", "invalid input: store expects"),
            (Action::Store, b"", "invalid input: store expects"),
            (
                Action::Store,
                br#"{"ServerURL":"docker.io","Username":"u","Secret":"x"}"#,
                "invalid input: docker.io is not",
            ),
        ];
        for (action, input, expected) in cases {
            let (result, out) = run(*action, input, tmp.path());
            let message = result.unwrap_err().to_string();
            assert!(
                message.starts_with(expected),
                "{action:?} {input:?}: {message}"
            );
            assert!(out.is_empty());
        }
        let huge = vec![b'a'; 1024 * 1024];
        let (result, _) = run(Action::Get, &huge, tmp.path());
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("larger than 64 KiB")
        );
    }
}
