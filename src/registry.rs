//! Which server URLs could be ours: a pure parse of an ECR-shaped registry host.
//!
//! Lightsail's registry is ECR underneath, so its host has the ECR shape and names the region.
//! Anything else is not ours, decided without touching the disk, the network or AWS config.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result, one_line};

/// An ECR-shaped registry host and the region it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// Lowercase host name, without scheme, port or path: `host:443` is `host`.
    pub host: String,
    pub region: Region,
}

/// An AWS region name, checked for its shape (`us-east-1`): made by `Registry::parse`, from
/// `--region`, or from the AWS profile, so that a bare string never stands in for one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);

impl Region {
    pub fn parse(name: &str) -> Result<Region> {
        if is_region(name) {
            Ok(Region(name.to_string()))
        } else {
            Err(Error::InvalidRegion(one_line(name)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Region {
    type Err = Error;
    fn from_str(name: &str) -> Result<Region> {
        Region::parse(name)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Partitions' DNS suffixes that ECR registries live under.
const DOMAINS: &[&str] = &[
    "amazonaws.com",
    "amazonaws.com.cn",
    "on.aws",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
];

impl Registry {
    /// Parses what Docker passes as a server URL: `host`, `https://host`, `host/`, `host/sr`…
    /// and `host:443` (nerdctl asks that way first): the registry listens on HTTPS's own port,
    /// so any other port is another server. Returns `None` for anything that is not an
    /// ECR-shaped host.
    pub fn parse(server_url: &str) -> Option<Registry> {
        let url = server_url.trim();
        let rest = strip_prefix_ignore_case(url, "https://")
            .or_else(|| strip_prefix_ignore_case(url, "http://"))
            .unwrap_or(url);
        let authority = rest.split('/').next()?;
        let host = authority
            .strip_suffix(":443")
            .unwrap_or(authority)
            .to_ascii_lowercase();
        let region = Region(ecr_region(&host)?.to_string());
        Some(Registry { host, region })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `<12 digits>.dkr.ecr[-fips].<region>.<domain>` or `<12 digits>.dkr-ecr[-fips].<region>.<domain>`.
fn ecr_region(host: &str) -> Option<&str> {
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = ["dkr.ecr-fips.", "dkr.ecr.", "dkr-ecr-fips.", "dkr-ecr."]
        .iter()
        .find_map(|service| rest.strip_prefix(service))?;
    let (region, domain) = rest.split_once('.')?;
    (is_region(region) && DOMAINS.contains(&domain)).then_some(region)
}

/// Region names look like `us-east-1`, `ap-southeast-3`, `us-gov-west-1`.
pub fn is_region(name: &str) -> bool {
    let bytes = name.as_bytes();
    name.contains('-')
        && bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    #[test]
    fn accepts_every_way_docker_writes_a_host() {
        for input in [
            HOST.to_string(),
            format!("https://{HOST}"),
            format!("HTTPS://{HOST}"),
            format!("http://{HOST}"),
            format!("{HOST}/"),
            format!("{HOST}/sr"),
            format!("https://{HOST}/v2/sr/manifests/latest"),
            format!("{HOST}\n"),
            format!("  {HOST}\r\n"),
            HOST.to_uppercase(),
            format!("{HOST}:443"),
            format!("https://{HOST}:443"),
            format!("https://{HOST}:443/v2/"),
            format!("{}:443", HOST.to_uppercase()),
        ] {
            let registry = Registry::parse(&input).unwrap_or_else(|| panic!("{input:?}"));
            assert_eq!(registry.host, HOST, "{input:?}");
            assert_eq!(registry.region.as_str(), "us-east-1", "{input:?}");
        }
    }

    #[test]
    fn knows_the_ecr_variants() {
        for (host, region) in [
            (
                "111122223333.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
            ),
            (
                "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn",
                "cn-north-1",
            ),
            ("111122223333.dkr-ecr.eu-west-3.on.aws", "eu-west-3"),
            ("111122223333.dkr-ecr-fips.us-east-2.on.aws", "us-east-2"),
            (
                "111122223333.dkr.ecr.ap-southeast-1.amazonaws.com",
                "ap-southeast-1",
            ),
        ] {
            assert_eq!(
                Registry::parse(host).map(|r| r.region.to_string()),
                Some(region.to_string()),
                "{host}"
            );
        }
    }

    #[test]
    fn regions_are_checked_once_when_made() {
        assert_eq!(Region::parse("eu-west-3").unwrap().as_str(), "eu-west-3");
        for bad in [
            "",
            "Mars",
            "us_east_1",
            "us-east-",
            "-us-east-1",
            "us-east-1\n",
        ] {
            assert!(
                matches!(Region::parse(bad), Err(Error::InvalidRegion(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_everything_else() {
        for input in [
            "",
            " ",
            "docker.io",
            "https://index.docker.io/v1/",
            "ghcr.io/owner/image",
            "localhost:5000",
            "12345678901.dkr.ecr.us-east-1.amazonaws.com",
            "1234567890123.dkr.ecr.us-east-1.amazonaws.com",
            "12345678901a.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:80",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:5000",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:4443",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:0443",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:443:443",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:",
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com:8443/",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
            "123456789012.dkr.ecr.us-east-1.example.com",
            "123456789012.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr..amazonaws.com",
            "123456789012.dkr.ecr.US_EAST_1.amazonaws.com",
            "123456789012.dkr.ecr.useast.amazonaws.com",
            "user@123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "ftp://123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "\u{0}\u{1}",
            "https://",
        ] {
            assert_eq!(Registry::parse(input), None, "{input:?}");
        }
    }
}
