//! Apply: the only part of a restore that changes what others can see.
//!
//! It runs only after the archive has been read to its end and every member and
//! checksum validated. Order, and why:
//!
//! 1. files that will be replaced are first saved in an UNDO ARCHIVE encrypted to the
//!    same keys (never as plaintext copies next to the secret), so `--force` loses
//!    nothing;
//! 2. each staged temp is renamed into place: `RENAME_NOREPLACE` for a new file (never
//!    clobber something that appeared meanwhile), `RENAME_EXCHANGE` for a replacement, so
//!    the previous version stays under the temp name until the end and a failure can
//!    swap it back; a new folder staged whole is renamed once, `RENAME_NOREPLACE`, with
//!    everything in it;
//! 3. owners and modes of existing entries are fixed, created folders get their
//!    recorded owner and mode (they were `0700` until now);
//! 4. every touched folder is fsynced, then the previous versions are unlinked.
//!
//! Any failure in 2–3 swaps back what was replaced, removes what was created, and
//! reports the error: all or nothing.

use super::plan::{Action, Plan, Step, Target};
use super::stage::{open_nofollow, open_staged, Revert, Stager};
use crate::archive::manifest::{Kind, Ownership};
use crate::archive::writer::{write_archive_file, WriteOptions};
use crate::cli::RestoreArgs;
use crate::collect::{collect, Collection, Options, SourceRequest};
use crate::commands::backup::{build_manifest, host_for_filename};
use crate::error::{Error, Result};
use crate::keys::Keyring;
use nix::fcntl::{renameat2, RenameFlags};
use nix::sys::stat::SFlag;
use nix::sys::stat::{fchmod, Mode};
use nix::unistd::{fchown, fchownat, Gid, Uid};
use std::collections::HashSet;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

pub fn apply(
    st: &mut Stager,
    plan: &Plan,
    keys: &Keyring,
    signing: Option<std::sync::Arc<crate::signature::SigningKey>>,
    args: &RestoreArgs,
) -> Result<Option<PathBuf>> {
    // What changes in place: replaced content, and owners and modes changed on entries
    // whose content stays. Both are recorded in the undo archive as they are now.
    let changed: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Replace | Action::FixMetadata))
        .collect();
    let undo = if changed.is_empty() {
        None
    } else {
        match write_undo(st, &changed, keys, signing, args) {
            Ok(p) => Some(p),
            Err(e) => {
                st.abort();
                return Err(e.hint(
                    "nothing was changed; fix the cause (or pass --undo-dir DIR) and run again",
                ));
            }
        }
    };
    match commit(st, plan) {
        Ok(()) => {}
        Err(CommitError::Undone(e)) => {
            st.abort();
            // The undo archive holds the files as they are again now; say so rather than
            // leave an unexplained file behind.
            return Err(match &undo {
                Some(u) => Error::new(
                    e.exit,
                    format!(
                        "{} (the undo archive {} was written before the failure and can be deleted)",
                        e.what,
                        u.display()
                    ),
                ),
                None => Error::new(e.exit, e.what),
            }
            .hint("everything already changed was put back; nothing was changed"));
        }
        Err(CommitError::Late(e)) => {
            let keep = undo
                .as_ref()
                .map(|u| format!("; keep the undo archive {}", u.display()))
                .unwrap_or_default();
            return Err(Error::new(
                e.exit,
                format!("the files are restored, but the file system did not confirm they are on disk ({}){keep}", e.what),
            )
            .hint("check the disk (dmesg) and run the restore again; it will report the files as unchanged once they are safe"));
        }
    }
    Ok(undo)
}

