//! Which forge an image runs, which version its tag states, and which folders the image
//! declares as `VOLUME`.
//!
//! An image reference is read as docker reads it (`name[:tag][@digest]`, the grammar of
//! distribution/reference, `reference.go` and `normalize.go`): a reference docker would
//! refuse, such as the docs' placeholder `gitea/gitea:@version@-rootless`, names no image
//! at all, and is reported as such rather than half-read as another image.

use crate::profile::{Forge, Layout, Version};

/// An image reference split into its parts: `[registry/]path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry when the reference names one (`localhost:5000`, `codeberg.org`).
    pub registry: Option<String>,
    /// The repository path without the registry: `gitea/gitea`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// distribution/reference `NameTotalLengthMax`.
const NAME_MAX: usize = 255;

impl ImageRef {
    /// Parses `image` as docker does (`reference.ParseNormalizedNamed`); the error says
    /// why docker would refuse it.
    pub fn parse(image: &str) -> Result<ImageRef, String> {
        if image.is_empty() {
            return Err("an empty image reference".into());
        }
        // A digest cannot contain `@`, so the first one ends the name.
        let (name_tag, digest) = match image.split_once('@') {
            Some((n, d)) => {
                check_digest(d)?;
                (n, Some(d.to_string()))
            }
            None => (image, None),
        };
        // A `:` after the last `/` starts the tag; one before it is a registry's port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].find(':') {
            Some(i) => {
                let tag = &name_tag[last_slash + i + 1..];
                if !valid_tag(tag) {
                    return Err(format!("the tag {tag:?} is not a valid tag"));
                }
                (&name_tag[..last_slash + i], Some(tag.to_string()))
            }
            None => (name_tag, None),
        };
        if name.len() > NAME_MAX {
            return Err(format!("the name is longer than {NAME_MAX} characters"));
        }
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("a 64-character hexadecimal string is an image ID, not a name".into());
        }
        // normalize.go splitDockerDomain: the first component is a registry when it has
        // a `.` or `:`, is `localhost`, or has an upper-case letter.
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                check_domain(first)?;
                (Some(first.to_ascii_lowercase()), rest)
            }
            _ => (None, name),
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("the repository name {path:?} must be lowercase"));
        }
        if let Some(bad) = path.split('/').find(|c| !valid_path_component(c)) {
            return Err(format!(
                "{bad:?} is not a valid repository name component (lowercase letters and \
                 digits, separated by `.`, `_`, `__` or dashes)"
            ));
        }
        Ok(ImageRef {
            registry,
            path: path.to_string(),
            tag,
            digest,
        })
    }

    /// The version the tag states (`1.23-rootless` is 1.23); `None` for `latest`, no tag
    /// or a digest alone.
    pub fn version(&self) -> Option<Version> {
        self.tag.as_deref().and_then(Version::from_tag)
    }

    /// The path ends with these components (so registry mirrors and proxy-cache prefixes
    /// such as `harbor.example/dockerhub/gitea/gitea` still match).
    fn ends_with(&self, tail: &[&str]) -> bool {
        let parts: Vec<&str> = self.path.split('/').collect();
        parts.len() >= tail.len() && parts[parts.len() - tail.len()..] == *tail
    }
}

/// reference.go `tag`: `[\w][\w.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    chars.next().is_some_and(word)
        && tag.len() <= 128
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

/// reference.go `path-component`: `[a-z0-9]+` joined by `.`, `_`, `__` or dashes.
fn valid_path_component(c: &str) -> bool {
    let alnum = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let mut rest = c;
    loop {
        let end = rest
            .find(|ch: char| !(ch.is_ascii_lowercase() || ch.is_ascii_digit()))
            .unwrap_or(rest.len());
        if !alnum(&rest[..end]) {
            return false;
        }
        rest = &rest[end..];
        if rest.is_empty() {
            return true;
        }
        let sep = if rest.starts_with("__") {
            2
        } else if rest.starts_with(['.', '_']) {
            1
        } else {
            rest.len() - rest.trim_start_matches('-').len()
        };
        if sep == 0 {
            return false;
        }
        rest = &rest[sep..];
    }
}

/// reference.go `domain`: host names of `[a-zA-Z0-9]` components joined by dashes and
/// dots, an IPv4 address or a bracketed IPv6 one, then an optional `:port`.
fn check_domain(d: &str) -> Result<(), String> {
    let bad = || Err(format!("{d:?} is not a valid registry"));
    let (host, port) = match d.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, after)) = rest.split_once(']') else {
                return bad();
            };
            if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                return bad();
            }
            match after {
                "" => (None, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (None, Some(p)),
                    None => return bad(),
                },
            }
        }
        None => match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        },
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return bad();
    }
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    if host.is_some_and(|h| !h.split('.').all(component)) {
        return bad();
    }
    Ok(())
}

/// A digest docker accepts (`digest.Parse`): an algorithm it knows and its lowercase hex
/// encoding of the right length.
fn check_digest(d: &str) -> Result<(), String> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or_else(|| format!("the digest {d:?} has no algorithm (sha256:...)"))?;
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "the digest algorithm {alg:?} is not one docker knows"
            ))
        }
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "the digest {d:?} is not {len} lowercase hexadecimal digits"
        ));
    }
    Ok(())
}

