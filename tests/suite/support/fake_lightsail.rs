//! A local fake of the Amazon Lightsail API for tests and benchmarks.
//!
//! It speaks AWS JSON 1.1 over plain HTTP/1.1 on 127.0.0.1 the way the Rust SDK sends it
//! (`POST /`, `X-Amz-Target: Lightsail_20161128.<Operation>`, a SigV4 `Authorization` header) and
//! answers `CreateContainerServiceRegistryLogin` and `RegisterContainerImage`. It checks the shape
//! of the signature and its scope, not the HMAC itself (std has no crypto, and the point is to catch
//! a wrong endpoint, service or region, not to re-test the SDK's signer).
//!
//! Every behaviour control works on a running fake from any thread, so a test can change it
//! between two runs of the helper, and every observation can be waited for on a `Condvar`.
//!
//! Every answer carries the headers every AWS answer has (`x-amzn-RequestId`, `Date`); the wire
//! format is checked against botocore's own model of Lightsail by `tests/e2e/fake-vs-boto3.py`.
//! For property tests, `answer_every_call_with` turns it into a canned endpoint that gives any
//! status and body to every (validated) call.
//!
//! Included by the suite (`tests/suite/support`) and, through `#[path]`, by
//! `examples/fake_lightsail.rs`; it depends on std and serde_json only.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Operation name of the registry login call.
pub const LOGIN: &str = "CreateContainerServiceRegistryLogin";
/// Operation name of the image registration call.
pub const REGISTER: &str = "RegisterContainerImage";
/// Operation name of the call that describes container services.
pub const GET_SERVICES: &str = "GetContainerServices";
/// Operation name of the call that starts a deployment.
pub const DEPLOY: &str = "CreateContainerServiceDeployment";
/// Account that owns the fake registries unless `set_account` says otherwise.
pub const DEFAULT_ACCOUNT: &str = "123456789012";
/// Logins expire this long after they are issued, like the real ones, unless `set_expires_in`.
pub const DEFAULT_EXPIRES_IN: i64 = 12 * 3600;
/// Every issued password starts with this, so leaks are easy to spot in any output.
pub const PASSWORD_PREFIX: &str = "LSPW-";
/// Container services that exist unless `set_services` says otherwise.
pub const DEFAULT_SERVICES: &[&str] = &["hello"];

const TARGET_PREFIX: &str = "Lightsail_20161128.";
const SIGV4_ALGORITHM: &str = "AWS4-HMAC-SHA256 ";
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// A body cut off mid-object, holding no secret, for `Mode::MalformedBody`.
const MALFORMED_BODY: &str = r#"{"registryLogin": {"username": "AWS", "expiresAt": "#;
/// `Mode::Drip` sends one byte per this interval.
const DRIP_INTERVAL: Duration = Duration::from_secs(1);

/// How the fake delivers answers that pass validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answer at once (after any `set_delay`).
    Normal,
    /// Read the request, then never answer until the fake is dropped.
    Hang,
    /// Answer one byte per second.
    Drip,
    /// Answer 200 with a truncated JSON body.
    MalformedBody,
    /// Answer logins with every field except `password`.
    LoginWithoutPassword,
}

/// One request the fake received, whether or not it was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The operation from `X-Amz-Target`, or the raw header (empty when missing) when it is not
    /// a Lightsail target.
    pub operation: String,
    /// Region from the SigV4 credential scope, if the `Authorization` header was well formed.
    pub region: Option<String>,
    /// Access key id from the SigV4 credential scope, if well formed.
    pub access_key_id: Option<String>,
}

/// A running fake Lightsail endpoint. Dropping it stops the server and ends its connections.
pub struct FakeLightsail {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl FakeLightsail {
    /// Starts a fake on a free port.
    pub fn new() -> FakeLightsail {
        FakeLightsail::bind(0).expect("cannot start the fake Lightsail endpoint")
    }

    /// Starts a fake on `port` of 127.0.0.1 (0: any free port).
    pub fn bind(port: u16) -> io::Result<FakeLightsail> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            port: addr.port(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let accept_thread = thread::Builder::new()
            .name(format!("fake-lightsail-{}", addr.port()))
            .spawn({
                let shared = Arc::clone(&shared);
                move || accept_loop(listener, shared)
            })?;
        Ok(FakeLightsail {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        })
    }

    /// The endpoint URL to give the SDK (`AWS_ENDPOINT_URL_LIGHTSAIL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The registry host the fake returns for logins in `region`.
    pub fn registry_host(&self, region: &str) -> String {
        registry_host(&self.shared.lock().account, region)
    }

    // ---- behaviour controls -------------------------------------------------------------------

    /// Answers every later call (after validating it) with this status and body, whatever the
    /// operation: for feeding the helper arbitrary API answers.
    pub fn answer_every_call_with(&self, status: u16, body: impl Into<Vec<u8>>) {
        let canned = Response {
            status,
            content_type: JSON_CONTENT_TYPE,
            body: body.into(),
            challenge: None,
        };
        self.shared.update(|s| s.canned = Some(canned));
    }

