//! The helper's own configuration file, `config.json` in the user's config folder
//! (`~/.config/docker-credential-lightsail/`, or `DOCKER_CREDENTIAL_LIGHTSAIL_CONFIG_DIR`):
//! which AWS profile each registry host uses, so that a staging and a production registry each
//! get their own account's login whatever `AWS_PROFILE` says.
//!
//! ```json
//! {
//!   "registries": {
//!     "111111111111.dkr.ecr.us-east-1.amazonaws.com": { "profile": "staging" }
//!   }
//! }
//! ```
//!
//! A binding decides whose credentials a registry receives, so the file gets the cache's
//! defences: it is read only if it is a regular file of this user's, writable by nobody else,
//! and never through a symlink; anything else is an error, not a fallback to another identity.
//! A missing file means no bindings. Rewrites keep every key they do not know and replace the
//! file atomically.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use tracing::debug;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::files::{self, NotOpened};
use crate::registry::Registry;

/// The file's name in the config folder.
pub const FILE_NAME: &str = "config.json";
/// A hand-edited file of bindings is tiny; anything this big is not ours.
const MAX_BYTES: u64 = 1024 * 1024;

/// The configuration for `get` of `server_url`: bound to the host's profile when the file binds
/// it. `None` (use `config` as it is) for an unbound host, and for a host that is not shaped like
/// a registry host, for which the file is not even read.
pub fn config_for(config: &Config, server_url: &str) -> Result<Option<Config>> {
    let Some(registry) = Registry::parse(server_url) else {
        return Ok(None);
    };
    let Some(path) = path(config) else {
        return Ok(None);
    };
    let Some(bindings) = Bindings::read(&path)? else {
        return Ok(None);
    };
    Ok(bindings.profile(&registry.host).map(|profile| {
        debug!(
            "{} is bound to AWS profile '{profile}' in {}",
            registry.host,
            path.display()
        );
        config.bound_to(profile, Some(&path))
    }))
}

/// Creates the helper's config folder `dir` if needed (0700), and checks it is the user's own
/// and writable by nobody else: it holds the bindings and the lock files of `configure`.
pub fn own_dir(dir: &Path) -> Result<()> {
    files::ensure_private_dir(dir).map_err(|reason| Error::ConfigFileRefused {
        path: dir.to_path_buf(),
        reason,
    })
}

/// `<config folder>/config.json`, if there is a config folder.
pub fn path(config: &Config) -> Option<PathBuf> {
    config.config_dir.as_ref().map(|dir| dir.join(FILE_NAME))
}