/// Why docker would refuse `image`, for a service whose image is set (`None` when it
/// is a valid reference or empty, as for a build-only service).
pub fn reference_problem(image: &str) -> Option<String> {
    if image.is_empty() {
        return None;
    }
    ImageRef::parse(image).err().map(|why| {
        format!("the image {image:?} is not a valid image reference ({why}): docker refuses it")
    })
}

/// The version `image`'s tag states ([`ImageRef::version`]).
pub fn image_version(image: &str) -> Option<Version> {
    ImageRef::parse(image).ok()?.version()
}

/// The forge an image runs and its layout, from the image name alone.
///
/// Gitea: `gitea/gitea` on any registry, and `docker.gitea.com/gitea`. Forgejo:
/// `forgejo/forgejo` (`codeberg.org/…`, `data.forgejo.org/…`) and
/// `forgejo-experimental/forgejo`. For both a tag ending in `rootless` means
/// [`Layout::DockerRootless`]. An image given by digest only says nothing about
/// rootless; the caller may look at the mounts (see `compose::load`).
pub fn app_of_image(image: &str) -> Option<(Forge, Layout)> {
    let r = ImageRef::parse(image).ok()?;
    let gitea_like = |forge| {
        let rootless = r.tag.as_deref().is_some_and(|t| t.ends_with("rootless"));
        Some((
            forge,
            if rootless {
                Layout::DockerRootless
            } else {
                Layout::Docker
            },
        ))
    };
    if r.ends_with(&["gitea", "gitea"])
        || (r.registry.as_deref() == Some("docker.gitea.com") && r.path == "gitea")
    {
        return gitea_like(Forge::Gitea);
    }
    if r.ends_with(&["forgejo", "forgejo"]) || r.ends_with(&["forgejo-experimental", "forgejo"]) {
        return gitea_like(Forge::Forgejo);
    }
    let forge = if r.ends_with(&["woodpeckerci", "woodpecker-server"])
        || r.ends_with(&["woodpecker-ci", "woodpecker-server"])
    {
        Forge::Woodpecker
    } else if r.ends_with(&["woodpeckerci", "woodpecker-agent"])
        || r.ends_with(&["woodpecker-ci", "woodpecker-agent"])
    {
        Forge::WoodpeckerAgent
    } else if r.ends_with(&["gitlab", "gitlab-ce"]) || r.ends_with(&["gitlab", "gitlab-ee"]) {
        Forge::Gitlab
    } else if r.ends_with(&["gogs", "gogs"]) {
        Forge::Gogs
    } else if r.ends_with(&["drone", "drone"]) {
        Forge::Drone
    } else {
        return None;
    };
    Some((forge, Layout::Docker))
}

