//! Room for a restore, checked before its first byte is staged.
//!
//! Staged files are written in full beside the files they replace, so a restore needs
//! the whole size of every file it writes, on the file system each one lands on. The
//! manifest says those sizes before any content arrives: an archive of a few KiB can
//! hold a valid file of gigabytes of zeros, and a restore that discovered that by
//! filling `/var` would have hurt the host before refusing. So the sizes are added up
//! per file system (`statvfs` of the nearest existing folder of each destination) and
//! compared with the space and inodes available to us, and a restore that cannot fit
//! stops before it starts.

use super::plan::Target;
use crate::archive::manifest::{Entry, Kind};
use crate::error::{Error, Result};
use crate::report::human_bytes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Default)]
struct Need {
    /// A folder on that file system, for the message.
    at: PathBuf,
    bytes: u64,
    inodes: u64,
    avail_bytes: u64,
    avail_inodes: u64,
}

/// Refuses (exit 1) when the files this restore would write do not fit. `force`: files
/// that exist are written too (staged beside them); otherwise only new ones are.
pub fn check(targets: &[Target], entries: &[Entry], force: bool) -> Result<()> {
    // By destination folder: its file system, and whether it exists (in a folder that
    // does not exist yet nothing exists, and nothing needs looking up).
    let mut fs_of: HashMap<&Path, (Option<u64>, bool)> = HashMap::new();
    let mut needs: HashMap<u64, Need> = HashMap::new();
    for t in targets {
        let e = &entries[t.index];
        let parent = t.dest.parent().unwrap_or(Path::new("/"));
        let (fsid, parent_exists) = match fs_of.get(parent) {
            Some(known) => *known,
            None => {
                let known = file_system(parent, &mut needs);
                fs_of.insert(parent, known);
                known
            }
        };
        let exists = parent_exists && std::fs::symlink_metadata(&t.dest).is_ok();
        if exists && (e.kind == Kind::Dir || !force) {
            continue;
        }
        let Some(need) = fsid.and_then(|id| needs.get_mut(&id)) else {
            continue; // nothing to measure (statvfs failed): the write will tell
        };
        need.inodes += 1;
        if e.kind == Kind::File {
            need.bytes = need.bytes.saturating_add(e.size.next_multiple_of(4096));
        }
    }
    for n in needs.values() {
        if n.bytes > n.avail_bytes || n.inodes > n.avail_inodes {
            return Err(Error::runtime(format!(
                "not enough room on the file system of {}: the restore writes {} in {} entries, {} and {} inodes are free; nothing was changed",
                n.at.display(),
                human_bytes(n.bytes),
                n.inodes,
                human_bytes(n.avail_bytes),
                n.avail_inodes
            ))
            .hint("free some space there, or restore elsewhere with --root DIR or --to DIR"));
        }
    }
    Ok(())
}

/// The file system holding `dir` (or its nearest existing folder above), registered in
/// `needs` with what is available on it; and whether `dir` itself exists.
fn file_system(dir: &Path, needs: &mut HashMap<u64, Need>) -> (Option<u64>, bool) {
    let Some(existing) = dir.ancestors().find(|a| a.exists()) else {
        return (None, false);
    };
    (measure(existing, needs), existing == dir)
}

fn measure(existing: &Path, needs: &mut HashMap<u64, Need>) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(existing).ok()?;
    let id = st.filesystem_id() as u64;
    needs.entry(id).or_insert_with(|| Need {
        at: existing.to_path_buf(),
        avail_bytes: (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64),
        // File systems without an inode count (btrfs) report 0 files in all.
        avail_inodes: if st.files() == 0 {
            u64::MAX
        } else {
            st.files_available() as u64
        },
        ..Need::default()
    });
    Some(id)
}
