//! `store` on any stdin: no panic, nothing on stdout, one-line errors that never quote the
//! secret the input carried (the top-level "Secret" value, or a bare JSON string or number).
#![no_main]

#[path = "sandbox.rs"]
mod sandbox;

use docker_credential_lightsail::protocol::Action;
use libfuzzer_sys::fuzz_target;
use sandbox::*;
use serde_json::Value;

/// Every fixed text a `store` error can be made of.
const FIXED_WORDING: &[&str] = &[
    "no credentials server URL",
    "no credentials username",
    "invalid input: no credentials secret",
    "invalid input: store expects {\"ServerURL\",\"Username\",\"Secret\"} JSON: ",
    "it ends too early",
    "it is not valid JSON",
    "ServerURL, Username and Secret must be strings in one JSON object",
    " is not an Amazon Lightsail or ECR registry host; docker-credential-lightsail stores credentials only for those",
    "invalid input: standard input is not UTF-8 text",
    "invalid input: standard input is larger than 64 KiB",
];

fuzz_target!(|data: &[u8]| {
    let parsed = serde_json::from_slice::<Value>(data);
    // The error for a foreign host quotes the ServerURL, which the fuzzer may build around the
    // secret's text: that is the URL the user gave, not the secret.
    let server_url = match &parsed {
        Ok(Value::Object(doc)) => doc
            .get("ServerURL")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    let secret = match parsed {
        Ok(Value::Object(doc)) => doc.get("Secret").and_then(|s| match s {
            Value::String(text) => Some(text.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
        Ok(Value::String(text)) => Some(text),
        Ok(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
    // Short values could appear in a message by chance ("1", "a").
    .filter(|s| s.len() >= 8);
    let (result, out) = handle(Action::Store, data);
    assert!(out.is_empty(), "store wrote to stdout");
    if let Err(message) = result {
        assert_one_line(&message);
        // The fuzzer builds inputs from the binary's own strings, so a "secret" can be a piece of
        // our fixed wording ("redentials serv"): that is not a leak.
        let quoted_elsewhere = |s: &String| {
            server_url.contains(s.as_str()) || FIXED_WORDING.iter().any(|w| w.contains(s.as_str()))
        };
        if let Some(secret) = secret.filter(|s| !quoted_elsewhere(s)) {
            assert!(!message.contains(&secret), "the secret is in: {message:?}");
        }
    }
});
