//! The version an image tag states, for the items that exist only from some release on
//! (Forgejo's Actions ID-token key from v15, its asymmetric LFS key from v16, Woodpecker's
//! `agent.conf` from v1.0; docs/FORGES.md §1.4, §2.3, §3).
//!
//! A tag says as much as it says: `1.23` is any 1.23.x, `11` any 11.x.y, `latest` or a
//! digest nothing at all. A comparison the tag cannot decide (`1` against 1.23) answers
//! "unknown", and the profile then does what it does for `latest`: the current release's
//! behaviour.

use std::fmt;

/// The numeric components a tag starts with: `v3.5.0-alpine` is `[3, 5, 0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(Vec<u32>);

impl Version {
    /// The version at the start of an image tag: an optional `v`, one to three numeric
    /// components separated by dots, then the end or a `-`, `+` or `_` suffix
    /// (`1.22-rootless`, `11.0.1`, `v3`, `1.21.11-0`, `17.9.1-ee.0`). `None` for tags that
    /// name no version (`latest`, `latest-rootless`, `nightly`, `sha-0f3a`).
    pub fn from_tag(tag: &str) -> Option<Version> {
        let t = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
        let end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, rest) = t.split_at(end);
        if !(rest.is_empty() || rest.starts_with(['-', '+', '_'])) || num.ends_with('.') {
            return None;
        }
        let parts: Option<Vec<u32>> = num.split('.').map(|p| p.parse().ok()).collect();
        let parts = parts?;
        (!parts.is_empty() && parts.len() <= 3).then_some(Version(parts))
    }

    /// Whether this version is `min` or later: `Some` when the tag says enough to tell,
    /// `None` when it does not (`1` against 1.23, `1.23` against 1.23.4).
    pub fn at_least(&self, min: &[u32]) -> Option<bool> {
        for (i, want) in min.iter().enumerate() {
            let have = self.0.get(i)?;
            if have != want {
                return Some(have > want);
            }
        }
        Some(true)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    fn v(tag: &str) -> Option<Version> {
        Version::from_tag(tag)
    }

    #[test]
    fn tags_that_state_a_version() {
        assert_eq!(v("1.22-rootless"), Some(Version(vec![1, 22])));
        assert_eq!(v("11.0.1"), Some(Version(vec![11, 0, 1])));
        assert_eq!(v("v3"), Some(Version(vec![3])));
        assert_eq!(v("1.21.11-0"), Some(Version(vec![1, 21, 11])));
        assert_eq!(v("17.9.1-ee.0"), Some(Version(vec![17, 9, 1])));
        assert_eq!(v("15-rootless").unwrap().to_string(), "15");
        for none in [
            "latest",
            "latest-rootless",
            "nightly",
            "sha-0f3a",
            "1.",
            "1..2",
            "1.2.3.4",
            "3a",
            "",
        ] {
            assert_eq!(v(none), None, "{none}");
        }
    }

    #[test]
    fn comparisons_the_tag_can_and_cannot_decide() {
        assert_eq!(v("1.23").unwrap().at_least(&[1, 23]), Some(true));
        assert_eq!(v("1.22.6").unwrap().at_least(&[1, 23]), Some(false));
        assert_eq!(v("2").unwrap().at_least(&[1, 23]), Some(true));
        assert_eq!(v("1").unwrap().at_least(&[1, 23]), None);
        assert_eq!(v("14").unwrap().at_least(&[15]), Some(false));
        assert_eq!(v("15").unwrap().at_least(&[15]), Some(true));
        assert_eq!(v("1.21.11-0").unwrap().at_least(&[8]), Some(false));
    }
}
