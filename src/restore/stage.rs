//! Staging: the streaming half of a restore.
//!
//! As each validated entry streams past, it is compared with what is at its destination
//! and, where something must change, written to a hidden `0600` temp file IN THE
//! DESTINATION FOLDER (so the final rename is atomic and the plaintext never lands
//! anywhere else), with its mtime; owner and mode follow at apply. Folders on the way are
//! opened with `O_NOFOLLOW` relative to their parent's descriptor, so a symlink planted
//! in the destination tree stops the restore instead of redirecting it.
//!
//! A folder that must be created is STAGED WHOLE: the first missing one on a path is made
//! `0700` under a hidden temp name beside its final name, and everything below it (files,
//! links, folders) under final names inside it, since nothing can be there before us;
//! apply renames that one folder into place (`RENAME_NOREPLACE`) instead of every file
//! in it (a 50,000-file restore into a new folder made 50,000 renames). Created folders
//! get their recorded owner and mode only at apply time. Until the reader reports the
//! archive complete and valid, all of this is provisional: [`Stager::abort`] removes
//! every temp file and created folder, and a killed run leaves only hidden temps that
//! the next run sweeps.

use super::live::Comparison;
use super::plan::{Action, Destinations, Plan, Step, Target};
use crate::archive::manifest::{Entry, Kind, Manifest, Role};
use crate::archive::reader::Visitor;
use crate::error::{Error, Result};
use crate::fsx::{DirFd, FlushBehind, Writeback};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// A temp file (or symlink) ready to be renamed over `name`.
pub struct Staged {
    pub index: usize,
    pub dir: Rc<DirFd>,
    pub temp: OsString,
    pub name: OsString,
    pub replace: bool,
    /// The temp already has its final mode (see [`settle_now`]): apply need not
    /// open it again.
    pub settled: bool,
    /// Written under its final name (`temp == name`) inside a folder staged whole:
    /// the folder's rename puts it in place, it has no rename of its own.
    pub in_place: bool,
}

/// A new folder staged whole: made under the hidden name `temp`, renamed to `name` at
/// apply.
pub struct StagedDir {
    pub parent: Rc<DirFd>,
    pub temp: OsString,
    pub name: OsString,
}

/// Where an entry goes.
struct Destination {
    /// Its folder (None in a dry run when it does not exist yet).
    parent: Option<Rc<DirFd>>,
    /// Its name in that folder.
    name: OsString,
    /// What is there now (lstat, never followed).
    existing: Option<FileStat>,
    /// When the folder is one this run created (the entry is then written under its
    /// final name): whether it is hidden (see `Stager::fresh`).
    fresh: Option<bool>,
}

/// A folder this run created (so that an abort can remove it again).
pub struct CreatedDir {
    pub parent: Rc<DirFd>,
    pub name: OsString,
    pub rel: PathBuf,
}

pub struct Stager {
    pub(super) dests: Destinations,
    pub(super) dry_run: bool,
    pub(super) force: bool,
    /// By manifest index: where it goes (None: not selected).
    pub(super) targets: Vec<Option<Target>>,
    /// By manifest index: the decision and why.
    pub(super) actions: Vec<Option<(Action, Option<String>)>>,
    pub(super) warnings: Vec<String>,
    /// Destination folders opened so far, by path relative to the root.
    pub(super) dirs: HashMap<PathBuf, Rc<DirFd>>,
    pub(super) created: Vec<CreatedDir>,
    /// Folders below the root that this run created: nothing was in them before, so an
    /// entry's name there needs no lookup and no temp name (anything that appeared since
    /// makes its `O_EXCL` creation fail, and the whole restore go back). The flag: hidden,
    /// i.e. it or a folder above it stays `0700` and ours until apply, so that nobody
    /// else can reach what is staged in it.
    fresh: HashMap<PathBuf, bool>,
    /// Components of the root folder that this run created.
    pub(super) created_root: Vec<PathBuf>,
    pub(super) staged: Vec<Staged>,
    pub(super) staged_dirs: Vec<StagedDir>,
    /// The manifest, shared with the reader (not copied: it is the largest thing a
    /// restore holds).
    pub(super) manifest: Option<Arc<Manifest>>,
    /// Folder targets by destination path relative to the root.
    pub(super) dir_targets: HashMap<PathBuf, usize>,
    /// How many of `staged` apply has renamed into place (to be swapped back on failure).
    pub(super) renamed: usize,
    /// How many of `staged_dirs` apply has renamed into place.
    pub(super) dirs_renamed: usize,
    /// Owner/mode changes apply has made to existing entries (to be taken back).
    pub(super) reverts: Vec<Revert>,
    /// The copy buffer, allocated once for all entries.
    buf: Vec<u8>,
    /// Small staged files start reaching the disk while staging goes on.
    flush_behind: FlushBehind,
    /// Root with every capability a restore relies on: it can give a hidden staged file
    /// its owner at once. Otherwise that waits for apply, after the check that says
    /// which capability is missing before anything changes (`owners_can_be_given`).
    owners_now: bool,
}

