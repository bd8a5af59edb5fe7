//! Property tests of every parser that takes outside input: the server URL
//! (`Registry::parse`), what `get`, `store` and `erase` read on stdin (`protocol::handle`), the
//! cache file (`Slot::read`, `Cache::entries`), and the API's answers (the real binary against
//! a canned endpoint that serves any status and body).
//!
//! The rules: no panic, no hang, an error is one line, and no secret from the input in any
//! error. The runs are bounded and reproducible: a fixed seed unless `PROPTEST_RNG_SEED` says
//! otherwise, `PROPTEST_CASES` to run more, failures kept in `proptest-regressions/`. The seeds
//! under `fuzz/seeds/<target>/` (also the corpus of the cargo-fuzz targets in `fuzz/`) are
//! replayed through the same checks.

use std::fs;
use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use docker_credential_lightsail::cache::{Cache, Login};
use docker_credential_lightsail::config::Config;
use docker_credential_lightsail::protocol::{self, Action};
use docker_credential_lightsail::registry::{Region, Registry, is_region};
use docker_credential_lightsail::secret::Secret;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed, TestCaseError};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{TestEnv, unix_now};

/// The seed of every property unless `PROPTEST_RNG_SEED` is set: runs are reproducible.
const DEFAULT_SEED: u64 = 0x5EED_1A17_2026;

