//! `doctor`: everything that stands between `docker push` and a Lightsail registry, checked in
//! order, each thing that is wrong with its cause and the one command that fixes it.
//!
//! The checks are data: a list of [`Check`]s (an id, a status, a message, a fix), rendered once
//! as text and once as JSON. The decisions take `now` and the configuration passed in; I/O goes
//! through the seams the other commands use (`DockerConfig`, `lightsail::Session`, `Cache`,
//! `Engine`). Network checks share one budget, so that a dead network ends the run in seconds
//! and the summary says the checks were cut short.

mod local;
mod registries;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::cli::DoctorArgs;
use crate::config::Config;
use crate::error::Result;
use crate::output::Output;

/// How long all network checks together may take: a dead network ends the run within this
/// (plus the engine's own answer), and the summary says so.
const NETWORK_BUDGET: Duration = Duration::from_secs(12);
/// How long one network check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result. `id` is stable (README lists them); `subject` is the registry host or
/// region a per-registry check is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub subject: Option<String>,
    pub message: String,
    /// The one command that fixes it (for `Fail`, and for a `Warn` that has one).
    pub fix: Option<String>,
}

impl Check {
    fn ok(id: &'static str, message: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Ok,
            subject: None,
            message: message.into(),
            fix: None,
        }
    }

    fn warn(id: &'static str, message: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            ..Check::ok(id, message)
        }
    }

    fn fail(id: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Check::ok(id, message)
        }
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    fn about(mut self, subject: impl Into<String>) -> Check {
        self.subject = Some(subject.into());
        self
    }
}

/// Every check of one run, and whether the network budget ran out.
#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Set when a network check timed out or the budget was spent: later network checks were
    /// skipped.
    pub cut_short: bool,
}

impl Report {
    fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    fn count(&self, status: Status) -> usize {
        self.checks
            .iter()
            .filter(|check| check.status == status)
            .count()
    }

    pub fn failed(&self) -> bool {
        self.count(Status::Fail) > 0
    }

    fn summary(&self) -> String {
        let mut line = format!(
            "summary: {} ok, {} warn, {} FAIL",
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail)
        );
        if self.cut_short {
            let _ = write!(
                line,
                "; the network did not answer in time: network checks were cut short (at most {} s in all)",
                NETWORK_BUDGET.as_secs()
            );
        }
        line
    }

    /// One line per check (`ok`, `warn` or `FAIL`), the fix indented under it, then the summary.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for check in &self.checks {
            let subject = check
                .subject
                .as_deref()
                .map(|subject| format!("{subject}: "))
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "{:<5} {:<20} {subject}{}",
                check.status.label(),
                check.id,
                check.message
            );
            if let Some(fix) = &check.fix {
                let _ = writeln!(text, "{:<26} fix: {fix}", "");
            }
        }
        text.push_str(&self.summary());
        text
    }

    /// The same as one JSON document (keys documented in the README and the man page).
    pub fn json(&self) -> String {
        let document = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "checks": self.checks,
            "summary": {
                "ok": self.count(Status::Ok),
                "warn": self.count(Status::Warn),
                "fail": self.count(Status::Fail),
                "network_cut_short": self.cut_short,
            },
        });
        serde_json::to_string_pretty(&document).unwrap_or_default()
    }
}

/// The time left for network checks.
struct Budget {
    deadline: Instant,
    per_check: Duration,
}

impl Budget {
    fn new(config: &Config) -> Budget {
        Budget {
            deadline: Instant::now() + NETWORK_BUDGET,
            per_check: config.timeout.min(CHECK_TIMEOUT),
        }
    }

    /// The timeout for the next network check, in whole seconds (as messages show it), or
    /// `None` when less than a second is left.
    fn next(&self) -> Option<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let whole = Duration::from_secs(left.as_secs());
        (!whole.is_zero()).then(|| whole.min(self.per_check))
    }

    /// `config` with the next check's timeout.
    fn config(&self, config: &Config) -> Option<Config> {
        let timeout = self.next()?;
        let mut bounded = config.clone();
        bounded.timeout = timeout;
        bounded.lock_timeout = bounded.lock_timeout.min(timeout);
        Some(bounded)
    }
}

/// Runs every check; `Ok(true)` when none failed.
pub fn doctor(config: &Config, args: &DoctorArgs, now: u64, output: &mut Output) -> Result<bool> {
    let report = examine(config, args, now);
    output.result(if args.json {
        report.json()
    } else {
        report.text()
    })?;
    Ok(!report.failed())
}

/// The checks, in the order Docker meets the things they check.
pub fn examine(config: &Config, args: &DoctorArgs, now: u64) -> Report {
    let started = Instant::now();
    let mut report = Report::default();
    let docker = local::docker_config(config, args, &mut report);
    local::helper_on_path(config, &mut report);
    let budget = Budget::new(config);
    registries::check(config, args, &docker, now, started, &budget, &mut report);
    local::cache_folder(config, now, &mut report);
    local::engine(config, &mut report);
    report
}

/// `docker-credential-lightsail <command>` with `--region` and `--profile` when given.
fn helper_command(command: &str, region: Option<&str>, profile: Option<&str>) -> String {
    let mut line = format!("docker-credential-lightsail {command}");
    if let Some(profile) = profile {
        let _ = write!(line, " --profile {profile}");
    }
    if let Some(region) = region {
        let _ = write!(line, " --region {region}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_one_line_per_check_each_fix_under_its_failure_and_a_summary() {
        let mut report = Report::default();
        report.push(Check::ok("docker.config", "fine"));
        report.push(Check::fail("helper.path", "missing", "do this").about("here"));
        report.push(Check::warn("clock", "a bit off"));
        let text = report.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("ok    docker.config"), "{text}");
        assert!(lines[1].starts_with("FAIL  helper.path          here: missing"));
        assert_eq!(lines[2].trim(), "fix: do this");
        assert!(lines[3].starts_with("warn  clock"));
        assert_eq!(lines[4], "summary: 1 ok, 1 warn, 1 FAIL");
        assert!(report.failed());
    }

    #[test]
    fn json_keys_are_the_documented_ones() {
        let mut report = Report::default();
        report.push(Check::fail("clock", "off", "fix it"));
        report.cut_short = true;
        let doc: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["version", "checks", "summary"]);
        let check = doc["checks"][0].as_object().unwrap();
        let keys: Vec<&str> = check.keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "status", "subject", "message", "fix"]);
        assert_eq!(doc["checks"][0]["status"], "fail");
        assert_eq!(doc["summary"]["fail"], 1);
        assert_eq!(doc["summary"]["network_cut_short"], true);
    }
}
