//! Docker's `config.json`: read it, change one `credHelpers` entry, write it back atomically,
//! keeping every other key, their order, the file's mode and owner, and a symlink a symlink.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result, one_line};
use crate::files::{self, Kept};

pub struct DockerConfig {
    /// The path the user knows (`~/.docker/config.json`).
    path: PathBuf,
    /// The file actually written: the symlink's target when `path` is a symlink.
    target: PathBuf,
    doc: Map<String, Value>,
    /// The file's mode and owner, kept when it is rewritten (None: a new file).
    kept: Option<Kept>,
}

/// What `set_cred_helper` did to the host's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It already named the helper.
    Unchanged,
    Added,
    /// It named another helper (this one, as the file had it, on one line).
    Replaced(String),
}

impl DockerConfig {
    /// Loads `<dir>/config.json`; a missing file is an empty config. A file that is not a JSON
    /// object is an error, and is never written.
    pub fn load(dir: &Path) -> Result<DockerConfig> {
        let path = dir.join("config.json");
        let target = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(&path)
                .map_err(|err| Error::io("cannot follow the symlink", &path, err))?,
            _ => path.clone(),
        };
        let (text, kept) = match fs::read(&target) {
            Ok(bytes) => {
                let metadata =
                    fs::metadata(&target).map_err(|err| Error::io("cannot read", &target, err))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    Error::DockerConfig(format!(
                        "{} is not UTF-8 text; left it untouched",
                        path.display()
                    ))
                })?;
                (text, Some(Kept::of(&metadata)))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => (String::new(), None),
            Err(err) => return Err(Error::io("cannot read", &path, err)),
        };
        let doc = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(doc)) => doc,
                Ok(_) => {
                    return Err(Error::DockerConfig(format!(
                        "{} is not a JSON object; left it untouched",
                        path.display()
                    )));
                }
                Err(err) => {
                    return Err(Error::DockerConfig(format!(
                        "{} is not valid JSON ({err}); left it untouched; fix it, then run configure again",
                        path.display()
                    )));
                }
            }
        };
        Ok(DockerConfig {
            path,
            target,
            doc,
            kept,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file written, for keying its lock: the symlink's target when `path` is a symlink.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The value of a top-level key (`credHelpers`, `credsStore`…), for `doctor`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.doc.get(key)
    }

    /// Whether the file exists (a missing one loads as empty).
    pub fn exists(&self) -> bool {
        self.kept.is_some()
    }

    /// Sets `credHelpers[host] = helper`; says what it changed.
    pub fn set_cred_helper(&mut self, host: &str, helper: &str) -> Result<Change> {
        let helpers = self
            .doc
            .entry("credHelpers")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(helpers) = helpers else {
            return Err(Error::DockerConfig(format!(
                "\"credHelpers\" in {} is not a JSON object; left it untouched",
                self.path.display()
            )));
        };
        let change = match helpers.get(host) {
            Some(Value::String(old)) if old == helper => return Ok(Change::Unchanged),
            Some(Value::String(old)) => Change::Replaced(one_line(old)),
            Some(old) => Change::Replaced(one_line(&old.to_string())),
            None => Change::Added,
        };
        helpers.insert(host.to_string(), Value::String(helper.to_string()));
        Ok(change)
    }

    /// Writes the file as Docker does (tab-indented), atomically: a temp file beside the
    /// target, fsync, rename, fsync the folder. A new file and folder are private to the user;
    /// root (`sudo` with `HOME` kept) gives them to the owner of the folder they are made in,
    /// and a rewritten file keeps its owner.
    pub fn save(&self) -> Result<()> {
        let dir = self.target.parent().unwrap_or(Path::new("."));
        if !dir.exists() {
            files::create_private_dir(dir).map_err(|err| Error::io("cannot create", dir, err))?;
            files::give_to_parent_owner(dir)
                .map_err(|err| Error::io("cannot set the owner of", dir, err))?;
        }
        let kept = self.kept.clone().or_else(|| Kept::new_in(dir));
        let mut json = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        self.doc
            .serialize(&mut serde_json::Serializer::with_formatter(
                &mut json, formatter,
            ))
            .map_err(|err| Error::DockerConfig(err.to_string()))?;
        json.push(b'\n');
        files::write_atomic(&self.target, &json, kept.as_ref())
            .map_err(|err| Error::io("cannot write", &self.path, err))
    }
}

#[cfg(test)]
#[cfg(unix)] // The tests check Unix modes.
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    #[test]
    fn adds_one_key_and_keeps_everything_else_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let original = r#"{"zeta":123456789012345678901234567890,"f":2.50,"e":1e3,"auths":{"x":{"auth":"abc"}},"credHelpers":{"b":"ecr-login"},"alpha":[true,null,"é"]}"#;
        let path = tmp.path().join("config.json");
        fs::write(&path, original).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();

        let mut config = DockerConfig::load(tmp.path()).unwrap();
        assert_eq!(
            config.set_cred_helper(HOST, "lightsail").unwrap(),
            Change::Added
        );
        assert_eq!(
            config.set_cred_helper(HOST, "lightsail").unwrap(),
            Change::Unchanged
        );
        assert_eq!(
            config.set_cred_helper("b", "lightsail").unwrap(),
            Change::Replaced("ecr-login".into())
        );
        config.save().unwrap();

        let text = fs::read_to_string(&path).unwrap();
        // Numbers keep their exact value and digits (an exponent may gain its '+').
        for number in ["123456789012345678901234567890", "2.50", "1e+3"] {
            assert!(text.contains(number), "{number} kept: {text}");
        }
        let written: Value = serde_json::from_str(&text).unwrap();
        let mut expected: Value = serde_json::from_str(original).unwrap();
        expected["credHelpers"][HOST] = Value::String("lightsail".into());
        expected["credHelpers"]["b"] = Value::String("lightsail".into());
        assert_eq!(
            serde_json::to_string(&written).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn creates_a_private_folder_and_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/.docker");
        let mut config = DockerConfig::load(&dir).unwrap();
        config.set_cred_helper(HOST, "lightsail").unwrap();
        config.save().unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            fs::metadata(dir.join("config.json")).unwrap().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_symlink_stays_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("dotfiles/docker.json");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, "{}").unwrap();
        let dir = tmp.path().join(".docker");
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&real, dir.join("config.json")).unwrap();

        let mut config = DockerConfig::load(&dir).unwrap();
        config.set_cred_helper(HOST, "lightsail").unwrap();
        config.save().unwrap();
        assert!(
            fs::symlink_metadata(dir.join("config.json"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(fs::read_to_string(&real).unwrap().contains(HOST));
    }

    #[test]
    fn invalid_json_is_left_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.json");
        for bad in ["{\"auths\": ", "[1]", "\"text\""] {
            fs::write(&path, bad).unwrap();
            let err = DockerConfig::load(tmp.path()).err().unwrap();
            assert!(err.to_string().contains("left it untouched"), "{err}");
            assert_eq!(fs::read_to_string(&path).unwrap(), bad);
        }
        fs::write(&path, r#"{"credHelpers":[]}"#).unwrap();
        let mut config = DockerConfig::load(tmp.path()).unwrap();
        assert!(config.set_cred_helper(HOST, "lightsail").is_err());
    }
}