/// An owner/mode change to an existing entry that can be taken back.
pub enum Revert {
    /// Through a descriptor of the file or folder.
    Fd {
        fd: std::os::fd::OwnedFd,
        uid: u32,
        gid: u32,
        mode: u32,
    },
    /// A symlink (no descriptor of its own): its owner, by name in its folder.
    Link {
        dir: Rc<DirFd>,
        name: OsString,
        uid: u32,
        gid: u32,
    },
}

impl Revert {
    /// The current owner and mode of what `fd` is open on.
    pub fn of(fd: impl std::os::fd::AsFd) -> Option<Revert> {
        let st = nix::sys::stat::fstat(&fd).ok()?;
        Some(Revert::Fd {
            fd: fd.as_fd().try_clone_to_owned().ok()?,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
        })
    }

    /// The current owner of the link `name` in `dir`.
    pub fn of_link(dir: &Rc<DirFd>, name: &OsStr) -> Option<Revert> {
        let st = fstatat(&**dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
        Some(Revert::Link {
            dir: dir.clone(),
            name: name.to_owned(),
            uid: st.st_uid,
            gid: st.st_gid,
        })
    }

    fn undo(self) {
        match self {
            Revert::Fd { fd, uid, gid, mode } => {
                let _ =
                    nix::unistd::fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
                let _ = nix::sys::stat::fchmod(
                    &fd,
                    Mode::from_bits_truncate(mode as nix::libc::mode_t),
                );
            }
            Revert::Link {
                dir,
                name,
                uid,
                gid,
            } => {
                let _ = nix::unistd::fchownat(
                    &*dir,
                    name.as_os_str(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                );
            }
        }
    }
}

/// How an existing entry's owner and mode differ from what the restore would set, in
/// words for the plan (`None`: they do not). With `--to` only the mode counts.
fn meta_change(st: &FileStat, t: &Target, plain: bool, has_mode: bool) -> Option<String> {
    let mode = st.st_mode & 0o7777;
    let mode_differs = has_mode && mode != t.mode;
    let owner_differs = !plain && (st.st_uid != t.uid || st.st_gid != t.gid);
    (mode_differs || owner_differs).then(|| {
        format!(
            "owner/mode differ: {}:{} {:04o} here",
            st.st_uid, st.st_gid, mode
        )
    })
}

/// What happens to an entry, given what is at its destination now. ANY change to an
/// existing entry, of its content or of its owner and mode, is a conflict unless
/// `--force`: an archive must not be able to make `/etc/passwd` world-writable by
/// carrying its public content with another mode.
fn verdict(
    existing: Option<&FileStat>,
    same_content: bool,
    meta: Option<String>,
    force: bool,
) -> (Action, Option<String>) {
    match existing {
        None => (Action::Create, None),
        // Never replaced, not even with --force: a folder may hold anything.
        Some(st) if file_type(st) == SFlag::S_IFDIR => {
            (Action::Conflict, Some(FOLDER_IN_THE_WAY.into()))
        }
        Some(_) if same_content && meta.is_none() => (Action::Unchanged, None),
        Some(_) if same_content && force => (Action::FixMetadata, meta),
        Some(_) if same_content => (Action::Conflict, meta),
        Some(_) if force => (Action::Replace, None),
        Some(_) => (Action::Conflict, Some(CONTENT_DIFFERS.into())),
    }
}

/// Bytes copied from the archive at a time.
const COPY_BUF: usize = 1 << 16;

/// A staged file of at least this size starts its writeback when it is complete (see
/// [`Writeback`]); smaller ones are left to the one `syncfs` before the renames, which
/// writes them in bulk.
const WRITEBACK_AT_ONCE: u64 = 256 << 10;

/// Copies an entry's content from the archive into its temp file (if any) and compares
/// it with the live file as it goes, until the end, or until the verdict is in when
/// nothing is written (the reader drains and hashes the rest).
fn copy_and_compare(
    data: &mut dyn Read,
    temp: &mut Option<(OsString, Writeback)>,
    cmp: &mut Comparison,
    buf: &mut [u8],
    t: &Target,
) -> Result<()> {
    loop {
        let n = data.read(buf).map_err(|e| {
            Error::integrity(format!(
                "cannot read {} from the archive: {e}",
                t.dest.display()
            ))
        })?;
        if n == 0 {
            return Ok(());
        }
        if let Some((_, f)) = temp {
            f.write_all(&buf[..n])
                .map_err(|e| Error::io("cannot write", &t.dest, &e))?;
        }
        cmp.feed(&buf[..n]);
        if !cmp.same() && temp.is_none() {
            return Ok(());
        }
    }
}

/// Conflict reasons that `--force` resolves; any other is something in the way.
pub const CONTENT_DIFFERS: &str = "content differs";
/// A database is a service's live data: what `--force` would do to it is said in the
/// plan, before anyone passes it (issue 13: a whole-archive `--force` rolled
/// Woodpecker's database back).
const DATABASE_DIFFERS: &str = "content differs: an SQLite database holding other data than the backup's; \
     --force would replace its data with the backup's, keeping the current data only in the undo archive";
const FOLDER_IN_THE_WAY: &str = "a folder is in the way";

/// Can `--force` resolve a conflict with this reason?
pub fn force_resolves(reason: Option<&str>) -> bool {
    reason.is_some_and(|r| r.starts_with(CONTENT_DIFFERS) || r.starts_with("owner/mode differ"))
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

impl Stager {
    pub fn new(dests: Destinations, dry_run: bool, force: bool) -> Stager {
        Stager {
            dests,
            dry_run,
            force,
            targets: Vec::new(),
            actions: Vec::new(),
            warnings: Vec::new(),
            dirs: HashMap::new(),
            created: Vec::new(),
            fresh: Default::default(),
            created_root: Vec::new(),
            staged: Vec::new(),
            staged_dirs: Vec::new(),
            manifest: None,
            dir_targets: HashMap::new(),
            renamed: 0,
            dirs_renamed: 0,
            reverts: Vec::new(),
            buf: Vec::new(),
            flush_behind: FlushBehind::default(),
            owners_now: nix::unistd::geteuid().is_root()
                && crate::owners::missing_root_capabilities().is_empty(),
        }
    }

    /// Opens (creating unless dry-run) the destination folder `rel`, one component at a
    /// time, never following a symlink. `Ok(None)`: it does not exist (dry run).
    /// Iterative, not recursive: however deep the path, the stack does not grow.
    pub(super) fn dir(&mut self, rel: &Path) -> Result<Option<Rc<DirFd>>> {
        if let Some(d) = self.dirs.get(rel) {
            return Ok(Some(d.clone()));
        }
        // The nearest folder already open (or the root), and the ones below it to open.
        let mut missing: Vec<&Path> = Vec::new();
        let mut at = rel;
        let mut current = loop {
            if let Some(d) = self.dirs.get(at) {
                break d.clone();
            }
            if at.as_os_str().is_empty() {
                let Some(root) = self.open_root()? else {
                    return Ok(None);
                };
                let root = Rc::new(root);
                self.dirs.insert(PathBuf::new(), root.clone());
                break root;
            }
            missing.push(at);
            at = at.parent().unwrap_or(Path::new(""));
        };
        for sub in missing.into_iter().rev() {
            let Some(d) = self.open_child_dir(&current, sub)? else {
                return Ok(None);
            };
            let d = Rc::new(d);
            self.dirs.insert(sub.to_path_buf(), d.clone());
            current = d;
        }
        Ok(Some(current))
    }

    /// Opens (or, unless dry-run, creates) the folder `rel` in its already open
    /// `parent`.
    fn open_child_dir(&mut self, parent: &Rc<DirFd>, rel: &Path) -> Result<Option<DirFd>> {
        let name = rel.file_name().expect("normal relative path").to_owned();
        match parent.open_child(&name) {
            Ok(d) => {
                if !self.dry_run {
                    d.sweep_stale_temps();
                }
                Ok(Some(d))
            }
            Err(Errno::ENOENT) if self.dry_run => Ok(None),
            Err(Errno::ENOENT) => {
                // Inside a folder this run created, the final name; otherwise the folder
                // is staged whole under a temp name (see the module comment).
                let above = self.fresh.get(rel.parent().unwrap_or(Path::new(""))).copied();
                let whole = above.is_none();
                let made = match whole {
                    true => OsString::from(crate::fsx::temp_name()),
                    false => name.clone(),
                };
                let path = parent.path.join(&name);
                mkdirat(&**parent, made.as_os_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| Error::errno("cannot create folder", &path, e))?;
                self.created.push(CreatedDir {
                    parent: parent.clone(),
                    name: made.clone(),
                    rel: rel.to_path_buf(),
                });
                if whole {
                    self.staged_dirs.push(StagedDir {
                        parent: parent.clone(),
                        temp: made.clone(),
                        name,
                    });
                }
                let mut d = parent
                    .open_child(&made)
                    .map_err(|e| Error::errno("cannot open folder", &path, e))?;
                d.path = path;
                let private = self.settle_new_dir(&d, rel)?;
                self.fresh
                    .insert(rel.to_path_buf(), private || above == Some(true));
                Ok(Some(d))
            }
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => Err(Error::runtime(format!(
                "destination {} is a symlink or a file, not a folder; refusing to write through it",
                parent.path.join(&name).display()
            ))
            .hint("restore to the real location with --relocate FROM=TO, or remove what is in the way")),
            Err(e) => Err(Error::errno(
                "cannot open folder",
                &parent.path.join(&name),
                e,
            )),
        }
    }

    /// A folder just created. Folders of the sources stay `0700` (owned by us) until
    /// apply: what they will hold is unproven. Folders ABOVE the sources, and folders on
    /// the way that the archive does not describe, hold no secret and get their final
    /// owner and mode at once, so that a restore killed part-way never leaves a `0700`
    /// root-owned `/var/lib` behind that a rerun (which never changes existing folders
    /// above the sources) would keep. Returns whether it stays `0700` until apply.
    fn settle_new_dir(&self, d: &DirFd, rel: &Path) -> Result<bool> {
        let (mode, owner) = match self.dir_targets.get(rel) {
            Some(&i) if self.recorded(i).role == Role::Content => return Ok(true),
            // Plain copies (--to) are made by a caller who may not be root: a recorded
            // mode without write permission (0555) would lock it out of its own staging,
            // so their folders get their modes at apply, after the files are in.
            Some(_) if self.dests.plain_copies => return Ok(true),
            Some(&i) => {
                let t = self.targets[i].as_ref().expect("dir target");
                (t.mode, Some((t.uid, t.gid)))
            }
            None => (0o755, None),
        };
        if let Some((uid, gid)) = owner {
            nix::unistd::fchown(d, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                .map_err(|e| Error::errno("cannot set the owner of", &d.path, e))?;
        }
        nix::sys::stat::fchmod(d, Mode::from_bits_truncate(mode as nix::libc::mode_t))
            .map_err(|e| Error::errno("cannot set the mode of", &d.path, e))?;
        Ok(false)
    }

    fn open_root(&mut self) -> Result<Option<DirFd>> {
        let root = self.dests.root.clone();
        if !root.exists() {
            if self.dry_run {
                return Ok(None);
            }
            let missing: Vec<PathBuf> = root
                .ancestors()
                .take_while(|p| !p.exists())
                .map(Path::to_path_buf)
                .collect();
            std::fs::create_dir_all(&root).map_err(|e| Error::io("cannot create", &root, &e))?;
            self.created_root = missing;
        }
        let d = DirFd::open(&root)?;
        if !self.dry_run {
            d.sweep_stale_temps();
        }
        Ok(Some(d))
    }

    /// The recorded entry at manifest index `i` (once the manifest has been read).
    pub(super) fn recorded(&self, i: usize) -> &Entry {
        &self
            .manifest
            .as_ref()
            .expect("the manifest comes first")
            .entries[i]
    }

    fn decide(&mut self, index: usize, action: Action, reason: Option<String>) {
        self.actions[index] = Some((action, reason));
    }

    fn split(t: &Target) -> (PathBuf, OsString) {
        (
            t.rel.parent().unwrap_or(Path::new("")).to_path_buf(),
            t.rel.file_name().expect("normal path").to_owned(),
        )
    }

    fn lstat(dir: &DirFd, name: &OsStr) -> Result<Option<FileStat>> {
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::errno("cannot examine", &dir.path.join(name), e)),
        }
    }

    /// Where an entry goes (see [`Destination`]).
    fn destination(&mut self, t: &Target) -> Result<Destination> {
        let (parent_rel, name) = Self::split(t);
        let parent = self.dir(&parent_rel)?;
        let fresh = match parent {
            Some(_) => self.fresh.get(&parent_rel).copied(),
            None => None,
        };
        let existing = match &parent {
            Some(_) if fresh.is_some() => None,
            Some(p) => Self::lstat(p, &name)?,
            None => None,
        };
        Ok(Destination {
            parent,
            name,
            existing,
            fresh,
        })
    }

    fn stage_dir(&mut self, t: &Target, e: &Entry) -> Result<()> {
        let (parent_rel, name) = Self::split(t);
        let existing = match self.dir(&parent_rel)? {
            Some(p) => Self::lstat(&p, &name)?,
            None => None,
        };
        match existing {
            None => {
                if !self.dry_run {
                    self.dir(&t.rel)?;
                }
                self.decide(t.index, Action::Create, None);
            }
            Some(st) if file_type(&st) == SFlag::S_IFDIR => {
                // Existing folders above a source are never changed; a source's own
                // folders only with --force.
                let meta = match e.role {
                    Role::Content => meta_change(&st, t, self.dests.plain_copies, true),
                    Role::Ancestor => None,
                };
                let (a, reason) = match meta {
                    None => (Action::Unchanged, None),
                    Some(m) if self.force => (Action::FixMetadata, Some(m)),
                    Some(m) => (Action::Conflict, Some(m)),
                };
                self.decide(t.index, a, reason);
            }
            Some(_) => self.decide(
                t.index,
                Action::Conflict,
                Some("not a folder at the destination".into()),
            ),
        }
        Ok(())
    }

    fn stage_file(&mut self, t: &Target, data: &mut dyn Read) -> Result<()> {
        let Destination {
            parent,
            name,
            existing,
            fresh,
        } = self.destination(t)?;
        let in_place = fresh.is_some();
        let hidden = fresh == Some(true);
        let folder_in_the_way = existing
            .as_ref()
            .is_some_and(|st| file_type(st) == SFlag::S_IFDIR);
        let write = !self.dry_run && !folder_in_the_way && (existing.is_none() || self.force);
        let mut temp: Option<(OsString, Writeback)> = None;
        if write {
            let p = parent.clone().expect("created when not a dry run");
            let (tname, file) = match in_place {
                true => p
                    .create_file(&name)
                    .map(|f| (name.clone(), f))
                    .map_err(|e| Error::errno("cannot create", &t.dest, e))?,
                false => p.create_temp_file().map(|(n, f)| (n.into(), f))?,
            };
            // Track it at once, so that any failure from here on removes it.
            self.staged.push(Staged {
                index: t.index,
                dir: p,
                temp: tname.clone(),
                name: name.clone(),
                replace: existing.is_some(),
                settled: false,
                in_place,
            });
            temp = Some((tname, Writeback::new(file)));
        }
        let regular = existing
            .as_ref()
            .is_some_and(|st| file_type(st) == SFlag::S_IFREG);
        let mut cmp = match (regular, &parent) {
            (true, Some(p)) => Comparison::at(p, &name, self.recorded(t.index).size)?,
            _ => Comparison::new(None),
        };
        let database = cmp.is_database();
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(COPY_BUF, 0);
        let copied = copy_and_compare(data, &mut temp, &mut cmp, &mut buf, t);
        self.buf = buf;
        copied?;
        let same = cmp.finish();
        let meta = existing
            .as_ref()
            .and_then(|st| meta_change(st, t, self.dests.plain_copies, true));
        let (action, mut reason) = verdict(existing.as_ref(), same, meta, self.force);
        if database && action == Action::Conflict && reason.as_deref() == Some(CONTENT_DIFFERS) {
            reason = Some(DATABASE_DIFFERS.into());
        }
        if let Some((_, mut file)) = temp {
            if matches!(action, Action::Create | Action::Replace) {
                let (mtime, size) = (self.recorded(t.index).mtime, self.recorded(t.index).size);
                if size < WRITEBACK_AT_ONCE {
                    let dir = &self.staged.last().expect("pushed above").dir;
                    self.flush_behind.wrote(dir, size);
                }
                file.start_rest(WRITEBACK_AT_ONCE);
                let (owner, mode) = settle_now(t, self.dests.plain_copies, self.owners_now, hidden);
                finish_file(file.file(), mtime, owner, mode, &t.dest)?;
                self.staged.last_mut().expect("pushed above").settled = mode.is_some();
            } else {
                // Identical after all: the temp copy is not needed.
                let s = self.staged.pop().expect("pushed above");
                let _ = s.dir.unlink(&s.temp);
            }
        }
        self.decide(t.index, action, reason);
        Ok(())
    }

    fn stage_symlink(&mut self, t: &Target, e: &Entry) -> Result<()> {
        let target = e.target.clone().unwrap_or_default();
        let Destination {
            parent,
            name,
            existing,
            fresh,
        } = self.destination(t)?;
        let in_place = fresh.is_some();
        let same = match (&existing, &parent) {
            (Some(st), Some(p)) if file_type(st) == SFlag::S_IFLNK => {
                nix::fcntl::readlinkat(&**p, name.as_os_str())
                    .map(|l| l.as_bytes() == target.as_bytes())
                    .unwrap_or(false)
            }
            _ => false,
        };
        // A link has no mode of its own: only its owner can differ.
        let meta = existing
            .as_ref()
            .and_then(|st| meta_change(st, t, self.dests.plain_copies, false));
        let (action, reason) = verdict(existing.as_ref(), same, meta, self.force);
        if !self.dry_run && matches!(action, Action::Create | Action::Replace) {
            let p = parent.expect("created when not a dry run");
            let tname = match in_place {
                true => name.clone(),
                false => crate::fsx::temp_name().into(),
            };
            nix::unistd::symlinkat(target.as_str(), &*p, tname.as_os_str())
                .map_err(|e| Error::errno("cannot create a link in", &p.path, e))?;
            self.staged.push(Staged {
                index: t.index,
                dir: p.clone(),
                temp: tname.clone(),
                name,
                replace: existing.is_some(),
                settled: false,
                in_place,
            });
            if !self.dests.plain_copies {
                // Through the link's own descriptor, once proven to be the one just made.
                let link = open_staged(&p, &tname, SFlag::S_IFLNK)?;
                nix::unistd::fchownat(
                    &link,
                    "",
                    Some(Uid::from_raw(t.uid)),
                    Some(Gid::from_raw(t.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW | AtFlags::AT_EMPTY_PATH,
                )
                .map_err(|e| Error::errno("cannot set the owner of", &t.dest, e))?;
            }
        }
        self.decide(t.index, action, reason);
        Ok(())
    }

    /// Everything read and validated: the plan, in manifest order.
    pub fn finish_plan(&mut self) -> Result<Plan> {
        let mut plan = Plan {
            warnings: std::mem::take(&mut self.warnings),
            mappings: if self.dests.plain_copies {
                Vec::new()
            } else {
                self.dests.owners.mappings()
            },
            ..Plan::default()
        };
        for (t, a) in self.targets.iter().zip(&self.actions) {
            let (Some(t), Some((action, reason))) = (t, a) else {
                continue;
            };
            plan.steps.push(Step {
                index: t.index,
                path: self.recorded(t.index).path.clone(),
                dest: t.dest.clone(),
                kind: self.recorded(t.index).kind,
                action: *action,
                mode: t.mode,
                uid: t.uid,
                gid: t.gid,
                reason: reason.clone(),
            });
        }
        Ok(plan)
    }

    /// Puts everything back: owner/mode changes taken back, renamed entries swapped
    /// back (or removed, if they were new), then every temp file and every folder this
    /// run created removed. Used on any failure, and by `Drop`: a panic anywhere between
    /// staging and the end of apply (a broken stderr, a bug) unwinds through here, so no
    /// staged plaintext and no half-applied change stays behind.
    pub fn abort(&mut self) {
        for r in self.reverts.drain(..).rev() {
            r.undo();
        }
        // A folder staged whole goes back under its temp name; what it holds is removed
        // below, by descriptor, with the temps. One that cannot go back is removed under
        // its final name instead.
        for d in self.staged_dirs[..self.dirs_renamed].iter().rev() {
            let back = nix::fcntl::renameat2(
                &*d.parent,
                d.name.as_os_str(),
                &*d.parent,
                d.temp.as_os_str(),
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            );
            if back.is_err() {
                for c in &mut self.created {
                    if Rc::ptr_eq(&c.parent, &d.parent) && c.name == d.temp {
                        c.name = d.name.clone();
                    }
                }
            }
        }
        self.dirs_renamed = 0;
        self.staged_dirs.clear();
        for s in self.staged[..self.renamed].iter().rev() {
            if s.in_place {
                continue;
            } else if s.replace {
                let _ = nix::fcntl::renameat2(
                    &*s.dir,
                    s.temp.as_os_str(),
                    &*s.dir,
                    s.name.as_os_str(),
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                );
            } else {
                let _ = s.dir.unlink(&s.name);
            }
        }
        self.renamed = 0;
        for s in self.staged.drain(..).rev() {
            let _ = s.dir.unlink(&s.temp);
        }
        for c in self.created.drain(..).rev() {
            let _ = c.parent.rmdir(&c.name);
        }
        self.dirs.clear();
        self.fresh.clear();
        for p in std::mem::take(&mut self.created_root) {
            let _ = std::fs::remove_dir(&p);
        }
    }

    /// Waits for the early flushes (see [`FlushBehind`]) before the flush that makes the
    /// staged files durable: a write-back error one of them met fails the restore as that
    /// flush's own would.
    pub(super) fn finish_flush_behind(&mut self) -> Result<()> {
        self.flush_behind
            .finish()
            .map_err(|e| Error::errno("cannot sync the file system of", &self.dests.root, e))
    }

    /// The restore has happened: nothing is to be put back any more (apply then drops
    /// the previous versions itself).
    pub(super) fn committed(&mut self) {
        self.reverts.clear();
        self.renamed = 0;
        self.dirs_renamed = 0;
        self.staged_dirs.clear();
        self.created.clear();
        self.created_root.clear();
    }
}

impl Drop for Stager {
    fn drop(&mut self) {
        self.abort();
    }
}

/// What a staged file gets as soon as its content is complete (besides its mtime): the
/// owner and mode to set now, through the descriptor still open. Otherwise the temp stays
/// `0600` and ours until the archive is proven and apply sets them; one `syncfs` per file
/// system then makes every staged file durable before the first rename (one flush instead
/// of one fsync per file: 50,000 fsyncs made a large restore 12 times slower than `tar -x`).
///
/// Now, when that shows the unproven content to nobody the `0600` temp did not, and apply
/// need not open the file again (two syscalls and a path lookup less per file):
/// - in a hidden folder (created by this run, `0700` and ours until apply; see `fresh`):
///   owner and mode, since nobody else can reach the file before apply (the owner only
///   where root has the capabilities for it: else both wait for apply, after the check
///   that names what is missing);
/// - a plain copy (ours, no owner to set) whose mode lets nobody else in and sets no
///   set-id bit (`0600`, `0400`, `0700`; most secrets are `0600`): its mode.
fn settle_now(
    t: &Target,
    plain: bool,
    owners_now: bool,
    hidden: bool,
) -> (Option<(u32, u32)>, Option<u32>) {
    if hidden && plain {
        (None, Some(t.mode))
    } else if hidden && owners_now {
        (Some((t.uid, t.gid)), Some(t.mode))
    } else if plain && t.mode & !0o700 == 0 {
        (None, Some(t.mode))
    } else {
        (None, None)
    }
}

/// A staged file's content is complete: its mtime, then what may be set before apply,
/// owner first (chown clears set-id bits, so a mode set first could be undone).
fn finish_file(
    file: &std::fs::File,
    mtime: i64,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    dest: &std::path::Path,
) -> Result<()> {
    use nix::sys::stat::{fchmod, futimens, Mode};
    use nix::sys::time::TimeSpec;
    use nix::unistd::{fchown, Gid, Uid};
    let ts = TimeSpec::new(mtime, 0);
    futimens(file, &ts, &ts).map_err(|e| Error::errno("cannot set the time of", dest, e))?;
    if let Some((uid, gid)) = owner {
        fchown(file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| Error::errno("cannot set the owner of", dest, e))?;
    }
    if let Some(mode) = mode {
        fchmod(file, Mode::from_bits_truncate(mode as nix::libc::mode_t))
            .map_err(|e| Error::errno("cannot set the mode of", dest, e))?;
    }
    Ok(())
}

/// Opens what this run staged as `name` in `dir` (a file, or with `O_PATH` a link), never
/// following a link, and proves it is still of the kind it made, with one name: where a
/// destination folder belongs to a user (their home, or a folder above the sources made
/// with its recorded owner at once), that user could otherwise swap the name for a hard
/// link to any file (`/etc/shadow`) between its creation and this open, and have that file
/// given the entry's owner and mode. (Debian's `fs.protected_hardlinks = 1` already
/// forbids such links; this does not rely on it.)
pub(super) fn open_staged(dir: &DirFd, name: &OsStr, kind: SFlag) -> Result<File> {
    let f = match kind {
        SFlag::S_IFLNK => open_without_following(dir, name, OFlag::O_PATH)?,
        _ => open_nofollow(dir, name)?,
    };
    let path = dir.path.join(name);
    let st = nix::sys::stat::fstat(&f).map_err(|e| Error::errno("cannot examine", &path, e))?;
    if file_type(&st) != kind || st.st_nlink != 1 {
        return Err(Error::runtime(format!(
            "{} is no longer what this restore staged there (another file or a hard link to one); nothing was changed",
            path.display()
        ))
        .hint("someone with write access to that folder replaced it: find out who, then run the restore again"));
    }
    Ok(f)
}

/// Opens an existing destination file for reading without following a symlink and
/// without blocking on a FIFO.
pub(super) fn open_nofollow(dir: &DirFd, name: &OsStr) -> Result<File> {
    open_without_following(dir, name, OFlag::O_RDONLY | OFlag::O_NONBLOCK)
}

fn open_without_following(dir: &DirFd, name: &OsStr, how: OFlag) -> Result<File> {
    nix::fcntl::openat(
        dir,
        name,
        how | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(|e| Error::errno("cannot open", &dir.path.join(name), e))
}

impl Visitor for Stager {
    fn manifest(&mut self, m: &Arc<Manifest>) -> Result<()> {
        self.manifest = Some(m.clone());
        let targets = self.dests.targets(m, &mut self.warnings)?;
        self.targets = vec![None; m.entries.len()];
        self.actions = vec![None; m.entries.len()];
        if !self.dests.plain_copies && !nix::unistd::geteuid().is_root() {
            let blocked: Vec<String> = targets
                .iter()
                .filter(|t| m.entries[t.index].role == Role::Content || !t.dest.exists())
                .filter(|t| !crate::owners::can_chown_to(t.uid, t.gid))
                .map(|t| t.dest.display().to_string())
                .collect();
            if !blocked.is_empty() {
                return Err(Error::runtime(format!(
                    "only root can give {} file(s) their recorded owners: {}{}",
                    blocked.len(),
                    blocked.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                    if blocked.len() > 3 { ", ..." } else { "" }
                ))
                .hint("run as root, map owners with --map-user/--map-group, or use --to DIR for plain copies owned by you"));
            }
        }
        // Room for everything it will write, before the first byte is staged.
        super::space::check(&targets, &m.entries, self.force)?;
        for t in targets {
            let i = t.index;
            if m.entries[i].kind == Kind::Dir {
                self.dir_targets.insert(t.rel.clone(), i);
            }
            self.targets[i] = Some(t);
        }
        Ok(())
    }

    fn entry(&mut self, index: usize, e: &Entry, data: &mut dyn Read) -> Result<()> {
        let Some(t) = self.targets[index].clone() else {
            return Ok(());
        };
        match e.kind {
            Kind::Dir => self.stage_dir(&t, e),
            Kind::File => self.stage_file(&t, data),
            Kind::Symlink => self.stage_symlink(&t, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_panic_after_staging_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let to = root.path().to_str().unwrap();
        let cli =
            crate::cli::Cli::try_parse_from(["forgekeep", "restore", "-", "-i", "k", "--to", to])
                .unwrap();
        let crate::cli::Command::Restore(args) = cli.command else {
            unreachable!()
        };
        let dests = Destinations::from_args(&args).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut st = Stager::new(dests, false, false);
            let sub = st.dir(Path::new("a/b")).unwrap().expect("created");
            let (temp, mut f) = sub.create_temp_file().unwrap();
            f.write_all(b"plaintext").unwrap();
            st.staged.push(Staged {
                index: 0,
                dir: sub.clone(),
                temp: temp.into(),
                name: "secret".into(),
                replace: false,
                settled: false,
                in_place: false,
            });
            panic!("a bug between staging and apply");
        }));
        assert!(panicked.is_err());
        let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