/// Saves the current versions of the entries about to change: replaced files and links
/// as they are, and entries whose owner or mode changes as they are too (same content,
/// the previous owner and mode), so that `restore UNDO --force` sees the content
/// unchanged and puts the previous owner and mode back. A folder whose owner or mode
/// changes is recorded alone, without what it holds.
fn write_undo(
    st: &Stager,
    changed: &[&Step],
    keys: &Keyring,
    signing: Option<std::sync::Arc<crate::signature::SigningKey>>,
    args: &RestoreArgs,
) -> Result<PathBuf> {
    let dir = match (&args.undo_dir, &st.dests.archive_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => {
            std::env::current_dir().map_err(|e| Error::io("cannot find", Path::new("."), &e))?
        }
    };
    let requests: Vec<SourceRequest> = changed
        .iter()
        .map(|s| SourceRequest {
            profile: Some("undo".into()),
            // The same host takes them back: numbers are exact.
            ..SourceRequest::path(s.dest.display().to_string(), Ownership::Numeric)
        })
        .collect();
    let mut collection = collect(&requests, &Options::default())?;
    only_what_changes(&mut collection, changed);
    let manifest = build_manifest(&collection, &[]);
    let enc = keys.undo_encryption()?;
    let stem = format!(
        "restore-undo-{}-{}",
        host_for_filename(),
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    );
    // Two restores within one second must not collide (the rename refuses to replace).
    let name = (1..)
        .map(|n| {
            if n == 1 {
                format!("{stem}.tar.zst.age")
            } else {
                format!("{stem}-{n}.tar.zst.age")
            }
        })
        .find(|n| std::fs::symlink_metadata(dir.join(n)).is_err())
        .expect("a free name");
    write_archive_file(
        &dir,
        name.as_ref(),
        false,
        &enc,
        &manifest,
        &collection.items,
        // Signed when the restore was given --sign: restoring it then needs no consent
        // where the trust file lists that key for this host.
        &WriteOptions {
            signing,
            ..WriteOptions::default()
        },
    )?;
    Ok(dir.join(name))
}

/// Drops from an undo collection what lies inside a folder whose owner or mode alone
/// changes, except the changed entries themselves and the folders above them.
fn only_what_changes(c: &mut Collection, changed: &[&Step]) {
    let dirs: HashSet<String> = changed
        .iter()
        .filter(|s| s.kind == Kind::Dir)
        .map(|s| s.dest.display().to_string())
        .collect();
    if dirs.is_empty() {
        return;
    }
    let wanted: HashSet<String> = changed
        .iter()
        .map(|s| s.dest.display().to_string())
        .collect();
    let above_wanted: HashSet<&str> = wanted
        .iter()
        .flat_map(|w| {
            Path::new(w.as_str())
                .ancestors()
                .skip(1)
                .filter_map(Path::to_str)
        })
        .collect();
    c.items.retain(|item| {
        let p = item.entry.path.as_str();
        let inside_changed_dir = Path::new(p)
            .ancestors()
            .skip(1)
            .filter_map(Path::to_str)
            .any(|a| dirs.contains(a));
        !inside_changed_dir || wanted.contains(p) || above_wanted.contains(p)
    });
}

fn commit(st: &mut Stager, plan: &Plan) -> std::result::Result<(), CommitError> {
    let plain = st.dests.plain_copies;
    // 1. The archive is proven: each temp gets its owner, then its mode (chown clears
    //    set-id bits, so a mode set first could be undone). Until now they were 0600,
    //    unless staging already gave them their final owner and mode (`stage::settle_now`:
    //    a private mode, or a folder nobody else can enter); each is reopened only once
    //    proven to be the file staging made (`open_staged`).
    for s in &st.staged {
        let Some(t) = st.targets[s.index].as_ref() else {
            continue;
        };
        if st.recorded(s.index).kind == Kind::File && !s.settled {
            let staged = open_staged(&s.dir, &s.temp, SFlag::S_IFREG)?;
            owner_then_mode(&staged, t, plain, None)?;
        }
    }
    st.finish_flush_behind()?;
    sync_filesystems(st)?;
    // 2. Renames, each counted at once: a failure (or a panic) from here on makes
    //    `Stager::abort` swap back exactly these.
    for i in 0..st.staged.len() {
        let s = &st.staged[i];
        if s.in_place {
            // In a folder staged whole: its folder's rename below puts it in place.
            st.renamed += 1;
            continue;
        }
        let flags = if s.replace {
            RenameFlags::RENAME_EXCHANGE
        } else {
            RenameFlags::RENAME_NOREPLACE
        };
        renameat2(
            &*s.dir,
            s.temp.as_os_str(),
            &*s.dir,
            s.name.as_os_str(),
            flags,
        )
        .map_err(|e| Error::errno("cannot put in place", &s.dir.path.join(&s.name), e))?;
        st.renamed += 1;
    }
    for i in 0..st.staged_dirs.len() {
        let d = &st.staged_dirs[i];
        renameat2(
            &*d.parent,
            d.temp.as_os_str(),
            &*d.parent,
            d.name.as_os_str(),
            RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| Error::errno("cannot put in place", &d.parent.path.join(&d.name), e))?;
        st.dirs_renamed += 1;
    }
    // 3. Owners and modes of what stays, each change remembered for rollback.
    fix_metadata(st, plan)?;
    // 4. Durability of the renames and fixes: a file system that cannot confirm them
    //    still gets everything put back.
    sync_filesystems(st)?;
    // 5. The previous versions go (they are in the undo archive). Past this point nothing
    //    is rolled back: the restore has happened.
    st.committed();
    let mut unlinked = false;
    for s in st.staged.drain(..) {
        if s.replace {
            let _ = s.dir.unlink(&s.temp);
            unlinked = true;
        }
    }
    // 6. Durability of those unlinks. With none (every entry was new, as in a restore
    //    to an empty folder) step 4's flush was the last one needed: a third `syncfs`
    //    would only flush the rest of the file system's users.
    if unlinked {
        sync_filesystems(st).map_err(CommitError::Late)?;
    }
    Ok(())
}