    /// Runs the fake's clock `seconds` off the real one: its answers' `Date` and its logins'
    /// expiry, as a server whose clock differs from this machine's.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.shared.update(|s| s.clock_offset = seconds);
    }

    /// With `true`, the registry's `/v2/` refuses every login (401), as for a wrong password.
    pub fn refuse_registry_logins(&self, refuse: bool) {
        self.shared.update(|s| s.registry_refuses = refuse);
    }

    /// Sets the account id in registry host names.
    pub fn set_account(&self, account: &str) {
        self.shared.update(|s| s.account = account.to_string());
    }

    /// Calls signed with `access_key_id` belong to `account`: their logins name that account's
    /// registry host (other keys keep `set_account`'s). For several AWS accounts on one fake.
    pub fn set_account_for_key(&self, access_key_id: &str, account: &str) {
        self.shared.update(|s| {
            s.accounts_by_key
                .insert(access_key_id.to_string(), account.to_string())
        });
    }

    /// The registry host the fake returns for logins signed with `access_key_id` in `region`.
    pub fn registry_host_for_key(&self, access_key_id: &str, region: &str) -> String {
        registry_host(self.shared.lock().account_of(access_key_id), region)
    }

    /// With `Some(text)`, logins from now on name this registry (whatever the region); `None`
    /// goes back to the account's host of the region signed for.
    pub fn set_login_registry(&self, registry: Option<&str>) {
        self.shared
            .update(|s| s.login_registry = registry.map(str::to_string));
    }

    /// Logins issued from now on expire `seconds` after the call (may be small or negative).
    pub fn set_expires_in(&self, seconds: i64) {
        self.shared.update(|s| s.expires_in = seconds);
    }

    /// With `Some(password)`, every login from now on returns that password instead of a unique
    /// one (for a real registry that checks it); `None` goes back to unique passwords.
    pub fn set_password(&self, password: Option<&str>) {
        self.shared
            .update(|s| s.fixed_password = password.map(str::to_string));
    }

    /// With `Some(region)`, a request signed for another region gets InvalidSignatureException.
    pub fn expect_region(&self, region: Option<&str>) {
        self.shared
            .update(|s| s.expect_region = region.map(str::to_string));
    }

    /// With `Some(keys)`, any other access key id gets UnrecognizedClientException.
    pub fn set_known_access_keys(&self, keys: Option<&[&str]>) {
        self.shared
            .update(|s| s.known_access_keys = keys.map(to_string_set));
    }

    /// The container services that exist, each with the default deployment (see
    /// `default_deployment`).
    pub fn set_services(&self, names: &[&str]) {
        self.shared.update(|s| s.services = Services::new(names));
    }

    /// Replaces a service's current deployment (`containers` and `publicEndpoint`, as the API
    /// writes them), or removes it with `None`: as if someone else's deployment had gone
    /// through, ending any deployment that was being made.
    pub fn set_deployment(&self, service: &str, deployment: Option<Value>) {
        self.shared
            .update(|s| s.services.set_current(service, deployment));
    }

    /// New deployments turn ACTIVE (or FAILED, with `fails`) this long after they are made.
    pub fn set_deployment_outcome(&self, after: Duration, fails: bool) {
        self.shared.update(|s| {
            s.services.settle_after = after;
            s.services.fail = fails;
        });
    }

    /// `GetContainerServices` lists each new deployment only from its `polls + 1`th answer on,
    /// as an eventually consistent API may.
    pub fn set_listing_lag(&self, polls: usize) {
        self.shared.update(|s| s.services.listing_lag = polls);
    }

    /// New deployments are in this state, which never settles, instead of ACTIVATING: a state
    /// this API version does not know (the SDK passes it on as it came), or a hostile one.
    pub fn set_new_deployment_state(&self, state: Option<&str>) {
        self.shared
            .update(|s| s.services.new_state = state.map(str::to_string));
    }

    /// Every service as `GetContainerServices` describes it now.
    pub fn services(&self) -> Value {
        self.shared.update(|s| s.services.describe(None))
    }

