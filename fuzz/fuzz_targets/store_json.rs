//! `store` on any stdin: no panic, nothing on stdout, one-line errors that never quote the
//! secret the input carried (the top-level "Secret" value, or a bare JSON string or number).
#![no_main]

#[path = "sandbox.rs"]
mod sandbox;

use docker_credential_lightsail::protocol::Action;
use libfuzzer_sys::fuzz_target;
use sandbox::*;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let secret = match serde_json::from_slice::<Value>(data) {
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
        if let Some(secret) = secret {
            assert!(!message.contains(&secret), "the secret is in: {message:?}");
        }
    }
});
