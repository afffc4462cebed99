//! Which forge an image runs, and which folders the image declares as `VOLUME`.

use crate::profile::{Forge, Layout};

/// An image reference split into its parts: `[registry/]path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: Option<String>,
    /// The repository path without the registry, lowercased: `gitea/gitea`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(image: &str) -> ImageRef {
        let image = image.trim();
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (image, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        let mut parts: Vec<&str> = name.split('/').collect();
        let registry = if parts.len() > 1
            && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
        {
            Some(parts.remove(0).to_ascii_lowercase())
        } else {
            None
        };
        ImageRef {
            registry,
            path: parts.join("/").to_ascii_lowercase(),
            tag,
            digest,
        }
    }

    /// The path ends with these components (so registry mirrors and proxy-cache prefixes
    /// such as `harbor.example/dockerhub/gitea/gitea` still match).
    fn ends_with(&self, tail: &[&str]) -> bool {
        let parts: Vec<&str> = self.path.split('/').collect();
        parts.len() >= tail.len() && parts[parts.len() - tail.len()..] == *tail
    }
}

/// The forge an image runs and its layout, from the image name alone.
///
/// Gitea: `gitea/gitea` on any registry, and `docker.gitea.com/gitea`. Forgejo:
/// `forgejo/forgejo` (`codeberg.org/…`, `data.forgejo.org/…`) and
/// `forgejo-experimental/forgejo`. For both a tag ending in `rootless` means
/// [`Layout::DockerRootless`]. An image given by digest only says nothing about
/// rootless; the caller may look at the mounts (see `compose::load`).
pub fn app_of_image(image: &str) -> Option<(Forge, Layout)> {
    let r = ImageRef::parse(image);
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
/// layer (lost whenever the container is recreated).
///
/// Sources: Gitea `Dockerfile` (`/data`) and `Dockerfile.rootless`
/// (`/var/lib/gitea`, `/etc/gitea`); Forgejo's images use the same (FORGES.md §2);
/// GitLab's `VOLUME ["/etc/gitlab", "/var/opt/gitlab", "/var/log/gitlab"]`; Gogs
/// `VOLUME ["/data"]`; Drone `VOLUME /data` (FORGES.md §5). The Woodpecker server and
/// agent images declare no volume (`docker/Dockerfile.{server,agent}.multiarch*`), so
/// an unmounted `/var/lib/woodpecker` or `/etc/woodpecker` is in the container's layer.
pub fn image_volumes(app: (Forge, Layout)) -> &'static [&'static str] {
    match app {
        (_, Layout::Native) => &[],
        (Forge::Gitea | Forge::Forgejo, Layout::DockerRootless) => {
            &["/var/lib/gitea", "/etc/gitea"]
        }
        (Forge::Gitea | Forge::Forgejo | Forge::Gogs | Forge::Drone, _) => &["/data"],
        (Forge::Gitlab, _) => &["/etc/gitlab", "/var/opt/gitlab", "/var/log/gitlab"],
        (Forge::Woodpecker | Forge::WoodpeckerAgent, _) => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let r = ImageRef::parse("localhost:5000/gitea/gitea:1.23-rootless@sha256:abc");
        assert_eq!(r.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(r.path, "gitea/gitea");
        assert_eq!(r.tag.as_deref(), Some("1.23-rootless"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        let r = ImageRef::parse("gitea/gitea@sha256:abc");
        assert_eq!((r.registry, r.tag), (None, None));
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
                "quay.io/woodpeckerci/woodpecker-agent:v3@sha256:0f",
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
        assert_eq!(
            image_volumes((Forge::Gitea, Layout::DockerRootless)),
            ["/var/lib/gitea", "/etc/gitea"]
        );
        assert_eq!(image_volumes((Forge::Forgejo, Layout::Docker)), ["/data"]);
        assert!(image_volumes((Forge::Woodpecker, Layout::Docker)).is_empty());
    }
}