fn config(cases: u32) -> ProptestConfig {
    let from_env = |name: &str| std::env::var(name).ok();
    ProptestConfig {
        cases: from_env("PROPTEST_CASES")
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        rng_seed: RngSeed::Fixed(
            from_env("PROPTEST_RNG_SEED")
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_SEED),
        ),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/properties.txt",
        ))),
        ..ProptestConfig::default()
    }
}

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("no seeds in {}: {err}", dir.display()))
        .map(|item| item.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

fn replay(target: &str, check: impl Fn(&[u8]) -> Result<(), TestCaseError>) {
    for (path, bytes) in seeds(target) {
        if let Err(err) = check(&bytes) {
            panic!("seed {} fails: {err}", path.display());
        }
    }
}

/// An error message Docker can show: one line, not empty.
fn check_one_line(message: &str) -> Result<(), TestCaseError> {
    prop_assert!(!message.trim().is_empty(), "empty error message");
    prop_assert!(
        !message.contains(['\n', '\r']),
        "error message spans lines: {message:?}"
    );
    Ok(())
}

// ---- hosts ----------------------------------------------------------------------------------------

/// DNS suffixes of the partitions ECR lives in (those `Registry::parse` knows).
const DOMAINS: &[&str] = &[
    "amazonaws.com",
    "amazonaws.com.cn",
    "on.aws",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
];
const SERVICES: &[&str] = &["dkr.ecr", "dkr.ecr-fips", "dkr-ecr", "dkr-ecr-fips"];

fn region() -> impl Strategy<Value = String> {
    "[a-z]{2}(-[a-z]{2,9}){1,2}-[0-9]{1,2}"
}

/// A valid registry host, lowercase, and its region.
fn valid_host() -> impl Strategy<Value = (String, String)> {
    (
        "[0-9]{12}",
        prop::sample::select(SERVICES),
        region(),
        prop::sample::select(DOMAINS),
    )
        .prop_map(|(account, service, region, domain)| {
            (format!("{account}.{service}.{region}.{domain}"), region)
        })
}

/// `host` written the ways Docker and users write it: scheme, case, path, white space.
fn decorated(host: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (
        host,
        prop::sample::select(&["", "https://", "http://", "HTTPS://", "hTTp://"][..]),
        prop::collection::vec(any::<bool>(), 0..80),
        // HTTPS's own port names the same registry (nerdctl asks `host:443` first).
        prop::sample::select(&["", ":443"][..]),
        prop::sample::select(&["", "/", "/sr", "/v2/", "/v2/sr/manifests/latest", "/a?b#c"][..]),
        prop::sample::select(&["", " ", "\t", "\n ", "\r\n"][..]),
        prop::sample::select(&["", "\n", "\r\n", "  ", "\t\n"][..]),
    )
        .prop_map(|(host, scheme, upper, port, path, before, after)| {
            let host: String = host
                .chars()
                .zip(upper.iter().chain(std::iter::repeat(&false)))
                .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                .collect();
            format!("{before}{scheme}{host}{port}{path}{after}")
        })
}

/// What any successful parse must satisfy, whatever the input.
fn check_parse(input: &str) -> Result<(), TestCaseError> {
    let Some(registry) = Registry::parse(input) else {
        return Ok(());
    };
    let host = &registry.host;
    prop_assert_eq!(host, &host.to_ascii_lowercase());
    prop_assert!(
        host.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'),
        "host with odd characters: {host:?}"
    );
    prop_assert!(is_region(registry.region.as_str()));
    let region_label = format!(".{}.", registry.region);
    prop_assert!(host.contains(&region_label));
    let known_domain = DOMAINS.iter().any(|d| host.ends_with(&format!(".{d}")));
    prop_assert!(known_domain, "unknown domain in {host:?}");
    let again = Registry::parse(host);
    prop_assert_eq!(again.as_ref(), Some(&registry), "not idempotent");
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn server_url_parse_never_panics_and_what_it_accepts_is_a_clean_host(
        input in prop_oneof![
            any::<String>(),
            ".{0,120}",
            decorated(valid_host().prop_map(|(h, _)| h)),
            // A valid host with one character inserted, replaced or removed.
            (valid_host(), any::<usize>(), any::<char>(), 0..3u8).prop_map(|((h, _), at, c, op)| {
                let mut chars: Vec<char> = h.chars().collect();
                let at = at % (chars.len() + 1);
                match op {
                    0 => chars.insert(at, c),
                    1 if at < chars.len() => chars[at] = c,
                    _ if at < chars.len() => { chars.remove(at); }
                    _ => {}
                }
                chars.into_iter().collect()
            }),
        ]
    ) {
        check_parse(&input)?;
    }

    #[test]
    fn server_url_parse_round_trips_every_valid_host(
        (host, region, written) in valid_host().prop_flat_map(|(host, region)| {
            (Just(host.clone()), Just(region), decorated(Just(host)))
        }),
    ) {
        for text in [host.clone(), written] {
            prop_assert_eq!(
                Registry::parse(&text),
                Some(Registry { host: host.clone(), region: Region::parse(&region).unwrap() }),
                "input {:?}", text
            );
        }
    }

    #[test]
    fn server_url_parse_refuses_a_valid_host_with_anything_glued_to_it(
        (host, _) in valid_host(),
        prefix in prop::sample::select(
            &["", "user@", "evil.example/", "//", "ftp://", "https://evil.example/", "x"][..],
        ),
        suffix in prop::sample::select(
            &["", ".evil.example", ":80", ":4443", ":0443", ":443:443", ":", "@evil.example", ".", "..", "\\x", "?x", "#x",
              "\u{0}", "%2f", " x", "-"][..],
        ),
    ) {
        prop_assume!(!(prefix.is_empty() && suffix.is_empty()));
        let input = format!("{prefix}{host}{suffix}");
        prop_assert_eq!(Registry::parse(&input), None, "accepted {:?}", input);
    }
}

#[test]
fn server_url_seeds() {
    replay("server_url", |bytes| {
        check_parse(&String::from_utf8_lossy(bytes))
    });
}

// ---- get, store and erase input -----------------------------------------------------------------

const ACCOUNT: &str = "123456789012";
const REGIONS: &[&str] = &["us-east-1", "eu-west-3"];
const STORED_HOST: &str = "210987654321.dkr.ecr.ap-south-1.amazonaws.com";
const CACHED_SECRET: &str = "CACHED-SECRET-7f3a9c1e55";
/// ECR-shaped (base64 of JSON with its `expiration`, an hour ahead): a stored login whose
/// password says it is fresh answers without the API.
static STORED_SECRET: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let json = format!(
        r#"{{"payload":"STORED-SECRET-0b8d2e4f66","expiration":{}}}"#,
        unix_now() + 3600
    );
    aws_smithy_types::base64::encode(json)
});