/// The file's contents: the whole document, kept for rewriting, and where it came from.
#[derive(Debug)]
pub struct Bindings {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl Bindings {
    /// The bindings in the file at `path`: `None` when there is no file; an error when it is not
    /// safe to trust or not a bindings document.
    pub fn read(path: &Path) -> Result<Option<Bindings>> {
        let Some(bytes) = read_private(path)? else {
            return Ok(None);
        };
        let invalid = |reason: String| Error::ConfigFileInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let doc = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(doc)) => doc,
            Ok(_) => return Err(invalid("it is not a JSON object".into())),
            Err(err) => {
                return Err(invalid(format!(
                    "it is not valid JSON (line {}, column {})",
                    err.line(),
                    err.column()
                )));
            }
        };
        let bindings = Bindings {
            path: path.to_path_buf(),
            doc,
        };
        bindings.check().map_err(invalid)?;
        Ok(Some(bindings))
    }

    /// The bindings in the file at `path`, or none yet: for `configure`, which may create it.
    pub fn load_or_empty(path: &Path) -> Result<Bindings> {
        Ok(Bindings::read(path)?.unwrap_or_else(|| Bindings {
            path: path.to_path_buf(),
            doc: Map::new(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every bound host with its profile, for `doctor`.
    pub fn hosts(&self) -> Vec<(String, String)> {
        let Some(registries) = self.registries() else {
            return Vec::new();
        };
        registries
            .iter()
            .filter_map(|(host, entry)| {
                Some((host.clone(), entry.get("profile")?.as_str()?.to_string()))
            })
            .collect()
    }

    /// The profile `host` is bound to, if any.
    pub fn profile(&self, host: &str) -> Option<&str> {
        self.registries()?
            .get(&host.to_ascii_lowercase())?
            .get("profile")?
            .as_str()
    }

    /// Binds `host` to `profile`, keeping whatever else its entry holds; returns the profile it
    /// was bound to before, if any.
    pub fn bind(&mut self, host: &str, profile: &str) -> Option<String> {
        let previous = self.profile(host).map(str::to_string);
        let registries = self
            .doc
            .entry("registries")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(registries) = registries {
            let entry = registries
                .entry(host.to_ascii_lowercase())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(entry) = entry {
                entry.insert("profile".into(), Value::String(profile.to_string()));
            }
        }
        previous
    }

    /// Writes the file for people to read (two-space indented), atomically, mode 0600, in a
    /// folder of the user's own that nobody else can write (created 0700 if needed).
    pub fn save(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        own_dir(dir)?;
        let mut json = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"  ");
        self.doc
            .serialize(&mut serde_json::Serializer::with_formatter(
                &mut json, formatter,
            ))
            .map_err(|err| Error::io("cannot write", &self.path, io::Error::other(err)))?;
        json.push(b'\n');
        files::write_atomic(&self.path, &json, None)
            .map_err(|err| Error::io("cannot write", &self.path, err))
    }

    fn registries(&self) -> Option<&Map<String, Value>> {
        self.doc.get("registries")?.as_object()
    }

    /// What is wrong with the document's shape, if anything: a binding the helper cannot read
    /// must not be skipped silently.
    fn check(&self) -> std::result::Result<(), String> {
        let Some(registries) = self.doc.get("registries") else {
            return Ok(());
        };
        let registries = registries
            .as_object()
            .ok_or("\"registries\" is not a JSON object")?;
        for (host, entry) in registries {
            match entry.get("profile") {
                Some(Value::String(profile)) if valid_profile_name(profile) => {}
                _ => {
                    return Err(format!(
                        "\"registries\".\"{}\" has no \"profile\" string",
                        crate::error::one_line(host)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `name` can be an AWS profile name: not empty, no spaces, brackets, `#`, `;` or control
/// characters (which could not name a section of an AWS config file).
pub fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "[]#;".contains(c))
}

/// The file's bytes if it exists: opened without following a symlink or blocking on a FIFO,
/// then checked on the open file itself (no window between check and read).
fn read_private(path: &Path) -> Result<Option<Vec<u8>>> {
    let refuse = |reason: String| Error::ConfigFileRefused {
        path: path.to_path_buf(),
        reason,
    };
    let file = match files::open_no_follow(path) {
        Ok(file) => file,
        Err(NotOpened::Missing) => return Ok(None),
        Err(NotOpened::Symlink) => return Err(refuse("it is a symbolic link".into())),
        Err(NotOpened::Failed(err)) => return Err(refuse(format!("cannot read it: {err}"))),
    };
    let metadata = file
        .metadata()
        .map_err(|err| refuse(format!("cannot read it: {err}")))?;
    if let Some(reason) = files::refusal_at(&metadata, files::Kind::File, path) {
        return Err(refuse(reason));
    }
    read_bounded(file, metadata.len())
        .map(Some)
        .map_err(|err| refuse(format!("cannot read it: {err}")))
}

/// Reads at most `MAX_BYTES`, in one `read` for a file of the `size` it had (plus one at its end).
fn read_bounded(file: File, size: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(size.min(MAX_BYTES) as usize + 1);
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(io::Error::other(format!(
            "it is larger than {} KiB",
            MAX_BYTES / 1024
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::fs;
    #[cfg(unix)]
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[cfg(unix)]
    const HOST: &str = "111111111111.dkr.ecr.us-east-1.amazonaws.com";

    #[test]
    fn a_missing_file_is_no_bindings() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            Bindings::read(&tmp.path().join(FILE_NAME))
                .unwrap()
                .is_none()
        );
    }

    // Modes and symbolic links: Unix's (the unit tests run natively on Windows too).
    #[cfg(unix)]
    #[test]
    fn bind_save_read_keeps_unknown_keys_and_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/docker-credential-lightsail");
        let path = dir.join(FILE_NAME);
        let mut bindings = Bindings::load_or_empty(&path).unwrap();
        assert_eq!(bindings.bind(HOST, "staging"), None);
        bindings.save().unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);

        fs::write(
            &path,
            format!(
                r#"{{"note":"mine","registries":{{"{}":{{"profile":"staging","why":"ci"}}}}}}"#,
                HOST.to_uppercase()
            ),
        )
        .unwrap();
        let mut bindings = Bindings::read(&path).unwrap().unwrap();
        assert_eq!(bindings.profile(HOST), None, "keys are the lower-case host");
        fs::write(
            &path,
            format!(
                r#"{{"note":"mine","registries":{{"{HOST}":{{"profile":"staging","why":"ci"}}}}}}"#
            ),
        )
        .unwrap();
        bindings = Bindings::read(&path).unwrap().unwrap();
        assert_eq!(bindings.profile(HOST), Some("staging"));
        assert_eq!(bindings.bind(HOST, "prod"), Some("staging".into()));
        bindings.save().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["note"], "mine");
        assert_eq!(doc["registries"][HOST]["why"], "ci");
        assert_eq!(doc["registries"][HOST]["profile"], "prod");
        assert!(
            text.ends_with("}\n") && text.contains("\n  \"registries\""),
            "{text}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_unsafe_or_malformed_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(FILE_NAME);
        let error = |path: &Path| Bindings::read(path).unwrap_err().to_string();

        fs::write(&path, "{\"registries\":{}}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
        assert!(error(&path).ends_with(&format!(
            "it is writable by group or others: fix it with `chmod 600 {}`",
            path.display()
        )));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Bindings::read(&path).unwrap().is_some());

        let link = tmp.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(
            error(&link).ends_with("it is a symbolic link"),
            "{}",
            error(&link)
        );
        assert!(error(tmp.path()).ends_with("it is not a regular file"));

        for (bad, why) in [
            (
                "{\"registries\": ",
                "it is not valid JSON (line 1, column 15)",
            ),
            ("[]", "it is not a JSON object"),
            (
                "{\"registries\": []}",
                "\"registries\" is not a JSON object",
            ),
            (
                "{\"registries\": {\"h\": {\"profile\": 7}}}",
                "\"registries\".\"h\" has no \"profile\" string",
            ),
            (
                "{\"registries\": {\"h\": {\"profile\": \"a b\"}}}",
                "\"registries\".\"h\" has no \"profile\" string",
            ),
        ] {
            fs::write(&path, bad).unwrap();
            assert!(error(&path).contains(why), "{bad}: {}", error(&path));
        }
    }

    #[test]
    fn profile_names() {
        for good in ["staging", "prod-eu", "a.b_c@d/e+f"] {
            assert!(valid_profile_name(good), "{good}");
        }
        for bad in ["", "a b", "[x]", "x\n", "a#b", "a;b"] {
            assert!(!valid_profile_name(bad), "{bad:?}");
        }
    }
}
