//! `register`: tells a container service about an image pushed to its registry.

use std::borrow::Cow;

use crate::cli::RegisterArgs;
use crate::config::Config;
use crate::error::{Error, Result, one_line};
use crate::lightsail::{check_profile_exists, register_image, resolve_region};
use crate::output::Output;

pub fn register(config: &Config, args: &RegisterArgs, output: &mut Output) -> Result<()> {
    check_name("service name", &args.service, 63)?;
    check_name("label", &args.label, 53)?;
    check_digest(&args.digest)?;
    let config = &*with_profile(config, args.profile.as_deref())?;
    let region = resolve_region(config, args.region.as_ref())?;
    let image = register_image(config, &region, &args.service, &args.label, &args.digest)?;
    if args.json {
        let json = serde_json::to_string_pretty(&image)
            .map_err(|err| Error::stdout(std::io::Error::from(err)))?;
        output.result(json)
    } else {
        output.result(image.image)
    }
}

/// `--profile NAME`: that profile alone signs the calls and gives the default region, as for
/// `configure --profile` (a profile in neither AWS file is an error before any call).
pub(crate) fn with_profile<'a>(
    config: &'a Config,
    profile: Option<&str>,
) -> Result<Cow<'a, Config>> {
    match profile {
        Some(profile) => {
            check_profile_exists(config, profile)?;
            Ok(Cow::Owned(config.bound_to(profile, None)))
        }
        None => Ok(Cow::Borrowed(config)),
    }
}

/// Lightsail's rule for service names and labels: lowercase letters, digits and '-', not at
/// either end.
pub(crate) fn check_name(what: &'static str, value: &str, max: usize) -> Result<()> {
    let valid = (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            what,
            value: one_line(value),
            rule: format!(
                "must be 1 to {max} of a-z, 0-9 and '-', not starting or ending with '-'"
            ),
        })
    }
}

fn check_digest(digest: &str) -> Result<()> {
    let valid = digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            what: "digest",
            value: one_line(digest),
            rule: "must be sha256: followed by 64 lowercase hex digits (docker push prints it)"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_lightsail_rules() {
        for good in ["a", "web", "web-1", "0", &"a".repeat(53)] {
            assert!(check_name("label", good, 53).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-web",
            "web-",
            "Web",
            "web_1",
            "web.1",
            "wéb",
            &"a".repeat(54),
        ] {
            assert!(check_name("label", bad, 53).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests_are_sha256_hex() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(check_digest(&format!("sha256:{hex}")).is_ok());
        for bad in [
            hex.clone(),
            format!("sha256:{}", &hex[1..]),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha512:{hex}"),
            format!("sha256:{hex}0"),
            String::new(),
        ] {
            assert!(check_digest(&bad).is_err(), "{bad}");
        }
    }
}
