//! Collection: from the paths a user names to the list of entries an archive will hold.
//!
//! This is the first stage of a backup and the only one that looks at the live tree.
//! It walks each source WITHOUT following symlinks (a link is stored as a link; a
//! symlinked source root is stored as a link too and reported), records what a restore
//! needs to put each entry back (type, mode, uid, gid, user and group names, mtime),
//! skips FIFOs, sockets and devices (never opening them, so a FIFO cannot block us), and
//! audits permissions on the way, producing [`Finding`]s. The content is read once,
//! through one descriptor, by the archive writer; here only metadata, and the first
//! bytes of a file others may read, to tell a secret from public text ([`secrecy`]).

pub mod links;
pub mod secrecy;
pub mod sqlite;

use crate::archive::manifest::{Entry, Kind, Ownership, Role, Source};
use crate::error::{Error, Result};
use crate::findings::{Code, Finding, Severity};
use crate::owners::NameCache;
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::{BTreeSet, HashMap};
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// One source as requested.
#[derive(Debug, Clone)]
pub struct SourceRequest {
    pub given: String,
    pub profile: Option<String>,
    pub ownership: Ownership,
    /// What the profile says it is ("OAuth2 JWT signing key").
    pub what: Option<String>,
    /// The path inside the container, for sources found through a compose file.
    pub container_path: Option<String>,
    /// How symlinks in the folders on its way are treated.
    pub way: Way,
}

/// How symlinks in the folders on a source's way are treated ([`links`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Way {
    /// Followed: a PATH the user named (the user chose the path; documented).
    #[default]
    Followed,
    /// What a profile derived: followed only where nobody but root could have made
    /// them, and never below `confined`, the host folder of the container mount the
    /// item is on.
    Guarded { confined: Option<PathBuf> },
}

impl SourceRequest {
    /// A path the user named.
    pub fn path(given: String, ownership: Ownership) -> Self {
        SourceRequest {
            given,
            profile: None,
            ownership,
            what: None,
            container_path: None,
            way: Way::Followed,
        }
    }
}

/// What a file looked like when it was walked; the writer compares the descriptor it
/// reads through against this to notice a file swapped or changed under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatSnapshot {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

impl StatSnapshot {
    pub fn of(m: &Metadata) -> Self {
        StatSnapshot {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Collected {
    pub entry: Entry,
    pub stat: StatSnapshot,
    /// Where the content is read from when it is not the live file: a consistent
    /// snapshot of an SQLite database (open, already unlinked).
    pub content: Option<Arc<File>>,
}

#[derive(Debug, Default)]
pub struct Collection {
    pub sources: Vec<Source>,
    /// Sorted by path, so every directory precedes what it contains.
    pub items: Vec<Collected>,
    pub findings: Vec<Finding>,
}

impl Collection {
    pub fn count(&self, kind: Kind) -> usize {
        self.items.iter().filter(|c| c.entry.kind == kind).count()
    }

    pub fn content_bytes(&self) -> u64 {
        self.items.iter().map(|c| c.entry.size).sum()
    }
}

#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Globs matched against the absolute path and against the file name.
    pub exclude: Vec<String>,
    /// SQLite databases (absolute paths) to copy with SQLite's online backup rather than
    /// byte by byte; their `-wal`/`-shm`/`-journal` companions are left out.
    pub sqlite: BTreeSet<PathBuf>,
    /// Take the snapshots (a real backup); off for dry runs and `check`, which write nothing.
    pub snapshot: bool,
    /// What the profiles keep, and the modes they expect, for judging permissions.
    pub secrets: secrecy::Secrets,
}

/// Opens a walked file for reading through ONE descriptor: `O_NOFOLLOW` (a symlink
/// swapped in since the walk fails with ELOOP), `O_NONBLOCK` (a FIFO swapped in cannot
/// block us), then `fstat` must show the very file the walk saw. `Ok(None)` when the
/// name leads elsewhere now. The writer reads contents this way, and [`secrecy`] the
/// first bytes of a file.
pub fn open_as_walked(path: &Path, seen: &StatSnapshot) -> std::io::Result<Option<File>> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() || StatSnapshot::of(&meta) != *seen {
        return Ok(None);
    }
    Ok(Some(file))
}

pub fn build_excludes(globs: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(Glob::new(g).map_err(|e| {
            Error::usage(format!("--exclude {g:?} is not a valid glob: {e}"))
                .hint("quote the pattern, e.g. --exclude '*.log'")
        })?);
    }
    b.build()
        .map_err(|e| Error::usage(format!("invalid --exclude patterns: {e}")))
}

