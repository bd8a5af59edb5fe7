//! A password that cannot be printed by accident.

use serde::{Deserialize, Serialize};

/// Wraps a registry password: `Debug` and `Display` never show it; `expose()` marks each real use.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(REDACTED)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2".into());
        assert_eq!(format!("{secret:?}"), "Secret(REDACTED)");
        assert_eq!(
            format!("{:#?}", Some(&secret)),
            "Some(\n    Secret(REDACTED),\n)"
        );
    }
}