    /// Waits this long before answering each accepted request.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.update(|s| s.delay = delay);
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.update(|s| s.mode = mode);
    }

    /// Shorthand for `set_mode(Mode::Hang)`.
    pub fn hang(&self) {
        self.set_mode(Mode::Hang);
    }

    /// Shorthand for `set_mode(Mode::Drip)`.
    pub fn drip(&self) {
        self.set_mode(Mode::Drip);
    }

    /// The next `n` accepted requests, of any operation, fail with this error.
    pub fn fail_next(&self, n: usize, status: u16, error_type: &str, message: &str) {
        let failure = Failure {
            status,
            error_type: error_type.to_string(),
            message: message.to_string(),
        };
        self.shared
            .update(|s| s.failures.extend(std::iter::repeat_n(failure, n)));
    }

    /// Every `n`th login call (counting from the fake's start) fails with a 500
    /// ServiceException; 0 turns it off.
    pub fn fail_every(&self, n: usize) {
        self.shared.update(|s| s.fail_every = n);
    }

    /// Login calls from now on are counted, then block until `release()`.
    pub fn hold_calls(&self) {
        self.shared.update(|s| s.held = true);
    }

    /// Lets held login calls, and later ones, answer.
    pub fn release(&self) {
        self.shared.update(|s| s.held = false);
    }

    // ---- observations -------------------------------------------------------------------------

    /// How many requests named `operation` arrived, including rejected and failed ones.
    pub fn calls(&self, operation: &str) -> usize {
        self.shared.lock().calls(operation)
    }

    pub fn login_calls(&self) -> usize {
        self.calls(LOGIN)
    }

    pub fn register_calls(&self) -> usize {
        self.calls(REGISTER)
    }

    /// Waits until at least `n` requests named `operation` have arrived; false after `timeout`.
    pub fn wait_for_calls(&self, operation: &str, n: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(Some(timeout), |s| s.calls(operation) >= n)
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Every password issued so far, in order.
    pub fn passwords(&self) -> Vec<String> {
        self.shared.lock().passwords.clone()
    }
}

impl Default for FakeLightsail {
    fn default() -> Self {
        FakeLightsail::new()
    }
}

impl Drop for FakeLightsail {
    fn drop(&mut self) {
        let connections = self.shared.update(|s| {
            s.stopping = true;
            std::mem::take(&mut s.connections)
        });
        // Ends reads blocked on idle keep-alive connections; held and hanging calls wake up on
        // `stopping`.
        for stream in connections.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // `accept()` cannot be interrupted: a connection of our own wakes it to see `stopping`.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

/// `<account>.dkr.ecr.<region>.amazonaws.com`, the shape of a Lightsail registry host.
pub fn registry_host(account: &str, region: &str) -> String {
    format!("{account}.dkr.ecr.{region}.amazonaws.com")
}

fn to_string_set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|item| item.to_string()).collect()
}

fn now_epoch_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

// ---- shared state ---------------------------------------------------------------------------

/// State shared by the handle and the server threads, with a Condvar signalled on every change.
struct Shared {
    port: u16,
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    /// The fake's clock: the real one with `set_clock_offset` added.
    fn now(&self) -> i64 {
        now_epoch_secs() + self.lock().clock_offset
    }

    /// Locks the state; a panicking test thread must not poison the fake for everyone else.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state and wakes every waiter.
    fn update<R>(&self, change: impl FnOnce(&mut State) -> R) -> R {
        let result = change(&mut self.lock());
        self.changed.notify_all();
        result
    }

    /// Blocks until `done` holds (true) or `timeout` passes (false); `None` waits forever.
    fn wait_until(&self, timeout: Option<Duration>, mut done: impl FnMut(&State) -> bool) -> bool {
        let guard = self.lock();
        match timeout {
            None => {
                let _guard = self
                    .changed
                    .wait_while(guard, |s| !done(s))
                    .unwrap_or_else(PoisonError::into_inner);
                true
            }
            Some(timeout) => {
                let (_guard, result) = self
                    .changed
                    .wait_timeout_while(guard, timeout, |s| !done(s))
                    .unwrap_or_else(PoisonError::into_inner);
                !result.timed_out()
            }
        }
    }

    /// Sleeps for `duration` unless the fake stops first; true if it stopped.
    fn pause(&self, duration: Duration) -> bool {
        self.wait_until(Some(duration), |s| s.stopping)
    }
}

#[derive(Clone, Debug)]
struct Failure {
    status: u16,
    error_type: String,
    message: String,
}

struct State {
    // Settings.
    account: String,
    accounts_by_key: HashMap<String, String>,
    expires_in: i64,
    fixed_password: Option<String>,
    login_registry: Option<String>,
    expect_region: Option<String>,
    known_access_keys: Option<HashSet<String>>,
    services: Services,
    delay: Duration,
    mode: Mode,
    fail_every: usize,
    held: bool,
    failures: VecDeque<Failure>,
    canned: Option<Response>,
    /// Seconds added to the fake's clock (its `Date` headers and login expiry).
    clock_offset: i64,
    /// Whether the registry's `/v2/` refuses every login.
    registry_refuses: bool,
    // Observations.
    calls: HashMap<String, usize>,
    requests: Vec<RecordedRequest>,
    passwords: Vec<String>,
    image_versions: HashMap<(String, String), u64>,
    /// Every registered image, as `RegisterContainerImage` answered it.
    images: Vec<Value>,
    // Server bookkeeping: open connections by id, so that drop can close them.
    connections: HashMap<u64, TcpStream>,
    next_connection: u64,
    stopping: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            account: DEFAULT_ACCOUNT.to_string(),
            accounts_by_key: HashMap::new(),
            expires_in: DEFAULT_EXPIRES_IN,
            fixed_password: None,
            login_registry: None,
            expect_region: None,
            known_access_keys: None,
            services: Services::new(DEFAULT_SERVICES),
            delay: Duration::ZERO,
            mode: Mode::Normal,
            fail_every: 0,
            held: false,
            failures: VecDeque::new(),
            canned: None,
            clock_offset: 0,
            registry_refuses: false,
            calls: HashMap::new(),
            requests: Vec::new(),
            passwords: Vec::new(),
            image_versions: HashMap::new(),
            images: Vec::new(),
            connections: HashMap::new(),
            next_connection: 0,
            stopping: false,
        }
    }
}