/// Walks every source and returns the entries and findings.
pub fn collect(requests: &[SourceRequest], opts: &Options) -> Result<Collection> {
    if requests.is_empty() {
        return Err(Error::usage("nothing to back up: no PATH given").hint(
            "name the files or folders to archive, e.g. forgekeep backup /var/lib/gitea/jwt ...",
        ));
    }
    let excludes = build_excludes(&opts.exclude)?;
    let mut c = Collector {
        names: NameCache::default(),
        excludes,
        out: Collection::default(),
        seen: HashMap::new(),
        dirs: HashMap::new(),
        reported: BTreeSet::new(),
        is_root: nix::unistd::geteuid().is_root(),
        sqlite: opts.sqlite.clone(),
        snapshot: opts.snapshot,
        secrets: opts.secrets.clone(),
    };
    for req in requests {
        if c.refuses_the_way_to(req) {
            continue;
        }
        // Entries refer to their source by its index in the manifest's sources.
        let index = c.out.sources.len();
        let path = resolve_source(&req.given)?;
        let path_str = utf8(&path).ok_or_else(|| {
            Error::usage(format!("{} is not valid UTF-8", path.display()))
                .hint("forgekeep records paths in a JSON manifest; rename the folder")
        })?;
        if path == Path::new("/") || path.starts_with("/forgekeep") {
            return Err(Error::usage(format!("cannot archive {}", path.display())).hint(
                "name the secret files and folders themselves; / and /forgekeep (the archive's own members) cannot be sources",
            ));
        }
        c.out.sources.push(Source {
            given: req.given.clone(),
            path: path_str.to_string(),
            profile: req.profile.clone(),
            ownership: req.ownership,
            what: req.what.clone(),
            container_path: req.container_path.clone(),
        });
        c.ancestors(&path, index)?;
        c.walk(&path, index)?;
    }
    c.out.items.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok(c.out)
}

/// Absolute path of a source with its parent directories resolved, but NOT its last
/// component: a source that is itself a symlink must be stored as a link, not followed.
pub fn resolve_source(given: &str) -> Result<PathBuf> {
    // "link/" would make the OS follow the link; the source is the link itself.
    let trimmed = given.trim_end_matches('/');
    let p = Path::new(if trimmed.is_empty() { "/" } else { trimmed });
    let abs = std::path::absolute(p).map_err(|e| Error::io("cannot resolve", p, &e))?;
    let meta = std::fs::symlink_metadata(&abs).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::runtime(format!("source {given} does not exist"))
                .hint("check the path, or leave it out of the sources")
        } else {
            Error::io("cannot read source", &abs, &e)
        }
    })?;
    if !meta.file_type().is_symlink() {
        return abs
            .canonicalize()
            .map_err(|e| Error::io("cannot resolve", &abs, &e));
    }
    // Normalise `.`/`..` lexically in the last component, then resolve only the parent.
    let name = abs
        .components()
        .next_back()
        .and_then(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .ok_or_else(|| Error::usage(format!("cannot archive {given}: name the link itself")))?;
    let parent = abs.parent().unwrap_or(Path::new("/"));
    let parent = parent
        .canonicalize()
        .map_err(|e| Error::io("cannot resolve", parent, &e))?;
    Ok(parent.join(name))
}

fn utf8(p: &Path) -> Option<&str> {
    p.to_str()
}

struct Collector {
    names: NameCache,
    excludes: GlobSet,
    out: Collection,
    /// Path → index in `out.items`.
    seen: HashMap<PathBuf, usize>,
    /// mode and uid of every directory met (sources' insides and ancestors), for the
    /// parent checks. Looked up once per file and never iterated: hashed, because a
    /// `BTreeMap` compares `Path`s component by component at every step of its search.
    dirs: HashMap<PathBuf, (u32, u32)>,
    reported: BTreeSet<(&'static str, String)>,
    is_root: bool,
    sqlite: BTreeSet<PathBuf>,
    snapshot: bool,
    secrets: secrecy::Secrets,
}

impl Collector {
    fn finding(
        &mut self,
        code: Code,
        severity: Severity,
        path: &Path,
        message: String,
        fix: String,
    ) {
        let p = path.display().to_string();
        if self.reported.insert((code.as_str(), p.clone())) {
            self.out.findings.push(Finding {
                code,
                severity,
                path: p,
                message,
                fix,
            });
        }
    }