/// How a commit failed: before its changes were final (everything was put back), or
/// after (the restore happened, but the last flush was not confirmed).
enum CommitError {
    Undone(Error),
    Late(Error),
}

impl From<Error> for CommitError {
    fn from(e: Error) -> Self {
        CommitError::Undone(e)
    }
}

/// One `syncfs` per file system touched. Before the renames: every temp file's content,
/// owner and mode are durable before any rename makes it visible. After: the renames
/// themselves. (One flush per file system rather than an fsync per file and folder.)
fn sync_filesystems(st: &Stager) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for d in st.dirs.values() {
        let dev = nix::sys::stat::fstat(&**d).map(|s| s.st_dev).unwrap_or(0);
        if seen.insert(dev) {
            nix::unistd::syncfs(&**d)
                .map_err(|e| Error::errno("cannot sync the file system of", &d.path, e))?;
        }
    }
    Ok(())
}

fn fix_metadata(st: &mut Stager, plan: &Plan) -> Result<()> {
    let plain = st.dests.plain_copies;
    for step in &plan.steps {
        let Some(t) = st.targets[step.index].clone() else {
            continue;
        };
        let created_dir = step.kind == Kind::Dir && step.action == Action::Create;
        if step.action != Action::FixMetadata && !created_dir {
            continue;
        }
        let parent_rel = t.rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let name = t.rel.file_name().expect("normal path").to_owned();
        let Some(parent) = st.dir(&parent_rel)? else {
            continue;
        };
        if step.kind == Kind::Symlink {
            if !plain {
                let (uid, gid) = (Some(Uid::from_raw(t.uid)), Some(Gid::from_raw(t.gid)));
                st.reverts.extend(Revert::of_link(&parent, &name));
                fchownat(
                    &*parent,
                    name.as_os_str(),
                    uid,
                    gid,
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| Error::errno("cannot set the owner of", &t.dest, e))?;
            }
            continue;
        }
        // Through a descriptor opened without following links: owner, then mode.
        let mtime = created_dir.then(|| st.recorded(step.index).mtime);
        if step.kind == Kind::Dir {
            let d = st.dir(&t.rel)?.expect("exists after staging");
            st.reverts.extend(Revert::of(&*d));
            owner_then_mode(&*d, &t, plain, mtime)?;
        } else {
            let f = open_nofollow(&parent, &name)?;
            st.reverts.extend(Revert::of(&f));
            owner_then_mode(&f, &t, plain, mtime)?;
        }
    }
    Ok(())
}

/// Owner first (chown clears set-id bits), then mode, then (for created folders) mtime.
fn owner_then_mode(fd: impl AsFd, t: &Target, plain: bool, mtime: Option<i64>) -> Result<()> {
    if !plain {
        fchown(&fd, Some(Uid::from_raw(t.uid)), Some(Gid::from_raw(t.gid)))
            .map_err(|e| Error::errno("cannot set the owner of", &t.dest, e))?;
    }
    fchmod(&fd, Mode::from_bits_truncate(t.mode as nix::libc::mode_t))
        .map_err(|e| Error::errno("cannot set the mode of", &t.dest, e))?;
    if let Some(m) = mtime {
        let ts = nix::sys::time::TimeSpec::new(m, 0);
        let _ = nix::sys::stat::futimens(&fd, &ts, &ts);
    }
    Ok(())
}