impl State {
    fn calls(&self, operation: &str) -> usize {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    /// Records a request and returns how many of its operation arrived, this one included.
    fn record(&mut self, request: RecordedRequest) -> usize {
        let count = self.calls.entry(request.operation.clone()).or_insert(0);
        *count += 1;
        let count = *count;
        self.requests.push(request);
        count
    }

    /// The failure to answer with, if one is queued or due.
    fn take_failure(&mut self, operation: &str, nth_call: usize) -> Option<Failure> {
        if let Some(failure) = self.failures.pop_front() {
            return Some(failure);
        }
        let due =
            operation == LOGIN && self.fail_every > 0 && nth_call.is_multiple_of(self.fail_every);
        due.then(|| Failure {
            status: 500,
            error_type: "ServiceException".to_string(),
            message: "An internal error occurred (injected by fail_every).".to_string(),
        })
    }

    /// The fixed password if set, else a unique, recognisable one: prefix, port, sequence
    /// number, then random hex.
    fn issue_password(&mut self, port: u16) -> String {
        let password = match &self.fixed_password {
            Some(fixed) => fixed.clone(),
            None => {
                let mut hasher = RandomState::new().build_hasher();
                hasher.write_usize(self.passwords.len());
                format!(
                    "{PASSWORD_PREFIX}{port}-{}-{:016x}",
                    self.passwords.len() + 1,
                    hasher.finish()
                )
            }
        };
        self.passwords.push(password.clone());
        password
    }

    /// A registry's `GET /v2/` (the fake behind a TLS front stands in for the registry host):
    /// 401 with a Basic challenge, or 200 for `Basic` credentials of a password it issued.
    fn registry_v2(&self, request: &Request) -> Response {
        let accepted = !self.registry_refuses
            && request.header("authorization").is_some_and(|given| {
                self.passwords.iter().any(|password| {
                    given == format!("Basic {}", base64(&format!("AWS:{password}")))
                })
            });
        if accepted {
            return Response::json(json!({}));
        }
        Response {
            status: 401,
            challenge: Some("Basic realm=\"fake registry\"".to_string()),
            ..Response::error(401, "UNAUTHORIZED", "authentication required")
        }
    }

    /// The account that calls signed with `access_key_id` belong to.
    fn account_of(&self, access_key_id: &str) -> &str {
        self.accounts_by_key
            .get(access_key_id)
            .unwrap_or(&self.account)
    }

    fn login(&mut self, port: u16, region: &str, access_key_id: &str) -> Response {
        let mut login = json!({
            "username": "AWS",
            "expiresAt": now_epoch_secs() + self.clock_offset + self.expires_in,
            "registry": self
                .login_registry
                .clone()
                .unwrap_or_else(|| registry_host(self.account_of(access_key_id), region)),
        });
        if self.mode != Mode::LoginWithoutPassword {
            login["password"] = Value::from(self.issue_password(port));
        }
        Response::json(json!({ "registryLogin": login }))
    }

    /// The names of every registered image (`:service.label.N`).
    fn registered_images(&self) -> HashSet<String> {
        self.images
            .iter()
            .filter_map(|image| image["image"].as_str().map(str::to_string))
            .collect()
    }

    fn register(&mut self, body: &[u8]) -> Response {
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let field = |name: &str| input.get(name).and_then(Value::as_str).map(str::to_string);
        let (Some(service), Some(label), Some(digest)) =
            (field("serviceName"), field("label"), field("digest"))
        else {
            return Response::error(
                400,
                "InvalidInputException",
                "serviceName, label and digest are required.",
            );
        };
        if !valid_label(&label) {
            return Response::error(
                400,
                "InvalidInputException",
                &format!(
                    "The label \"{label}\" is invalid: use 1 to 53 lowercase letters, digits \
                     and hyphens, not starting or ending with a hyphen."
                ),
            );
        }
        if !self.services.exists(&service) {
            return not_found(&service);
        }
        let version = self
            .image_versions
            .entry((service.clone(), label.clone()))
            .or_insert(0);
        *version += 1;
        let image = json!({
            "image": format!(":{service}.{label}.{version}"),
            "digest": digest,
            "createdAt": now_epoch_secs(),
        });
        self.images.push(image.clone());
        Response::json(json!({ "containerImage": image }))
    }
}

fn not_found(service: &str) -> Response {
    Response::error(
        400,
        "NotFoundException",
        &format!("The container service \"{service}\" does not exist."),
    )
}

/// Lightsail image labels: 1-53 chars of `a-z0-9-`, no hyphen at either end.
fn valid_label(label: &str) -> bool {
    (1..=53).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

// ---- HTTP server --------------------------------------------------------------------------------

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.lock().stopping {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        // Detached: it ends when the client closes, or when drop shuts the socket down.
        let _ = thread::Builder::new()
            .name("fake-lightsail-conn".to_string())
            .spawn(move || serve_connection(stream, &shared));
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let Some(id) = register_connection(&stream, shared) else {
        return;
    };
    let _ = serve_requests(stream, shared);
    shared.update(|s| s.connections.remove(&id));
}

/// Makes the connection known to drop; None if the fake is already stopping.
fn register_connection(stream: &TcpStream, shared: &Shared) -> Option<u64> {
    let clone = stream.try_clone().ok()?;
    let mut state = shared.lock();
    if state.stopping {
        return None;
    }
    state.next_connection += 1;
    let id = state.next_connection;
    state.connections.insert(id, clone);
    Some(id)
}

/// Keep-alive: answers requests on one connection until the client closes it.
fn serve_requests(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = Request::read(&mut reader)? {
        match handle(&request, shared) {
            Reply::Whole(response) => {
                writer.write_all(&response.to_bytes(shared.now()))?;
                writer.flush()?;
            }
            Reply::Drip(response) => {
                drip_out(&mut writer, &response.to_bytes(shared.now()), shared)?
            }
            Reply::Never => {
                shared.wait_until(None, |s| s.stopping);
                return Ok(());
            }
        }
        if request.wants_close() {
            break;
        }
    }
    Ok(())
}

/// Writes one byte per `DRIP_INTERVAL`, giving up when the fake stops.
fn drip_out(writer: &mut TcpStream, bytes: &[u8], shared: &Shared) -> io::Result<()> {
    for byte in bytes {
        writer.write_all(std::slice::from_ref(byte))?;
        writer.flush()?;
        if shared.pause(DRIP_INTERVAL) {
            break;
        }
    }
    Ok(())
}

/// What to do with a request's answer.
enum Reply {
    Whole(Response),
    Drip(Response),
    Never,
}

/// Routes a request: the plain `/__calls`, `/__images` and `/__services` endpoints for scripts,
/// or a Lightsail operation.
fn handle(request: &Request, shared: &Shared) -> Reply {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/__calls") => {
            Reply::Whole(Response::text(format!("{}\n", shared.lock().calls(LOGIN))))
        }
        ("GET", "/__images") => Reply::Whole(Response::json(json!(shared.lock().images))),
        ("GET", "/__services") => {
            Reply::Whole(Response::json(shared.update(|s| s.services.describe(None))))
        }
        ("GET", "/v2/") => Reply::Whole(shared.lock().registry_v2(request)),
        ("POST", "/") => handle_operation(request, shared),
        _ => Reply::Whole(Response::error(
            404,
            "UnknownOperationException",
            "The fake Lightsail endpoint only serves POST /.",
        )),
    }
}