    /// Whether a derived source has an untrusted link on its way ([`links`]), which it
    /// reports. The profile left out such an item; one made since is refused here,
    /// before anything resolves (follows) the path.
    fn refuses_the_way_to(&mut self, req: &SourceRequest) -> bool {
        let Way::Guarded { confined } = &req.way else {
            return false;
        };
        let path = Path::new(&req.given);
        let Some(link) = links::untrusted_link(path, confined.as_deref()) else {
            return false;
        };
        let what = req.what.as_deref().unwrap_or("a profile's item");
        self.finding(
            Code::UntrustedSymlink,
            Severity::Error,
            path,
            link.message(what, path),
            link.fix(),
        );
        true
    }

    fn push(
        &mut self,
        path: &Path,
        meta: &Metadata,
        kind: Kind,
        role: Role,
        source: usize,
        target: Option<String>,
    ) {
        if let Some(&i) = self.seen.get(path) {
            // Overlapping sources: a folder first met above one source and then walked as
            // (part of) another is content, restored in full.
            let e = &mut self.out.items[i].entry;
            if role == Role::Content && e.role == Role::Ancestor {
                e.role = Role::Content;
                e.source = source;
            }
            return;
        }
        self.seen.insert(path.to_path_buf(), self.out.items.len());
        let entry = Entry {
            path: path.to_str().expect("checked utf-8").to_string(),
            kind,
            role,
            source,
            size: if kind == Kind::File { meta.size() } else { 0 },
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            user: self.names.user(meta.uid()),
            group: self.names.group(meta.gid()),
            mtime: meta.mtime(),
            target,
            sha256: None,
        };
        self.out.items.push(Collected {
            entry,
            stat: StatSnapshot::of(meta),
            content: None,
        });
    }

    /// The directories above a source, so their owners and modes come back on a new
    /// host. They are checked too: a writable ancestor lets others swap the secret.
    fn ancestors(&mut self, source: &Path, index: usize) -> Result<()> {
        let mut chain: Vec<&Path> = source.ancestors().skip(1).collect();
        chain.pop(); // "/" itself is never a member
        for dir in chain.into_iter().rev() {
            let meta =
                std::fs::symlink_metadata(dir).map_err(|e| Error::io("cannot read", dir, &e))?;
            self.note_dir(dir, &meta);
            self.check_dir_writable(dir, &meta);
            self.push(dir, &meta, Kind::Dir, Role::Ancestor, index, None);
        }
        Ok(())
    }

    fn excluded(&self, path: &Path) -> bool {
        // forgekeep's own temp files (an archive being written into a source folder, a
        // restore in progress) are transient and never part of a backup.
        if path.file_name().is_some_and(|n| {
            n.as_encoded_bytes()
                .starts_with(crate::fsx::TEMP_PREFIX.as_bytes())
        }) {
            return true;
        }
        !self.excludes.is_empty()
            && (self.excludes.is_match(path)
                || path.file_name().is_some_and(|n| self.excludes.is_match(n)))
    }