/// The folders an image declares with `VOLUME`. A path under one of them that no mount
/// of the compose file covers lives in an anonymous volume (kept by `docker restart`,
/// lost by `docker compose down`); a path outside them lives in the container's own
/// layer (lost whenever the container is recreated). `version` is the one the image's
/// tag states, `None` when it states none.
///
/// docs/FORGES.md §1.1 and §2.1: Gitea `Dockerfile` (`/data`) and `Dockerfile.rootless`
/// (`/var/lib/gitea`, `/etc/gitea`); Forgejo's the same until v14, its rootless image
/// only `/var/lib/gitea` from v15 (forgejo#11098, the legacy `/etc/gitea/app.ini` gone);
/// docs/FORGES.md §4: GitLab's `VOLUME ["/etc/gitlab", "/var/opt/gitlab",
/// "/var/log/gitlab"]`; §6: Gogs `VOLUME ["/data", "/backup"]`; §5: Drone `VOLUME
/// /data`. The Woodpecker server and agent images declare no volume (§3), so an
/// unmounted `/var/lib/woodpecker` or `/etc/woodpecker` is in the container's layer.
pub fn image_volumes(app: (Forge, Layout), version: Option<&Version>) -> &'static [&'static str] {
    match app {
        (_, Layout::Native) => &[],
        (Forge::Forgejo, Layout::DockerRootless)
            if version.and_then(|v| v.at_least(&[15])) == Some(true) =>
        {
            &["/var/lib/gitea"]
        }
        (Forge::Gitea | Forge::Forgejo, Layout::DockerRootless) => {
            &["/var/lib/gitea", "/etc/gitea"]
        }
        (Forge::Gogs, _) => &["/data", "/backup"],
        (Forge::Gitea | Forge::Forgejo | Forge::Drone, _) => &["/data"],
        (Forge::Gitlab, _) => &["/etc/gitlab", "/var/opt/gitlab", "/var/log/gitlab"],
        (Forge::Woodpecker | Forge::WoodpeckerAgent, _) => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080706050403020100f";

    #[test]
    fn parse() {
        let r = ImageRef::parse(&format!(
            "localhost:5000/gitea/gitea:1.23-rootless@{DIGEST}"
        ))
        .unwrap();
        assert_eq!(r.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(r.path, "gitea/gitea");
        assert_eq!(r.tag.as_deref(), Some("1.23-rootless"));
        assert_eq!(r.digest.as_deref(), Some(DIGEST));
        assert_eq!(r.version().unwrap().to_string(), "1.23");
        let r = ImageRef::parse(&format!("gitea/gitea@{DIGEST}")).unwrap();
        assert_eq!((r.version(), r.registry, r.tag), (None, None, None));
        let r = ImageRef::parse("[::1]:5000/forgejo/forgejo:11").unwrap();
        assert_eq!(r.registry.as_deref(), Some("[::1]:5000"));
        let r = ImageRef::parse("Registry/gitea/gitea").unwrap();
        assert_eq!(
            (r.registry.as_deref(), r.path.as_str()),
            (Some("registry"), "gitea/gitea")
        );
        assert!(ImageRef::parse("my_registry__x/a-b--c.d/e").is_ok());
    }

    #[test]
    fn references_docker_refuses_name_no_image() {
        // The Gitea docs' placeholder, copied as is: not `gitea/gitea` with a digest.
        for bad in [
            "gitea/gitea:@version@-rootless",
            "gitea/gitea:",
            "gitea/gitea@sha256:abc",
            "gitea/gitea@md5:0123456789abcdef0123456789abcdef",
            "Gitea/Gitea:1.23",
            "gitea//gitea",
            "gitea/gitea:1.23:rootless",
            "gitea/-gitea",
            "gitea/gitea:-x",
            "bad_host:5000/gitea/gitea",
            "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080706050403020100f",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
            assert_eq!(app_of_image(bad), None, "{bad}");
            assert!(
                reference_problem(bad)
                    .unwrap()
                    .contains("docker refuses it"),
                "{bad}"
            );
        }
        assert_eq!(reference_problem(""), None);
        assert_eq!(reference_problem("gitea/gitea:1.23-rootless"), None);
    }

    #[test]
    fn apps() {
        use Forge::*;
        use Layout::*;
        let cases = [
            ("gitea/gitea:1.23-rootless", Some((Gitea, DockerRootless))),
            ("gitea/gitea:1.22", Some((Gitea, Docker))),
            ("gitea/gitea", Some((Gitea, Docker))),
            (
                "docker.io/gitea/gitea:latest-rootless",
                Some((Gitea, DockerRootless)),
            ),
            (
                "docker.gitea.com/gitea:1.24-rootless",
                Some((Gitea, DockerRootless)),
            ),
            ("docker.gitea.com/gitea:1.24", Some((Gitea, Docker))),
            (
                "codeberg.org/forgejo/forgejo:11-rootless",
                Some((Forgejo, DockerRootless)),
            ),
            (
                "data.forgejo.org/forgejo/forgejo:11",
                Some((Forgejo, Docker)),
            ),
            ("forgejo/forgejo:10.0.1", Some((Forgejo, Docker))),
            (
                "woodpeckerci/woodpecker-server:v3",
                Some((Woodpecker, Docker)),
            ),
            (
                "quay.io/woodpeckerci/woodpecker-agent:v3@sha256:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080706050403020100f",
                Some((WoodpeckerAgent, Docker)),
            ),
            ("gitlab/gitlab-ee:17.9.1-ee.0", Some((Gitlab, Docker))),
            ("gitlab/gitlab-ce", Some((Gitlab, Docker))),
            ("gogs/gogs:0.13", Some((Gogs, Docker))),
            ("drone/drone:2", Some((Drone, Docker))),
            ("postgres:16", None),
            ("gitea", None),
            ("example/gitea-like:1", None),
            ("drone/drone-runner-docker:1", None),
        ];
        for (image, want) in cases {
            assert_eq!(app_of_image(image), want, "{image}");
        }
    }

    #[test]
    fn volumes() {
        let v = |tag: &str| Version::from_tag(tag);
        assert_eq!(
            image_volumes((Forge::Gitea, Layout::DockerRootless), v("1.24").as_ref()),
            ["/var/lib/gitea", "/etc/gitea"]
        );
        assert_eq!(
            image_volumes((Forge::Forgejo, Layout::Docker), None),
            ["/data"]
        );
        // Forgejo's rootless image dropped /etc/gitea in v15; a tag that does not say
        // keeps both (an older image may still use it).
        for (tag, want) in [
            ("14", &["/var/lib/gitea", "/etc/gitea"][..]),
            ("15", &["/var/lib/gitea"][..]),
            ("latest", &["/var/lib/gitea", "/etc/gitea"][..]),
        ] {
            assert_eq!(
                image_volumes((Forge::Forgejo, Layout::DockerRootless), v(tag).as_ref()),
                want,
                "{tag}"
            );
        }
        assert_eq!(
            image_volumes((Forge::Gogs, Layout::Docker), None),
            ["/data", "/backup"]
        );
        assert!(image_volumes((Forge::Woodpecker, Layout::Docker), None).is_empty());
    }
}