/// Records the call, validates it, applies the behaviour controls, then answers it.
fn handle_operation(request: &Request, shared: &Shared) -> Reply {
    let target = request.header("x-amz-target").unwrap_or("");
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or(target);
    let scope = request.header("authorization").and_then(SigV4Scope::parse);
    let nth_call = shared.update(|s| {
        s.record(RecordedRequest {
            operation: operation.to_string(),
            region: scope.as_ref().map(|scope| scope.region.clone()),
            access_key_id: scope.as_ref().map(|scope| scope.access_key_id.clone()),
        })
    });
    let region = match validate(target, scope.as_ref(), &shared.lock()) {
        Ok(region) => region,
        Err(rejection) => return Reply::Whole(rejection),
    };
    if let Some(canned) = shared.lock().canned.clone() {
        return Reply::Whole(canned);
    }

    if shared.lock().mode == Mode::Hang {
        return Reply::Never;
    }
    if operation == LOGIN {
        shared.wait_until(None, |s| !s.held || s.stopping);
    }
    let delay = shared.lock().delay;
    if !delay.is_zero() && shared.pause(delay) {
        return Reply::Never;
    }

    // Settings are read again here: a test may change them while the call is held or delayed.
    let mut state = shared.lock();
    let response = if let Some(failure) = state.take_failure(operation, nth_call) {
        Response::error(failure.status, &failure.error_type, &failure.message)
    } else if state.mode == Mode::MalformedBody {
        Response::json_text(MALFORMED_BODY.to_string())
    } else {
        let key = scope
            .as_ref()
            .map_or("", |scope| scope.access_key_id.as_str());
        match operation {
            LOGIN => state.login(shared.port, &region, key),
            REGISTER => state.register(&request.body),
            GET_SERVICES => state.services.get(&request.body),
            _ => {
                let images = state.registered_images();
                state.services.deploy(&request.body, &images)
            }
        }
    };
    match state.mode {
        Mode::Drip => Reply::Drip(response),
        _ => Reply::Whole(response),
    }
}