    fn walk(&mut self, root: &Path, index: usize) -> Result<()> {
        let mut it = walkdir::WalkDir::new(root)
            .follow_links(false)
            .follow_root_links(false)
            .sort_by_file_name()
            .into_iter();
        while let Some(next) = it.next() {
            let ent = match next {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().unwrap_or(root).to_path_buf();
                    let why = e
                        .io_error()
                        .map(crate::error::plain_io)
                        .unwrap_or_else(|| e.to_string());
                    self.finding(
                        Code::Unreadable,
                        Severity::Error,
                        &path,
                        format!("cannot be read ({why})"),
                        "run forgekeep as a user that can read it (often root)".into(),
                    );
                    continue;
                }
            };
            let path = ent.path().to_path_buf();
            if ent.depth() > 0 && self.excluded(&path) {
                if ent.file_type().is_dir() {
                    it.skip_current_dir();
                }
                continue;
            }
            if path.to_str().is_none() {
                self.finding(
                    Code::NameNotUtf8,
                    Severity::Warning,
                    &path,
                    "name is not valid UTF-8 and is not archived".into(),
                    "rename it to a UTF-8 name".into(),
                );
                if ent.file_type().is_dir() {
                    it.skip_current_dir();
                }
                continue;
            }
            let meta = match ent.metadata() {
                Ok(m) => m,
                Err(e) => {
                    self.finding(
                        Code::Unreadable,
                        Severity::Error,
                        &path,
                        format!("cannot be examined ({e})"),
                        "run forgekeep as a user that can read it".into(),
                    );
                    continue;
                }
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                self.symlink(root, &path, &meta, index, ent.depth() == 0);
            } else if ft.is_dir() {
                self.note_dir(&path, &meta);
                self.check_dir_writable(&path, &meta);
                self.check_readable(&path, Kind::Dir);
                self.push(&path, &meta, Kind::Dir, Role::Content, index, None);
            } else if ft.is_file() {
                if sqlite::is_companion(&path, &self.sqlite) {
                    continue; // the database's snapshot holds every committed page
                }
                self.check_file(&path, &meta, index);
                self.push(&path, &meta, Kind::File, Role::Content, index, None);
                if self.snapshot && self.sqlite.contains(&path) {
                    self.use_snapshot(&path)?;
                }
            } else {
                let what = if ft.is_fifo() {
                    "a FIFO"
                } else if ft.is_socket() {
                    "a socket"
                } else {
                    "a device"
                };
                self.finding(
                    Code::SpecialSkipped,
                    Severity::Warning,
                    &path,
                    format!("is {what}; only files, folders and symlinks are archived"),
                    format!(
                        "exclude it (--exclude {:?}) or move it out of the source",
                        path.display().to_string()
                    ),
                );
            }
        }
        Ok(())
    }

    /// Replaces the content of the database just pushed by a consistent copy: the
    /// entry keeps the live file's owner, mode and mtime, and takes the copy's size.
    fn use_snapshot(&mut self, path: &Path) -> Result<()> {
        let Some(&i) = self.seen.get(path) else {
            return Ok(());
        };
        if self.out.items[i].content.is_some() {
            return Ok(());
        }
        let (file, meta) = sqlite::snapshot(path)?;
        let item = &mut self.out.items[i];
        item.entry.size = meta.size();
        item.stat = StatSnapshot::of(&meta);
        item.content = Some(Arc::new(file));
        Ok(())
    }

    fn symlink(&mut self, root: &Path, path: &Path, meta: &Metadata, index: usize, is_root: bool) {
        let target = match std::fs::read_link(path) {
            Ok(t) => t,
            Err(e) => {
                self.finding(
                    Code::Unreadable,
                    Severity::Error,
                    path,
                    format!("link cannot be read ({e})"),
                    "run forgekeep as a user that can read it".into(),
                );
                return;
            }
        };
        let Some(target_str) = target.to_str().map(str::to_string) else {
            self.finding(
                Code::NameNotUtf8,
                Severity::Warning,
                path,
                "link target is not valid UTF-8; the link is not archived".into(),
                "point the link at a UTF-8 path".into(),
            );
            return;
        };
        if is_root {
            self.finding(
                Code::SourceIsSymlink,
                Severity::Warning,
                path,
                format!("is a symbolic link to {target_str}; the link is archived, not what it points to"),
                format!("name the target instead: {}", path.parent().unwrap_or(root).join(&target).display()),
            );
        } else if !stays_inside(root, path, &target) {
            self.finding(
                Code::SymlinkEscapes,
                Severity::Warning,
                path,
                format!(
                    "points outside {} (to {target_str}); the target is not archived",
                    root.display()
                ),
                "add the target as a source too, or replace the link by the file".into(),
            );
        }
        self.push(
            path,
            meta,
            Kind::Symlink,
            Role::Content,
            index,
            Some(target_str),
        );
    }

    fn note_dir(&mut self, path: &Path, meta: &Metadata) {
        self.dirs
            .insert(path.to_path_buf(), (meta.mode(), meta.uid()));
    }

