//! Symlinks on the way to what a profile keeps: which of them may be followed.
//!
//! A PATH the user names is resolved as written: symlinks in its folders are followed
//! (the README documents it; the user chose the path). What a profile DERIVES is another
//! matter: it sits in folders the forge writes, and on a container's volume in folders
//! the container writes (as root inside, or as the forge's uid). Whoever can write a
//! folder can replace a subfolder by a symlink (`./gitea/data/jwt` → `/root`), and
//! forgekeep, root on the host, following it would archive a host file of their choosing
//! (and a restore of that archive would write there). So on the way to such an item a
//! symlink is followed only where nobody but root (or this user) could have made it:
//! never below a container's mount (its host folder: the container writes everything
//! there), and never in a folder another user owns or that group or others may write.
//! The administrator's own links (`/srv` → `/data/srv`, a folder on another disk linked
//! from a root-owned folder) keep working.
//!
//! The check is made where the item is found (the profile reports it and leaves the item
//! out) and again just before collection walks it (a link made in between is refused
//! too). Each file is then read through `O_NOFOLLOW` and must be the very file the walk
//! saw ([`super::open_as_walked`]). What this does not close: a folder swapped for a link
//! in the moment between that last check and the walk's own lookups, which go by name as
//! every walk of a live tree does; closing it needs the walk and the writer to open each
//! folder relative to its parent's descriptor.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// A symlink on the way to a path, which must not be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrustedLink {
    /// The link: a folder on the way, as the path names it.
    pub link: PathBuf,
    /// What it points to, for the message (never followed).
    pub target: PathBuf,
    /// Who could have made it: "the container (… is mounted into it)", "uid 1000 (git),
    /// who owns /var/lib/gitea", "every user (/srv/x is writable by every user)".
    pub who: String,
}

impl UntrustedLink {
    /// The finding's message, for the item `what` at `path`.
    pub fn message(&self, what: &str, path: &Path) -> String {
        format!(
            "{what} ({}) lies below {}, a symbolic link to {} that {} could have made: \
             following it could make root archive (and a restore write) any file of this \
             host, so it is not followed and the item is NOT archived",
            path.display(),
            self.link.display(),
            self.target.display(),
            self.who
        )
    }

    pub fn fix(&self) -> String {
        format!(
            "if nobody put it there on purpose, find out who did (ls -l {}); if you made it, \
             replace the link by the folder itself or by a bind mount (mount --bind, or a \
             volume of its own), or back up its target as a PATH",
            self.link.display()
        )
    }
}

/// The first folder on the way to `path` (its last component is not looked at: a
/// source that is itself a link is archived as the link) that is a symlink nobody but
/// root could be trusted to have made; `None` when every link on the way is root's.
/// `confined` is the host folder of the container mount the path is on: any link below
/// it is the container's. A path that does not exist (yet) has nothing to follow.
pub fn untrusted_link(path: &Path, confined: Option<&Path>) -> Option<UntrustedLink> {
    let me = nix::unistd::geteuid().as_raw();
    let components: Vec<Component> = path.components().collect();
    let folders = components.len().saturating_sub(1);
    let mut at = PathBuf::new();
    for c in components.into_iter().take(folders) {
        let parent = at.clone();
        at.push(c);
        if !matches!(c, Component::Normal(_)) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&at).ok()?;
        if !meta.file_type().is_symlink() {
            continue;
        }
        let who = match confined {
            Some(base) if at.starts_with(base) && at != base => Some(format!(
                "the container ({} is mounted into it and it writes there)",
                base.display()
            )),
            _ => writers_other_than_root(&parent, me),
        };
        if let Some(who) = who {
            let target = std::fs::read_link(&at).unwrap_or_default();
            return Some(UntrustedLink {
                link: at,
                target,
                who,
            });
        }
    }
    None
}

/// Who besides root (and `me`) may create or replace entries in `dir`, for messages.
fn writers_other_than_root(dir: &Path, me: u32) -> Option<String> {
    // The folder itself, as the kernel resolves it (links above it were judged already).
    let Ok(meta) = std::fs::metadata(dir) else {
        return Some(format!("whoever controls {}", dir.display()));
    };
    if meta.uid() != 0 && meta.uid() != me {
        let name = crate::owners::NameCache::default()
            .user(meta.uid())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        return Some(format!(
            "uid {}{name}, who owns {}",
            meta.uid(),
            dir.display()
        ));
    }
    // Even sticky: in /tmp anyone may create the link before the folder exists.
    crate::findings::who_may_write(meta.mode())
        .map(|who| format!("{who} ({} is writable by {who})", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn links_in_folders_only_root_writes_are_followed_others_and_confined_ones_not() {
        let t = tempfile::TempDir::new().unwrap();
        let base = t.path();
        std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(base.join("real/jwt")).unwrap();
        std::fs::create_dir_all(base.join("vol/data")).unwrap();
        symlink(base.join("real"), base.join("admin")).unwrap();
        symlink(base.join("real/jwt"), base.join("vol/data/jwt")).unwrap();
        let key = |p: &str| base.join(p).join("private.pem");

        // No link, or the link is the item itself: nothing to refuse.
        assert_eq!(untrusted_link(&key("real/jwt"), None), None);
        assert_eq!(untrusted_link(&base.join("vol/data/jwt"), None), None);
        // A link in a folder only root (we) can write: the admin's, followed.
        assert_eq!(untrusted_link(&key("admin/jwt"), None), None);
        // The same link below a container's mount: the container's.
        let vol = base.join("vol");
        let l = untrusted_link(&key("vol/data/jwt"), Some(&vol)).unwrap();
        assert_eq!(l.link, base.join("vol/data/jwt"));
        assert_eq!(l.target, base.join("real/jwt"));
        assert!(l.who.contains("the container"), "{}", l.who);
        // The mount's own folder being a link is judged like any other.
        assert_eq!(
            untrusted_link(&key("admin/jwt"), Some(&base.join("admin"))),
            None
        );
        // A link in a folder others may write.
        std::fs::set_permissions(
            base.join("vol/data"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let l = untrusted_link(&key("vol/data/jwt"), None).unwrap();
        assert!(l.who.contains("every user"), "{}", l.who);
        std::fs::set_permissions(
            base.join("vol/data"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_eq!(untrusted_link(&key("vol/data/jwt"), None), None);
        // A link in a folder another user owns (the forge's user natively).
        if nix::unistd::geteuid().is_root() {
            let data = base.join("vol/data");
            nix::unistd::chown(&data, Some(1000.into()), None).unwrap();
            let l = untrusted_link(&key("vol/data/jwt"), None).unwrap();
            assert!(l.who.starts_with("uid 1000"), "{}", l.who);
        }
        // A path that is not there has nothing to follow.
        assert_eq!(untrusted_link(&key("none/jwt"), Some(&vol)), None);
    }
}