fn host_of(region: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.{region}.amazonaws.com")
}

/// A cache dir holding a fresh login for each of REGIONS and a stored login for STORED_HOST,
/// so that `get` for those hosts never needs the network.
struct Sandbox {
    _dir: TempDir,
    config: Config,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::isolated(dir.path().join("cache"));
        let sandbox = Sandbox { _dir: dir, config };
        let cache = sandbox.cache();
        let login = |registry: &str, secret: &str| Login {
            registry: registry.to_string(),
            username: "AWS".into(),
            secret: Secret::new(secret.to_string()),
            expires_at: unix_now() + 3600,
        };
        for region in REGIONS {
            let slot = cache.login_slot(&Region::parse(region).unwrap(), &sandbox.config.identity);
            let locked = slot.lock(Duration::from_secs(1)).unwrap();
            locked
                .write(&login(&host_of(region), CACHED_SECRET))
                .unwrap();
        }
        let slot = cache.stored_slot(STORED_HOST);
        let locked = slot.lock(Duration::from_secs(1)).unwrap();
        locked.write(&login(STORED_HOST, &STORED_SECRET)).unwrap();
        sandbox
    }

    fn cache(&self) -> Cache {
        Cache::open(self.config.cache_dir.as_deref().unwrap()).unwrap()
    }

    fn registries(&self) -> Vec<String> {
        let mut held: Vec<String> = self
            .cache()
            .entries()
            .into_iter()
            .map(|(_, entry)| entry.login.registry)
            .collect();
        held.sort();
        held
    }

    /// Runs one action on `input`: the error as text, and what it wrote to stdout.
    fn handle(&self, action: Action, input: &[u8]) -> (Result<(), String>, Vec<u8>) {
        let mut out = Vec::new();
        let result = protocol::handle(
            action,
            &self.config,
            unix_now(),
            Cursor::new(input),
            &mut out,
        )
        .map_err(|err| err.to_string());
        (result, out)
    }

    /// Whether `get` for this input is answered from the sandbox alone (no API call).
    fn answers_offline(input: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(input) else {
            return true;
        };
        match Registry::parse(text) {
            None => true,
            Some(registry) => {
                REGIONS.contains(&registry.region.as_str()) || registry.host == STORED_HOST
            }
        }
    }
}

