//! A cache entry file of any bytes: reading it never panics, yields nothing or a login made of
//! values that are in the file, and `list` stays one line of JSON without a secret.
#![no_main]

#[path = "sandbox.rs"]
mod sandbox;

use std::time::Duration;

use docker_credential_lightsail::protocol::Action;
use libfuzzer_sys::fuzz_target;
use sandbox::*;
use serde_json::{Value, json};

fn leaves(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().flat_map(leaves).collect(),
        Value::Object(map) => map.values().flat_map(leaves).collect(),
        leaf => vec![leaf],
    }
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let cache = cache(config);
    let region = REGIONS[0];
    let slot = cache.login_slot(
        &docker_credential_lightsail::registry::Region::parse(region).unwrap(),
        &config.identity,
    );
    let path = std::fs::read_dir(cache.dir())
        .unwrap()
        .map(|item| item.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("login-{region}-")) && name.ends_with(".json")
        })
        .expect("the sandbox's login entry");
    // The sandbox's own entry, put back after each input without an fsync (fast).
    static ORIGINAL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let original = ORIGINAL.get_or_init(|| std::fs::read(&path).unwrap());
    std::fs::write(&path, data).unwrap();

    if let Some(login) = slot.read() {
        let value: Value = serde_json::from_slice(data).expect("a login from non-JSON bytes");
        let found = leaves(&value);
        for expected in [
            json!(login.registry),
            json!(login.username),
            json!(login.secret.expose()),
            json!(login.expires_at),
        ] {
            assert!(found.contains(&&expected), "{expected} is not in the file");
        }
        for margin in [0, 1800, 86_400] {
            let _ = login.freshness(now(), Duration::from_secs(margin));
            let _ = login.freshness(u64::MAX, Duration::from_secs(margin));
        }
    }
    assert!(cache.entries().len() <= 3);
    let (result, out) = handle(Action::List, b"unused");
    assert!(result.is_ok());
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with('\n') && out.matches('\n').count() == 1);
    assert!(serde_json::from_str::<Value>(&out).is_ok());
    assert!(!out.contains(CACHED_SECRET) && !out.contains(STORED_SECRET));
    std::fs::write(&path, original).unwrap();
});