    fn check_dir_writable(&mut self, dir: &Path, meta: &Metadata) {
        let mode = meta.mode();
        // A sticky directory (like /tmp) lets others create files but not replace ours.
        if let (Some(who), 0) = (crate::findings::who_may_write(mode), mode & 0o1000) {
            self.finding(
                Code::ParentWritable,
                Severity::Warning,
                dir,
                format!("is writable by {who}, who can replace the secrets in it"),
                format!("chmod go-w {}", dir.display()),
            );
        }
    }

    fn check_readable(&mut self, path: &Path, kind: Kind) {
        use nix::unistd::{access, AccessFlags};
        // Root reads everything on local file systems; where it cannot (root-squashed NFS,
        // FUSE), the writer's open fails and the backup stops with that error. Skipping
        // the check saves a syscall per file on large trees.
        if self.is_root {
            return;
        }
        let want = if kind == Kind::Dir {
            AccessFlags::R_OK | AccessFlags::X_OK
        } else {
            AccessFlags::R_OK
        };
        if access(path, want).is_err() {
            self.finding(
                Code::Unreadable,
                Severity::Error,
                path,
                "cannot be read by this user".into(),
                "run forgekeep as a user that can read it (often root or the forge's user)".into(),
            );
        }
    }

    fn check_file(&mut self, path: &Path, meta: &Metadata, source: usize) {
        self.check_readable(path, Kind::File);
        self.check_mode(path, meta);
        let numeric = self.out.sources[source].ownership == Ownership::Numeric;
        self.check_folder_owner(path, meta, numeric);
    }

    /// At most ONE finding for a file's permissions, whose fix ends them all (following
    /// `chmod o-rwx` must not turn up `group-readable` next). Read and write bits of
    /// group and others on a file that holds a secret ([`secrecy::judge`]: only looked at
    /// when others may read it); write bits only on public text (`ssh_config` stays
    /// readable). A file whose widest mode its profile states (app.ini 0640) is left to
    /// the profile's `mode-too-open`, never contradicted here.
    fn check_mode(&mut self, path: &Path, meta: &Metadata) {
        let mode = meta.mode() & 0o7777;
        let open = mode & 0o066;
        if open == 0 || self.secrets.expected_mode.contains_key(path) {
            return;
        }
        let holds = if open & 0o044 != 0 {
            secrecy::judge(path, &StatSnapshot::of(meta), &self.secrets)
        } else {
            secrecy::Holds::Public
        };
        let (code, target, why) = match &holds {
            secrecy::Holds::Secret(why) if open & 0o004 != 0 => {
                (Code::WorldReadable, mode & !0o077, format!("; it {why}"))
            }
            secrecy::Holds::Secret(why) if open & 0o040 != 0 => {
                (Code::GroupReadable, mode & !0o077, format!("; it {why}"))
            }
            secrecy::Holds::Secret(_) => (Code::Writable, mode & !0o077, String::new()),
            secrecy::Holds::Public if open & 0o022 != 0 => {
                (Code::Writable, mode & !0o022, String::new())
            }
            secrecy::Holds::Public => return,
        };
        let mut who = Vec::new();
        if let (secrecy::Holds::Secret(_), Some(readers)) =
            (&holds, crate::findings::who_may_read(open))
        {
            who.push(format!("readable by {readers}"));
        }
        if let Some(writers) = crate::findings::who_may_write(open) {
            who.push(format!("writable by {writers}"));
        }
        let fix = if code == Code::GroupReadable {
            format!(
                "chmod {target:o} {} (if its forge reads it through its group, back it up with the forge's profile, which knows the mode it needs)",
                path.display()
            )
        } else {
            format!("chmod {target:o} {}", path.display())
        };
        self.finding(
            code,
            Severity::Warning,
            path,
            format!("is {} (mode {mode:04o}){why}", who.join(" and ")),
            fix,
        );
    }