/// Input for `get` and `erase`: noise, and the sandbox's hosts (and near misses) dressed up.
fn server_url_input() -> impl Strategy<Value = Vec<u8>> {
    let hosts = prop::sample::select(vec![
        host_of(REGIONS[0]),
        host_of(REGIONS[1]),
        STORED_HOST.to_string(),
        format!("999999999999.dkr.ecr.{}.amazonaws.com", REGIONS[0]),
        "docker.io".to_string(),
        "localhost:5000".to_string(),
    ]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        any::<String>().prop_map(String::into_bytes),
        decorated(hosts).prop_map(String::into_bytes),
        // Bigger than any real input (the limit is 64 KiB).
        (60_000..70_000usize, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ]
}

fn check_get(input: &[u8]) -> Result<(), TestCaseError> {
    if !Sandbox::answers_offline(input) {
        return Ok(());
    }
    let sandbox = Sandbox::new();
    let (result, out) = sandbox.handle(Action::Get, input);
    match result {
        Ok(()) => {
            let text = String::from_utf8(out).map_err(|_| TestCaseError::fail("not UTF-8"))?;
            prop_assert!(
                text.ends_with('\n') && text.matches('\n').count() == 1,
                "{text:?}"
            );
            let value: Value = serde_json::from_str(&text).unwrap();
            let object = value.as_object().unwrap();
            prop_assert_eq!(object.len(), 3);
            let url = std::str::from_utf8(input).unwrap().trim();
            prop_assert_eq!(object["ServerURL"].as_str(), Some(url));
            prop_assert_eq!(object["Username"].as_str(), Some("AWS"));
            let secret = object["Secret"].as_str().unwrap();
            let host = Registry::parse(url).unwrap().host;
            let expected = if host == STORED_HOST {
                STORED_SECRET.as_str()
            } else {
                CACHED_SECRET
            };
            prop_assert_eq!(secret, expected);
        }
        Err(message) => {
            prop_assert!(out.is_empty(), "wrote output and failed");
            check_one_line(&message)?;
            prop_assert!(
                !message.contains(CACHED_SECRET) && !message.contains(STORED_SECRET.as_str())
            );
        }
    }
    Ok(())
}

fn check_erase(input: &[u8]) -> Result<(), TestCaseError> {
    let sandbox = Sandbox::new();
    let before = sandbox.registries();
    let (result, out) = sandbox.handle(Action::Erase, input);
    prop_assert!(out.is_empty());
    if let Err(message) = &result {
        check_one_line(message)?;
    }
    let erased = std::str::from_utf8(input)
        .ok()
        .and_then(Registry::parse)
        .map(|r| r.host);
    let expected: Vec<String> = before
        .into_iter()
        .filter(|host| Some(host) != erased.as_ref() || result.is_err())
        .collect();
    prop_assert_eq!(sandbox.registries(), expected, "erase of {:?}", erased);
    Ok(())
}

/// A `store` document and the secret text it carries (which must never be echoed).
#[derive(Debug, Clone)]
struct StoreDoc {
    bytes: Vec<u8>,
    secret: String,
}

/// JSON that puts a secret where `store` reads it, and in the places it could be mistaken for
/// something else; then maybe damaged.
fn store_doc() -> impl Strategy<Value = StoreDoc> {
    let secret_text = prop_oneof![
        "S3CR3T-[A-Za-z0-9+/=]{10,30}",
        // A secret that is all digits, as some tokens are.
        (10_000_000_000u64..u64::MAX / 2).prop_map(|n| n.to_string()),
    ];
    let url = prop_oneof![
        Just(json!(host_of(REGIONS[0]))),
        Just(json!(format!("https://{STORED_HOST}/"))),
        Just(json!("docker.io")),
        Just(json!("")),
        Just(json!(42)),
        Just(Value::Null),
        ".{0,40}".prop_map(Value::from),
    ];
    let user = prop_oneof![
        Just(json!("AWS")),
        Just(json!("")),
        Just(json!(7)),
        Just(Value::Null),
        "[a-z<>]{1,12}".prop_map(Value::from),
    ];
    (
        secret_text,
        prop::option::of(url),
        prop::option::of(user),
        0..10u8,
        0..6u8,
        any::<usize>(),
        any::<u8>(),
    )
        .prop_map(|(secret, url, user, form, damage, at, byte)| {
            // Forms 0 to 2 (and 7): the secret as a string, where Docker puts it.
            let secret_value = match form {
                3 => secret.parse::<u64>().map_or(json!(secret), |n| json!(n)),
                4 => json!([secret]),
                5 => json!({ "value": secret }),
                6 => json!(secret.parse::<f64>().unwrap_or(1.5)),
                _ => json!(secret),
            };
            let mut doc = serde_json::Map::new();
            if let Some(url) = url {
                doc.insert("ServerURL".into(), url);
            }
            if let Some(user) = user {
                doc.insert("Username".into(), user);
            }
            doc.insert("Secret".into(), secret_value.clone());
            let value = match form {
                7 => json!(secret), // the secret alone, as a string
                8 => json!([host_of(REGIONS[0]), "AWS", secret_value]), // positional
                9 => secret_value,  // whatever form, alone
                _ => Value::Object(doc),
            };
            let mut bytes = value.to_string().into_bytes();
            let at = at % (bytes.len() + 1);
            match damage {
                0 => bytes.truncate(at),
                1 => bytes.insert(at, byte),
                2 if at < bytes.len() => bytes[at] = byte,
                _ => {}
            }
            StoreDoc { bytes, secret }
        })
}

fn check_store(doc: &StoreDoc) -> Result<(), TestCaseError> {
    let sandbox = Sandbox::new();
    let (result, out) = sandbox.handle(Action::Store, &doc.bytes);
    prop_assert!(out.is_empty(), "store wrote to stdout");
    match result {
        Ok(()) => {
            // Accepted: the document names an ECR host, a username and a secret, as an object
            // or (serde's positional form of a struct) as an array of the three.
            let value: Value = serde_json::from_slice(&doc.bytes).unwrap();
            let field = |name: &str, index: usize| match &value {
                Value::Array(items) => items.get(index).and_then(Value::as_str),
                other => other.get(name).and_then(Value::as_str),
            };
            let host = Registry::parse(field("ServerURL", 0).unwrap())
                .unwrap()
                .host;
            let stored = sandbox.cache().stored_slot(&host).read().unwrap();
            prop_assert_eq!(Some(stored.secret.expose()), field("Secret", 2));
            prop_assert_eq!(Some(stored.username.as_str()), field("Username", 1));
        }
        Err(message) => {
            check_one_line(&message)?;
            prop_assert!(
                !message.contains(&doc.secret),
                "the secret is in the error message: {message:?}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn get_input_never_panics_answers_one_line_or_fails_on_one(input in server_url_input()) {
        check_get(&input)?;
    }

    #[test]
    fn erase_input_never_panics_and_forgets_only_that_host(input in server_url_input()) {
        check_erase(&input)?;
    }

    #[test]
    fn store_input_never_panics_and_never_echoes_the_secret(doc in store_doc()) {
        check_store(&doc)?;
    }

    #[test]
    fn store_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_store(&StoreDoc { bytes, secret: "\u{0}never-present\u{0}".into() })?;
    }
}

#[test]
fn get_input_seeds() {
    replay("get_input", check_get);
}

#[test]
fn erase_input_seeds() {
    replay("get_input", check_erase);
}

/// Seeds for `store` are JSON documents whose `Secret` (wherever it is) must not be echoed;
/// the secret text of a seed is the value of its top-level "Secret" key, or the whole seed
/// when it is a bare JSON string or number.
#[test]
fn store_json_seeds() {
    replay("store_json", |bytes| {
        let secret = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(doc)) => doc.get("Secret").map(|s| match s {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            }),
            Ok(Value::String(text)) => Some(text),
            Ok(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let secret = secret
            .filter(|s| s.len() >= 6)
            .unwrap_or_else(|| "\u{0}never-present\u{0}".into());
        check_store(&StoreDoc {
            bytes: bytes.to_vec(),
            secret,
        })
    });
}

/// The messages that showed the bug, kept as a plain test so that the failure reads clearly.
#[test]
fn store_errors_never_echo_a_misplaced_secret() {
    let sandbox = Sandbox::new();
    for doc in [
        // A secret piped in as a JSON string instead of the whole document.
        r#""S3CR3T-piped-by-mistake""#.to_string(),
        // A token that is all digits, written as a JSON number.
        format!(
            r#"{{"ServerURL":"{}","Username":"AWS","Secret":98765432109876}}"#,
            host_of("us-east-1")
        ),
    ] {
        let (result, _) = sandbox.handle(Action::Store, doc.as_bytes());
        let message = result.expect_err("store must refuse this");
        for secret in ["S3CR3T-piped-by-mistake", "98765432109876"] {
            assert!(
                !message.contains(secret),
                "store's error echoes the secret: {message:?}"
            );
        }
    }
}

// ---- the cache file -------------------------------------------------------------------------------

const FILE_SECRET: &str = "FILE-SECRET-c0ffee1234";

/// A debug-log sink for `tracing`, to check what reading a cache file logs.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs `work` with this crate's debug logs going to the returned buffer.
fn with_debug_log<T>(work: impl FnOnce() -> T) -> (T, String) {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, work);
    (result, buffer.text())
}

/// A valid entry exactly as the helper writes it (whatever its layout), for the mutations.
fn valid_entry_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&dir.path().join("cache")).unwrap();
    let slot = cache.stored_slot(&host_of("us-east-1"));
    let login = Login {
        registry: host_of("us-east-1"),
        username: "AWS".into(),
        secret: Secret::new(FILE_SECRET.into()),
        expires_at: unix_now() + 3600,
    };
    slot.lock(Duration::from_secs(1))
        .unwrap()
        .write(&login)
        .unwrap();
    let file = fs::read_dir(cache.dir())
        .unwrap()
        .map(|item| item.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    fs::read(file).unwrap()
}

