//! `Registry::parse` on any text: no panic, and whatever it accepts is a clean, lowercase ECR
//! host that parses to itself again.
#![no_main]

use docker_credential_lightsail::registry::{Registry, is_region};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(registry) = Registry::parse(&text) {
        let host = &registry.host;
        assert_eq!(host, &host.to_ascii_lowercase());
        assert!(
            host.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'),
            "odd host {host:?}"
        );
        assert!(is_region(registry.region.as_str()));
        assert!(host.contains(&format!(".{}.", registry.region)));
        assert_eq!(
            Registry::parse(host).as_ref(),
            Some(&registry),
            "not idempotent"
        );
    }
});
