//! `register`: tells a container service about an image pushed to its registry.

use std::io::Write;

use crate::cli::RegisterArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::helper::run_bounded;
use crate::lightsail::{Lightsail, default_region};
use crate::registry::is_region;

pub fn register(config: &Config, args: &RegisterArgs, output: &mut impl Write) -> Result<()> {
    check_name("service name", &args.service, 63)?;
    check_name("label", &args.label, 53)?;
    check_digest(&args.digest)?;
    let region = resolve_region(config, args.region.as_deref())?;
    let image = run_bounded(config, &region, async {
        Lightsail::connect(&region, config)
            .await?
            .register_image(&args.service, &args.label, &args.digest)
            .await
    })?;
    let text = if args.json {
        serde_json::to_string_pretty(&image).map_err(|err| Error::InvalidInput(err.to_string()))?
    } else {
        image.image
    };
    writeln!(output, "{text}").map_err(|err| Error::io("cannot write to", "standard output", err))
}

/// `--region` if given, else the current AWS profile's or environment's region.
pub fn resolve_region(config: &Config, given: Option<&str>) -> Result<String> {
    let region = match given {
        Some(region) => region.to_string(),
        None => run_bounded(config, "the default region", async {
            Ok(default_region().await)
        })?
        .ok_or_else(|| {
            Error::InvalidInput(
                "no AWS region: pass --region, or set AWS_REGION or a region in your AWS profile"
                    .into(),
            )
        })?,
    };
    if is_region(&region) {
        Ok(region)
    } else {
        Err(Error::InvalidInput(format!(
            "{:?} is not an AWS region name (like us-east-1)",
            crate::error::one_line(&region)
        )))
    }
}

/// Lightsail's rule for service names and labels: lowercase letters, digits and '-', not at
/// either end.
fn check_name(what: &str, value: &str, max: usize) -> Result<()> {
    let valid = (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} {:?} must be 1 to {max} of a-z, 0-9 and '-', not starting or ending with '-'",
            crate::error::one_line(value)
        )))
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
        Err(Error::InvalidInput(format!(
            "digest {:?} must be sha256: followed by 64 lowercase hex digits (docker push prints it)",
            crate::error::one_line(digest)
        )))
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