/// Every leaf (not array or object) of a JSON value.
fn leaves(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().flat_map(leaves).collect(),
        Value::Object(map) => map.values().flat_map(leaves).collect(),
        leaf => vec![leaf],
    }
}

/// The `n`th node (depth first, the root is 0) of a JSON value, modulo the node count.
fn nth_node(value: &mut Value, n: usize) -> &mut Value {
    fn count(value: &Value) -> usize {
        1 + match value {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(map) => map.values().map(count).sum(),
            _ => 0,
        }
    }
    let mut n = n % count(value);
    let mut node = value;
    while n > 0 {
        n -= 1;
        let children: Vec<&mut Value> = match node {
            Value::Array(items) => items.iter_mut().collect(),
            Value::Object(map) => map.values_mut().collect(),
            _ => unreachable!("n counts only nodes under this one"),
        };
        let mut chosen = None;
        for child in children {
            let size = count(child);
            if n < size {
                chosen = Some(child);
                break;
            }
            n -= size;
        }
        node = chosen.expect("n is within the node count");
    }
    node
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::from),
        Just(json!(FILE_SECRET)),
        Just(json!(host_of("us-east-1"))),
        Just(json!(1)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Cache file contents: noise, damaged valid entries, and valid entries whose nodes are
/// replaced by JSON of any type, removed, or joined by unknown keys.
fn cache_file() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        // A valid entry, damaged in up to 3 places.
        prop::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 0..4).prop_map(|edits| {
            let mut bytes = valid_entry_bytes();
            for (at, byte, op) in edits {
                let at = at % (bytes.len() + 1);
                match op {
                    0 => bytes.truncate(at),
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => bytes[at] = byte,
                    _ => {}
                }
            }
            bytes
        }),
        prop::collection::vec((any::<usize>(), json_value(), 0..3u8, "[a-z_]{1,10}"), 1..4)
            .prop_map(|edits| {
                let mut entry: Value = serde_json::from_slice(&valid_entry_bytes()).unwrap();
                for (at, value, op, key) in edits {
                    let node = nth_node(&mut entry, at);
                    match (op, node) {
                        (0, node) => *node = value,
                        (1, Value::Object(map)) if !map.is_empty() => {
                            let victim = map.keys().nth(at % map.len()).unwrap().clone();
                            map.remove(&victim);
                        }
                        (_, Value::Object(map)) => {
                            map.insert(key, value);
                        }
                        (_, node) => *node = value,
                    }
                }
                entry.to_string().into_bytes()
            }),
    ]
}