/// Checks signature scope, credentials, region and target; returns the signed region.
fn validate(target: &str, scope: Option<&SigV4Scope>, state: &State) -> Result<String, Response> {
    let invalid_signature =
        |message: &str| Response::error(400, "InvalidSignatureException", message);
    let Some(scope) = scope else {
        return Err(invalid_signature(
            "Missing or malformed AWS4-HMAC-SHA256 Authorization header.",
        ));
    };
    if scope.service != "lightsail" {
        return Err(invalid_signature(&format!(
            "Credential should be scoped to correct service: 'lightsail', not '{}'.",
            scope.service
        )));
    }
    if state
        .expect_region
        .as_ref()
        .is_some_and(|expected| *expected != scope.region)
    {
        return Err(invalid_signature(&format!(
            "Credential should be scoped to a valid region, not '{}'.",
            scope.region
        )));
    }
    if state
        .known_access_keys
        .as_ref()
        .is_some_and(|keys| !keys.contains(&scope.access_key_id))
    {
        return Err(Response::error(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    match target.strip_prefix(TARGET_PREFIX) {
        Some(LOGIN | REGISTER | GET_SERVICES | DEPLOY) => Ok(scope.region.clone()),
        _ => Err(Response::error(
            400,
            "UnknownOperationException",
            &format!("Unknown operation: X-Amz-Target '{target}'."),
        )),
    }
}

/// The credential scope of a SigV4 `Authorization` header; the HMAC itself is not checked.
#[derive(Debug)]
struct SigV4Scope {
    access_key_id: String,
    region: String,
    service: String,
}

impl SigV4Scope {
    /// Parses `AWS4-HMAC-SHA256 Credential=<AKID>/<yyyymmdd>/<region>/<service>/aws4_request,
    /// SignedHeaders=..., Signature=<hex>`; None unless every part is present and well formed.
    fn parse(header: &str) -> Option<SigV4Scope> {
        let params = header.strip_prefix(SIGV4_ALGORITHM)?;
        let param = |name: &str| {
            params
                .split(',')
                .map(str::trim)
                .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
        };
        let signature = param("Signature")?;
        let signed_headers = param("SignedHeaders")?;
        let credential: Vec<&str> = param("Credential")?.split('/').collect();
        let [access_key_id, date, region, service, "aws4_request"] = credential.as_slice() else {
            return None;
        };
        let well_formed = !access_key_id.is_empty()
            && date.len() == 8
            && date.bytes().all(|b| b.is_ascii_digit())
            && !region.is_empty()
            && !service.is_empty()
            && !signed_headers.is_empty()
            && !signature.is_empty()
            && signature.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| SigV4Scope {
            access_key_id: access_key_id.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }
}

/// An HTTP/1.1 request with a Content-Length body (the SDK never sends chunked JSON bodies).
struct Request {
    method: String,
    path: String,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// Reads the next request; None at a clean end of the connection.
    fn read(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
        let Some(request_line) = read_request_line(reader)? else {
            return Ok(None);
        };
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(path), Some(_version)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid_data(format!("bad request line {request_line:?}")));
        };
        let mut headers = Vec::new();
        loop {
            let line =
                read_line(reader)?.ok_or_else(|| invalid_data("end of stream in headers"))?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid_data(format!("bad header {line:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut request = Request {
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body: Vec::new(),
        };
        if request.header("transfer-encoding").is_some() {
            return Err(invalid_data("chunked request bodies are not supported"));
        }
        let length = match request.header("content-length") {
            Some(value) => value
                .parse()
                .map_err(|_| invalid_data("bad Content-Length"))?,
            None => 0,
        };
        request.body = vec![0; length];
        reader.read_exact(&mut request.body)?;
        Ok(Some(request))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"))
    }
}

/// The first non-empty line (stray CRLFs between keep-alive requests are allowed).
fn read_request_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    while let Some(line) = read_line(reader)? {
        if !line.is_empty() {
            return Ok(Some(line));
        }
    }
    Ok(None)
}

/// One line without its CRLF; None at end of stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

fn invalid_data(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

#[derive(Clone)]
struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// A registry's `WWW-Authenticate` challenge.
    challenge: Option<String>,
}

impl Response {
    fn json(value: Value) -> Response {
        Response::json_text(value.to_string())
    }

    fn json_text(body: String) -> Response {
        Response {
            status: 200,
            content_type: JSON_CONTENT_TYPE,
            body: body.into_bytes(),
            challenge: None,
        }
    }

    /// An AWS JSON 1.1 error: the SDK reads the error code from `__type`.
    fn error(status: u16, error_type: &str, message: &str) -> Response {
        let body = json!({ "__type": error_type, "message": message }).to_string();
        Response {
            status,
            content_type: JSON_CONTENT_TYPE,
            body: body.into_bytes(),
            challenge: None,
        }
    }

    fn text(body: String) -> Response {
        Response {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: body.into_bytes(),
            challenge: None,
        }
    }

    /// The answer on the wire, its `Date` the fake's clock `now`.
    fn to_bytes(&self, now: i64) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            401 => "Unauthorized",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Unknown",
        };
        let mut bytes = format!(
            "HTTP/1.1 {} {reason}\r\nx-amzn-RequestId: {}\r\nDate: {}\r\n\
             Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
            self.status,
            request_id(),
            http_date(now),
            self.content_type,
            self.body.len(),
        )
        .into_bytes();
        if let Some(challenge) = &self.challenge {
            // Before the blank line that ends the headers.
            let end = bytes.len() - 2;
            bytes.splice(
                end..end,
                format!("WWW-Authenticate: {challenge}\r\n").into_bytes(),
            );
        }
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Standard base64 with padding, for comparing Basic credentials.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fresh request id in the UUID shape AWS uses.
fn request_id() -> String {
    let random = |n: usize| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(n);
        hasher.finish()
    };
    let hex = format!("{:016x}{:016x}", random(1), random(2));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// HTTP's date format (`Wed, 02 Dec 2026 06:57:18 GMT`) for Unix seconds `secs`.
fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, time) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

// ---- container services and deployments -------------------------------------------------------

/// The container services, each with its current and next deployment, as
/// `GetContainerServices` and `CreateContainerServiceDeployment` see them.
struct Services {
    services: BTreeMap<String, Service>,
    /// A new deployment settles (ACTIVE, or FAILED with `fail`) this long after it is made.
    settle_after: Duration,
    fail: bool,
    /// How many `GetContainerServices` answers leave out a new deployment.
    listing_lag: usize,
    /// The state of new deployments, when not ACTIVATING.
    new_state: Option<String>,
}

struct Service {
    current: Option<Value>,
    /// The deployment being made, and when it settles.
    next: Option<(Value, std::time::Instant)>,
    last_version: i64,
    /// How many more `GetContainerServices` answers leave out `next`.
    unlisted: usize,
}

/// The deployment every fake service starts with: two containers, the first public, with
/// every field a deployment can have, so that a copy that drops one shows.
pub fn default_deployment(service: &str) -> Value {
    json!({
        "containers": {
            "web": {
                "image": format!(":{service}.web.1"),
                "command": ["serve", "--port", "80"],
                "environment": { "MODE": "production", "GREETING": "hello world" },
                "ports": { "80": "HTTP" }
            },
            "cache": {
                "image": "redis:7",
                "command": [],
                "environment": {},
                "ports": { "6379": "TCP" }
            }
        },
        "publicEndpoint": {
            "containerName": "web",
            "containerPort": 80,
            "healthCheck": {
                "healthyThreshold": 2,
                "unhealthyThreshold": 3,
                "timeoutSeconds": 4,
                "intervalSeconds": 6,
                "path": "/health",
                "successCodes": "200-299"
            }
        }
    })
}

impl Services {
    fn new(names: &[&str]) -> Services {
        let services = names
            .iter()
            .map(|name| {
                let mut current = default_deployment(name);
                current["version"] = json!(1);
                current["state"] = json!("ACTIVE");
                current["createdAt"] = json!(now_epoch_secs());
                let service = Service {
                    current: Some(current),
                    next: None,
                    last_version: 1,
                    unlisted: 0,
                };
                (name.to_string(), service)
            })
            .collect();
        Services {
            services,
            settle_after: Duration::from_millis(200),
            fail: false,
            listing_lag: 0,
            new_state: None,
        }
    }

    fn exists(&self, name: &str) -> bool {
        self.services.contains_key(name)
    }

    fn set_current(&mut self, name: &str, deployment: Option<Value>) {
        if let Some(service) = self.services.get_mut(name) {
            service.next = None;
            service.current = deployment.map(|mut deployment| {
                service.last_version += 1;
                deployment["version"] = json!(service.last_version);
                deployment["state"] = json!("ACTIVE");
                deployment["createdAt"] = json!(now_epoch_secs());
                deployment
            });
        }
    }

    /// Settles deployments whose time has come, then describes `only` (or every) service.
    fn describe(&mut self, only: Option<&str>) -> Value {
        let fail = self.fail;
        let now = std::time::Instant::now();
        let mut described = Vec::new();
        for (name, service) in &mut self.services {
            if let Some((next, settles_at)) = &mut service.next
                && now >= *settles_at
                && next["state"] == "ACTIVATING"
            {
                if fail {
                    next["state"] = json!("FAILED");
                } else {
                    next["state"] = json!("ACTIVE");
                    if let Some(old) = &mut service.current {
                        old["state"] = json!("INACTIVE");
                    }
                    service.current = service.next.take().map(|(next, _)| next);
                }
            }
            if only.is_some_and(|only| only != name) {
                continue;
            }
            let deploying = service
                .next
                .as_ref()
                .is_some_and(|(next, _)| next["state"] == "ACTIVATING");
            let mut described_service = json!({
                "containerServiceName": name,
                "arn": format!("arn:aws:lightsail:us-east-1:{DEFAULT_ACCOUNT}:ContainerService/{name}"),
                "createdAt": now_epoch_secs() - 86_400,
                "location": { "availabilityZone": "all", "regionName": "us-east-1" },
                "resourceType": "ContainerService",
                "power": "nano",
                "scale": 1,
                "state": if deploying { "DEPLOYING" } else { "RUNNING" },
                "isDisabled": false,
                "url": format!("https://{name}.fake.us-east-1.cs.amazonlightsail.com/"),
            });
            if let Some(current) = &service.current {
                described_service["currentDeployment"] = current.clone();
            }
            if let Some((next, _)) = &service.next {
                described_service["nextDeployment"] = next.clone();
            }
            described.push(described_service);
        }
        json!({ "containerServices": described })
    }

    fn get(&mut self, body: &[u8]) -> Response {
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let only = input.get("serviceName").and_then(Value::as_str);
        if let Some(name) = only
            && !self.exists(name)
        {
            return not_found(name);
        }
        let mut described = self.describe(only);
        for (name, service) in &mut self.services {
            if service.unlisted > 0 && only.is_none_or(|only| only == name) {
                service.unlisted -= 1;
                for listed in described["containerServices"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    if listed["containerServiceName"] == name.as_str() {
                        let _ = listed.as_object_mut().map(|o| o.remove("nextDeployment"));
                        listed["state"] = json!("RUNNING");
                    }
                }
            }
        }
        Response::json(described)
    }

    fn deploy(&mut self, body: &[u8], registered: &HashSet<String>) -> Response {
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let invalid = |message: &str| Response::error(400, "InvalidInputException", message);
        let Some(name) = input.get("serviceName").and_then(Value::as_str) else {
            return invalid("serviceName is required.");
        };
        if !self.exists(name) {
            return not_found(name);
        }
        self.describe(Some(name));
        let Some(containers) = input.get("containers").and_then(Value::as_object) else {
            return invalid("containers are required.");
        };
        for (container, spec) in containers {
            let image = spec.get("image").and_then(Value::as_str).unwrap_or("");
            if image.starts_with(':') && !registered.contains(image) {
                return invalid(&format!(
                    "The image \"{image}\" of container \"{container}\" is not registered."
                ));
            }
        }
        if let Some(public) = input.get("publicEndpoint") {
            let container = public["containerName"].as_str().unwrap_or("");
            if !containers.contains_key(container) {
                return invalid(&format!(
                    "The public endpoint's container \"{container}\" is not in the deployment."
                ));
            }
        }
        let (settle_after, lag) = (self.settle_after, self.listing_lag);
        let state = self
            .new_state
            .clone()
            .unwrap_or_else(|| "ACTIVATING".into());
        let service = self.services.get_mut(name);
        let Some(service) = service else {
            return not_found(name);
        };
        if service
            .next
            .as_ref()
            .is_some_and(|(next, _)| next["state"] == "ACTIVATING")
        {
            return invalid(
                "Your container service is being deployed. Try again when it is RUNNING.",
            );
        }
        service.last_version += 1;
        let mut next = json!({
            "version": service.last_version,
            "state": state,
            "containers": containers,
            "createdAt": now_epoch_secs(),
        });
        if let Some(public) = input.get("publicEndpoint") {
            next["publicEndpoint"] = public.clone();
        }
        service.next = Some((next, std::time::Instant::now() + settle_after));
        service.unlisted = lag;
        let described = self.describe(Some(name));
        Response::json(json!({ "containerService": described["containerServices"][0] }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_standard_base64() {
        for (text, encoded) in [
            ("", ""),
            ("A", "QQ=="),
            ("AW", "QVc="),
            ("AWS", "QVdT"),
            ("AWS:pw", "QVdTOnB3"),
            ("AWS:LSPW-1?>", "QVdTOkxTUFctMT8+"),
        ] {
            assert_eq!(base64(text), encoded, "{text}");
        }
    }

    #[test]
    fn http_dates_are_written_as_http_writes_them() {
        for (secs, date) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_796_194_638, "Wed, 02 Dec 2026 06:57:18 GMT"),
            (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
        ] {
            assert_eq!(http_date(secs), date);
        }
    }

    #[test]
    fn request_ids_are_fresh_uuids() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
    }
}