    /// A folder owned by another (non-root) user lets that user replace the file. For a
    /// source kept by number (a container's volume) the folder's owner is a number too:
    /// the name this host gives that uid is not the container's user.
    fn check_folder_owner(&mut self, path: &Path, meta: &Metadata, numeric: bool) {
        let Some(parent) = path.parent() else {
            return;
        };
        let Some(&(_, dir_uid)) = self.dirs.get(parent) else {
            return;
        };
        if dir_uid == meta.uid() {
            return;
        }
        let owner = match self.names.user(dir_uid) {
            Some(name) if !numeric => name,
            _ => format!("uid {dir_uid}"),
        };
        // A folder owned by another (non-root) user lets that user replace the secret:
        // a warning. Under a root-owned folder it is only worth knowing (e.g. a
        // git-owned app.ini in root's /etc/gitea).
        let (severity, message) = if dir_uid != 0 {
            (
                Severity::Warning,
                format!(
                    "belongs to uid {} but its folder belongs to {owner}, who can replace it",
                    meta.uid()
                ),
            )
        } else {
            (
                Severity::Info,
                format!(
                    "belongs to uid {} but its folder belongs to root",
                    meta.uid()
                ),
            )
        };
        self.finding(
            Code::OwnerMismatch,
            severity,
            path,
            message,
            format!(
                "chown {} {} (or the folder to the file's owner)",
                meta.uid(),
                parent.display()
            ),
        );
    }
}

/// Does a symlink at `link` with `target` resolve (lexically) inside `root`?
fn stays_inside(root: &Path, link: &Path, target: &Path) -> bool {
    let base = if target.is_absolute() {
        PathBuf::from("/")
    } else {
        link.parent().unwrap_or(root).to_path_buf()
    };
    let mut out = base;
    for c in target.components() {
        match c {
            Component::RootDir => out = PathBuf::from("/"),
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_made_after_the_profiles_looked_is_refused_before_the_walk() {
        // The profiles leave out an item with an untrusted link on its way; collection
        // checks again right before it resolves and walks the item: a link made in
        // between is refused, and the other sources keep their manifest indexes.
        let t = tempfile::TempDir::new().unwrap();
        let vol = t.path().join("vol");
        std::fs::create_dir_all(vol.join("config")).unwrap();
        std::fs::write(vol.join("config/app.ini"), "x").unwrap();
        let host = t.path().join("host");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("private.pem"), "the host's").unwrap();
        std::os::unix::fs::symlink(&host, vol.join("jwt")).unwrap();
        let guarded = |p: &Path| SourceRequest {
            way: Way::Guarded {
                confined: Some(vol.clone()),
            },
            what: Some("OAuth2 JWT signing key".into()),
            ..SourceRequest::path(p.display().to_string(), Ownership::Numeric)
        };
        let c = collect(
            &[
                guarded(&vol.join("jwt/private.pem")),
                guarded(&vol.join("config/app.ini")),
            ],
            &Options::default(),
        )
        .unwrap();
        let refused: Vec<_> = c
            .findings
            .iter()
            .filter(|f| f.code == Code::UntrustedSymlink)
            .collect();
        assert_eq!(refused.len(), 1, "{:?}", c.findings);
        assert_eq!(refused[0].severity, Severity::Error);
        assert_eq!(c.sources.len(), 1);
        assert!(c.sources[0].path.ends_with("config/app.ini"));
        assert!(c.items.iter().all(|i| !i.entry.path.contains("host")));
        let ini = c
            .items
            .iter()
            .find(|i| i.entry.path.ends_with("app.ini"))
            .unwrap();
        assert_eq!(ini.entry.source, 0);
        // The same path named by the user is resolved as written (documented).
        let named = collect(
            &[SourceRequest::path(
                vol.join("jwt/private.pem").display().to_string(),
                Ownership::Name,
            )],
            &Options::default(),
        )
        .unwrap();
        assert!(named
            .items
            .iter()
            .any(|i| i.entry.path.ends_with("host/private.pem")));
    }

    #[test]
    fn symlink_escape_is_lexical() {
        let root = Path::new("/srv/g");
        assert!(stays_inside(
            root,
            Path::new("/srv/g/a/l"),
            Path::new("../b")
        ));
        assert!(!stays_inside(
            root,
            Path::new("/srv/g/l"),
            Path::new("../../etc/passwd")
        ));
        assert!(!stays_inside(
            root,
            Path::new("/srv/g/l"),
            Path::new("/etc/passwd")
        ));
        assert!(stays_inside(
            root,
            Path::new("/srv/g/l"),
            Path::new("/srv/g/x")
        ));
    }
}