fn check_cache_file(bytes: &[u8]) -> Result<(), TestCaseError> {
    let sandbox = Sandbox::new();
    let cache = sandbox.cache();
    let region = "us-east-1";
    let slot = cache.login_slot(&Region::parse(region).unwrap(), &sandbox.config.identity);
    let path = fs::read_dir(cache.dir())
        .unwrap()
        .map(|item| item.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("login-{region}-")) && name.ends_with(".json")
        })
        .unwrap();
    fs::write(&path, bytes).unwrap();

    let (read, log) = with_debug_log(|| slot.read());
    // What a plain JSON parser sees in the bytes: the reference for what may be read.
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    match &read {
        Some(login) => {
            // A login read must be made of values that are in the file.
            let Some(value) = parsed.as_ref() else {
                return Err(TestCaseError::fail(
                    "read a login from bytes that are not JSON",
                ));
            };
            let found = leaves(value);
            for expected in [
                json!(login.registry),
                json!(login.username),
                json!(login.secret.expose()),
                json!(login.expires_at),
            ] {
                prop_assert!(found.contains(&&expected), "{expected} is not in the file");
            }
            // Any expiry, however odd, is judged without panicking.
            for margin in [0, 1800, 86_400] {
                let _ = login.freshness(unix_now(), Duration::from_secs(margin));
                let _ = login.freshness(u64::MAX, Duration::from_secs(margin));
            }
        }
        None => prop_assert!(
            log.contains("ignoring cache entry"),
            "no reason logged: {log:?}"
        ),
    }
    // A secret that appears in the file only as the value of "secret" (as in a damaged entry
    // of ours) never reaches the log. (A hostile file that puts text in another field may see
    // it quoted in the parse error: that text is not a secret of ours.)
    let text = String::from_utf8_lossy(bytes);
    if text.matches(FILE_SECRET).count()
        == text
            .matches(&format!("\"secret\":\"{FILE_SECRET}\""))
            .count()
    {
        prop_assert!(
            !log.contains(FILE_SECRET),
            "the debug log shows the secret: {log:?}"
        );
    }
    // Every other reader of the cache copes too, and `list` never shows a secret.
    prop_assert!(cache.entries().len() <= 3);
    let (result, out) = sandbox.handle(Action::List, b"unused");
    prop_assert!(result.is_ok());
    let out = String::from_utf8(out).unwrap();
    prop_assert!(out.ends_with('\n') && out.matches('\n').count() == 1);
    prop_assert!(serde_json::from_str::<Value>(&out).is_ok());
    let shown_on_purpose = read
        .as_ref()
        .is_some_and(|l| l.username.contains(FILE_SECRET) || l.registry.contains(FILE_SECRET));
    for secret in [CACHED_SECRET, STORED_SECRET.as_str(), FILE_SECRET] {
        if secret != FILE_SECRET || !shown_on_purpose {
            prop_assert!(!out.contains(secret), "list shows a secret: {out:?}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn cache_file_of_any_bytes_reads_as_nothing_or_a_valid_login(bytes in cache_file()) {
        check_cache_file(&bytes)?;
    }
}

#[test]
fn cache_file_seeds() {
    replay("cache_file", check_cache_file);
}

#[test]
fn the_debug_log_capture_works() {
    // Guards the log checks above: a garbage entry must be seen to log its reason.
    check_cache_file(b"garbage").unwrap();
    let (_, log) = with_debug_log(|| tracing::debug!("hello from the test"));
    assert!(log.contains("hello from the test"), "{log:?}");
}

// ---- the API's answers ----------------------------------------------------------------------------

/// Every password a canned answer carries starts with this, so that a leak is easy to spot.
const API_SECRET: &str = "APIPW-";
/// `DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT` for these runs, in seconds.
const API_TIMEOUT: u64 = 5;

/// Beginnings of every message a failed `get` may print when the API answers oddly.
const API_FAILURES: &[&str] = &[
    "unexpected answer from Lightsail in us-east-1: ",
    "Lightsail in us-east-1 refused the request (",
    "Lightsail in us-east-1 did not answer within ",
    "could not reach the Lightsail endpoint for us-east-1: ",
    "access denied by Lightsail in us-east-1 (",
    "AWS rejected the credentials from ",
    "credentials not found in native keychain",
];

#[derive(Debug, Clone)]
struct ApiAnswer {
    status: u16,
    body: Vec<u8>,
}

fn api_answer() -> impl Strategy<Value = ApiAnswer> {
    let host = host_of("us-east-1");
    let field = |good: Value| {
        prop_oneof![
            30 => Just(Some(good)),
            1 => Just(None),
            1 => Just(Some(Value::Null)),
            1 => Just(Some(json!(""))),
            1 => json_leaf().prop_map(Some),
        ]
    };
    let expires = prop_oneof![
        Just(json!(unix_now() + 3600)),
        Just(json!(0)),
        Just(json!(-5)),
        Just(json!(1.0e20)),
        Just(json!(1_700_000_000.5)),
        Just(json!("2030-01-01T00:00:00Z")),
        Just(json!(u64::MAX)),
    ];
    let login = (
        field(json!("AWS")),
        "[A-Za-z0-9]{8,24}".prop_flat_map(move |p| field(json!(format!("{API_SECRET}{p}")))),
        field(json!(host)),
        prop_oneof![9 => expires.prop_map(Some), 1 => Just(None)],
        prop::collection::btree_map("[a-zA-Z_]{1,10}", json_leaf(), 0..2),
    )
        .prop_map(|(username, password, registry, expires_at, extra)| {
            let mut login = serde_json::Map::new();
            for (name, value) in [
                ("username", username),
                ("password", password),
                ("registry", registry),
                ("expiresAt", expires_at),
            ] {
                if let Some(value) = value {
                    login.insert(name.to_string(), value);
                }
            }
            login.extend(extra);
            json!({ "registryLogin": login }).to_string().into_bytes()
        })
        .boxed();
    let error = (".{0,30}", ".{0,400}").prop_map(|(kind, message)| {
        json!({ "__type": kind, "message": message })
            .to_string()
            .into_bytes()
    });
    let body = prop_oneof![
        6 => login.clone(),
        1 => login.prop_flat_map(|b| {
            let len = b.len();
            (0..len).prop_map(move |n| b[..n].to_vec())
        }),
        1 => error,
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ];
    let status = prop_oneof![
        8 => Just(200u16),
        1 => prop::sample::select(&[201u16, 204, 301, 400, 403, 404, 413, 429, 500, 503][..]),
        1 => 200..600u16,
    ];
    (status, body).prop_map(|(status, body)| ApiAnswer { status, body })
}

/// Runs `get` against an endpoint that gives `answer` to every request.
fn check_api_answer(answer: &ApiAnswer) -> Result<(), TestCaseError> {
    let mut env = TestEnv::new();
    env.fake
        .answer_every_call_with(answer.status, answer.body.clone());
    env.set_env(
        "DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT",
        API_TIMEOUT.to_string(),
    );
    let host = env.registry_host("us-east-1");
    prop_assert_eq!(&host, &host_of("us-east-1"));
    // No assertion on time: the timeout fires inside the product (its message says so), and
    // `run` ends a hung run at its own generous bound.
    let output = env.run(&["get"], &host);
    prop_assert!(output.stderr.is_empty(), "stderr: {:?}", output.stderr);
    let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let login = body.as_ref().and_then(|b| b.get("registryLogin"));
    match output.code {
        Some(0) => {
            let credentials = output.credentials();
            let field = |name: &str| login.and_then(|l| l.get(name)).and_then(Value::as_str);
            prop_assert_eq!(credentials.server_url, host);
            prop_assert_eq!(Some(credentials.username.as_str()), field("username"));
            prop_assert_eq!(Some(credentials.secret.as_str()), field("password"));
            prop_assert!(
                field("registry").is_some_and(|r| r.eq_ignore_ascii_case(&host_of("us-east-1")))
            );
        }
        Some(1) => {
            let message = output.stdout.strip_suffix('\n').unwrap_or(&output.stdout);
            check_one_line(message)?;
            prop_assert!(
                API_FAILURES.iter().any(|start| message.starts_with(start)),
                "unexpected message: {message:?}"
            );
            prop_assert!(
                !message.contains(API_SECRET),
                "the password is in: {message:?}"
            );
        }
        other => prop_assert!(false, "exit {other:?}: {output:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn api_answers_of_any_shape_give_credentials_or_a_clear_error(answer in api_answer()) {
        check_api_answer(&answer)?;
    }
}

/// Seeds: the first line is the HTTP status, the rest the body.
#[test]
fn api_response_seeds() {
    replay("api_response", |bytes| {
        let split = bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len());
        let status = std::str::from_utf8(&bytes[..split])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .expect("a seed starts with its status line");
        let body = bytes.get(split + 1..).unwrap_or_default().to_vec();
        check_api_answer(&ApiAnswer { status, body })
    });
}

#[test]
fn a_well_formed_api_answer_is_served() {
    let body = json!({ "registryLogin": {
        "username": "AWS",
        "password": format!("{API_SECRET}well-formed"),
        "registry": host_of("us-east-1"),
        "expiresAt": unix_now() + 3600,
    }});
    let env = TestEnv::new();
    env.fake.answer_every_call_with(200, body.to_string());
    let output = env.run(&["get"], host_of("us-east-1"));
    assert_eq!(
        output.credentials().secret,
        format!("{API_SECRET}well-formed")
    );
    assert_eq!(env.fake.login_calls(), 1);
}
