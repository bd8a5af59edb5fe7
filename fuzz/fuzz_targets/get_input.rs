//! `get` on any stdin: one line of credentials or one line of error, never a secret in an
//! error; and `erase` on the same input forgets that host only.
#![no_main]

#[path = "sandbox.rs"]
mod sandbox;

use docker_credential_lightsail::protocol::Action;
use docker_credential_lightsail::registry::Registry;
use libfuzzer_sys::fuzz_target;
use sandbox::*;

fuzz_target!(|data: &[u8]| {
    if !answers_offline(data) {
        return;
    }
    let (result, out) = handle(Action::Get, data);
    match result {
        Ok(()) => {
            let text = String::from_utf8(out).expect("UTF-8 output");
            assert!(
                text.ends_with('\n') && text.matches('\n').count() == 1,
                "{text:?}"
            );
            let value: serde_json::Value = serde_json::from_str(&text).expect("JSON output");
            assert_eq!(value.as_object().map(|o| o.len()), Some(3));
            let url = std::str::from_utf8(data).unwrap().trim();
            assert_eq!(value["ServerURL"].as_str(), Some(url));
        }
        Err(message) => {
            assert!(out.is_empty());
            assert_one_line(&message);
            assert!(!message.contains(CACHED_SECRET) && !message.contains(STORED_SECRET));
        }
    }

    let erased = std::str::from_utf8(data)
        .ok()
        .and_then(Registry::parse)
        .map(|r| r.host);
    let before: Vec<String> = cache(config())
        .entries()
        .into_iter()
        .map(|(_, entry)| entry.login.registry)
        .collect();
    let (result, out) = handle(Action::Erase, data);
    assert!(out.is_empty());
    if let Err(message) = &result {
        assert_one_line(message);
    }
    let after: Vec<String> = cache(config())
        .entries()
        .into_iter()
        .map(|(_, entry)| entry.login.registry)
        .collect();
    for host in before {
        if Some(&host) != erased.as_ref() || result.is_err() {
            assert!(after.contains(&host), "erase of {erased:?} forgot {host}");
        }
    }
    if erased.is_some() {
        refill(config());
    }
});
