//! Where each entry goes and what will happen to it.
//!
//! A recorded path becomes a destination by, in order: `--relocate FROM=TO` (the longest
//! matching FROM, on a component boundary), then the `--root`/`--to` prefix. `--only`
//! selects entries by their RECORDED path (a matching folder brings its contents); the
//! folders above a selected entry come along so it has somewhere to go.

use crate::archive::manifest::{Entry, Kind, Manifest, Role};
use crate::archive::validate::parent_of;
use crate::cli::RestoreArgs;
use crate::error::{Error, Result};
use crate::owners::{Mapping, OwnerPolicy};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Does not exist yet.
    Create,
    /// Exists with other content; replaced (only with --force).
    Replace,
    /// Same content, but owner or mode differ: fixed in place.
    FixMetadata,
    /// Identical: left alone.
    Unchanged,
    /// Differs and --force was not given (or cannot be replaced at all).
    Conflict,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::FixMetadata => "fix-owner-mode",
            Action::Unchanged => "unchanged",
            Action::Conflict => "CONFLICT",
        }
    }
}

/// One entry's step in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    #[serde(skip)]
    pub index: usize,
    pub path: String,
    pub dest: PathBuf,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub action: Action,
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn octal<S: serde::Serializer>(m: &u32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{m:04o}"))
}

impl Step {
    pub fn describe(&self) -> String {
        format!(
            "{:<14} {:<7} {:04o} {:>5}:{:<5} {}{}",
            self.action.word(),
            self.kind.as_str(),
            self.mode,
            self.uid,
            self.gid,
            self.dest.display(),
            self.reason
                .as_ref()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        )
    }
}

#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub mappings: Vec<Mapping>,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn count(&self, a: Action) -> usize {
        self.steps.iter().filter(|s| s.action == a).count()
    }

    pub fn counts(&self) -> serde_json::Value {
        serde_json::json!({
            "create": self.count(Action::Create),
            "replace": self.count(Action::Replace),
            "fix_metadata": self.count(Action::FixMetadata),
            "unchanged": self.count(Action::Unchanged),
            "conflict": self.count(Action::Conflict),
        })
    }

    pub fn counts_line(&self) -> String {
        format!(
            "create {}, replace {}, fix owner/mode {}, unchanged {}",
            self.count(Action::Create),
            self.count(Action::Replace),
            self.count(Action::FixMetadata),
            self.count(Action::Unchanged)
        )
    }
}

/// Everything that decides destinations and owners.
pub struct Destinations {
    /// Destination root: `--to`, `--root`, or `/`.
    pub root: PathBuf,
    /// `--to`: plain copies owned by the caller, no chown.
    pub plain_copies: bool,
    relocate: Vec<(String, String)>,
    only: Option<GlobSet>,
    pub owners: OwnerPolicy,
    pub undo_dir: Option<PathBuf>,
    pub archive_dir: Option<PathBuf>,
}

/// One selected entry with where it goes and what it should look like there.
#[derive(Debug, Clone)]
pub struct Target {
    pub index: usize,
    pub dest: PathBuf,
    /// Destination relative to `root` (what the descriptors walk).
    pub rel: PathBuf,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

fn normal_abs(p: &str) -> bool {
    p.starts_with('/') && p[1..].split('/').all(|c| c != "." && c != "..") && !p.contains("//")
}

fn parse_relocate(spec: &str) -> Result<(String, String)> {
    let bad = || {
        Error::usage(format!(
            "--relocate {spec:?} is not FROM=TO with two absolute paths"
        ))
        .hint("e.g. --relocate /data=/srv/gitea")
    };
    let (from, to) = spec.split_once('=').ok_or_else(bad)?;
    let from = if from.len() > 1 {
        from.trim_end_matches('/')
    } else {
        from
    };
    let to = if to.len() > 1 {
        to.trim_end_matches('/')
    } else {
        to
    };
    if !normal_abs(from) || !normal_abs(to) {
        return Err(bad());
    }
    Ok((from.to_string(), to.to_string()))
}

impl Destinations {
    pub fn from_args(a: &RestoreArgs) -> Result<Destinations> {
        let root = match (&a.to, &a.root) {
            (Some(t), _) => absolute(t)?,
            (None, Some(r)) => absolute(r)?,
            (None, None) => PathBuf::from("/"),
        };
        let only =
            if a.only.is_empty() {
                None
            } else {
                let mut b = GlobSetBuilder::new();
                for g in &a.only {
                    b.add(Glob::new(g).map_err(|e| {
                        Error::usage(format!("--only {g:?} is not a valid glob: {e}"))
                    })?);
                }
                Some(
                    b.build()
                        .map_err(|e| Error::usage(format!("invalid --only patterns: {e}")))?,
                )
            };
        // stdin and an object in a bucket have no folder here: the undo archive (this
        // host's current secrets) goes to the current folder, never to the bucket.
        let archive_dir = if a.archive.as_os_str() == "-"
            || matches!(
                crate::store::Location::parse(&a.archive)?,
                crate::store::Location::S3(_)
            ) {
            None
        } else {
            Some(absolute(
                a.archive
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            )?)
        };
        Ok(Destinations {
            root,
            plain_copies: a.to.is_some(),
            relocate: a
                .relocate
                .iter()
                .map(|s| parse_relocate(s))
                .collect::<Result<_>>()?,
            only,
            owners: OwnerPolicy::new(a.numeric_ids, &a.map_user, &a.map_group)?,
            undo_dir: a.undo_dir.clone(),
            archive_dir,
        })
    }

    fn relocated(&self, path: &str) -> String {
        let best = self
            .relocate
            .iter()
            .filter(|(from, _)| {
                from == "/"
                    || path == from
                    || (path.starts_with(from.as_str()) && path.as_bytes()[from.len()] == b'/')
            })
            .max_by_key(|(from, _)| from.len());
        match best {
            None => path.to_string(),
            Some((from, to)) => {
                let rest = if from == "/" {
                    path
                } else {
                    &path[from.len()..]
                };
                let rest = rest.trim_start_matches('/');
                if rest.is_empty() {
                    to.clone()
                } else if to == "/" {
                    format!("/{rest}")
                } else {
                    format!("{to}/{rest}")
                }
            }
        }
    }

    /// The entries to restore, with destinations, owners and modes.
    pub fn targets(&mut self, m: &Manifest, warnings: &mut Vec<String>) -> Result<Vec<Target>> {
        let selected = self.select(m)?;
        let mut out = Vec::new();
        let me = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        for (index, e) in m.entries.iter().enumerate() {
            if !selected[index] {
                continue;
            }
            let rel_str = self.relocated(&e.path);
            let rel = PathBuf::from(rel_str.trim_start_matches('/'));
            // A folder above a source only matters where the source lands: when a rule
            // moves something below it elsewhere, or maps it onto the root, it stays out
            // (no stray /data on the new host).
            if e.role == Role::Ancestor
                && (rel.as_os_str().is_empty()
                    || self.relocate.iter().any(|(from, _)| under(from, &e.path)))
            {
                continue;
            }
            let dest = self.root.join(&rel);
            if rel.as_os_str().is_empty() {
                return Err(collision(&dest));
            }
            let (uid, gid) = if self.plain_copies {
                me
            } else {
                self.owners.resolve(e, m.sources[e.source].ownership)
            };
            out.push(Target {
                index,
                dest,
                rel,
                mode: safe_mode(e, warnings),
                uid,
                gid,
            });
        }
        // Recorded paths are unique; only --relocate can make two destinations one.
        // Checked by sorting indices (not by a set of copied paths: a large restore
        // holds every destination once, not twice).
        if !self.relocate.is_empty() {
            let mut order: Vec<usize> = (0..out.len()).collect();
            order.sort_unstable_by(|a, b| out[*a].dest.cmp(&out[*b].dest));
            if let Some(w) = order.windows(2).find(|w| out[w[0]].dest == out[w[1]].dest) {
                return Err(collision(&out[w[0]].dest));
            }
        }
        Ok(out)
    }

    /// Which entries `--only` selects: those whose recorded path matches (content
    /// only), everything inside a matched folder, and the folders above a match. Linear
    /// in the number of entries (one glob match and one parent lookup each): a valid
    /// manifest lists every entry's folder before it (see `archive::validate`).
    fn select(&self, m: &Manifest) -> Result<Vec<bool>> {
        let Some(only) = &self.only else {
            return Ok(vec![true; m.entries.len()]);
        };
        let n = m.entries.len();
        let index: HashMap<&str, usize> = m
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.as_str(), i))
            .collect();
        let parent: Vec<Option<usize>> = m
            .entries
            .iter()
            .map(|e| parent_of(&e.path).and_then(|p| index.get(p).copied()))
            .collect();
        let matched: Vec<bool> = m
            .entries
            .iter()
            .map(|e| e.role == Role::Content && only.is_match(&e.path))
            .collect();
        if !matched.contains(&true) {
            return Err(Error::usage("--only matched no entry of the archive")
                .hint("patterns match recorded absolute paths, e.g. --only '/var/lib/gitea/jwt/*' (see forgekeep list)"));
        }
        // Parents come first, so one pass settles "inside a matched folder".
        let mut selected = vec![false; n];
        for i in 0..n {
            selected[i] = matched[i] || parent[i].is_some_and(|p| selected[p]);
        }
        // The folders above a match come along, each marked once: a climb stops at a
        // folder an earlier climb marked (everything above it is marked too).
        let mut above = vec![false; n];
        for i in (0..n).filter(|i| matched[*i]) {
            let mut up = parent[i];
            while let Some(p) = up {
                if above[p] {
                    break;
                }
                above[p] = true;
                up = parent[p];
            }
        }
        for (s, a) in selected.iter_mut().zip(above) {
            *s |= a;
        }
        Ok(selected)
    }
}

fn collision(dest: &Path) -> Error {
    Error::usage(format!(
        "--relocate maps two entries (or one onto the root) at {}",
        dest.display()
    ))
    .hint("use --relocate rules that keep entries apart")
}

/// Is `p` strictly below the folder `d`?
fn under(p: &str, d: &str) -> bool {
    (d == "/" && p.len() > 1)
        || (p.len() > d.len() && p.starts_with(d) && p.as_bytes()[d.len()] == b'/')
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io("cannot resolve", p, &e))
}

/// Set-uid and set-gid bits never come back on files (a secret does not need them, a
/// crafted archive could use them); set-uid never on folders either. Dropped with a
/// warning.
fn safe_mode(e: &Entry, warnings: &mut Vec<String>) -> u32 {
    let drop = match e.kind {
        Kind::File => 0o6000,
        Kind::Dir => 0o4000,
        Kind::Symlink => 0,
    };
    if e.mode & drop != 0 {
        warnings.push(format!(
            "{}: set-uid/set-gid bits dropped (mode {:04o} -> {:04o})",
            e.path,
            e.mode,
            e.mode & !drop
        ));
    }
    e.mode & !drop
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(rules: &[&str]) -> Destinations {
        Destinations {
            root: PathBuf::from("/"),
            plain_copies: false,
            relocate: rules.iter().map(|r| parse_relocate(r).unwrap()).collect(),
            only: None,
            owners: OwnerPolicy::new(false, &[], &[]).unwrap(),
            undo_dir: None,
            archive_dir: None,
        }
    }

    #[test]
    fn relocate_takes_longest_prefix_on_component_boundary() {
        let x = d(&["/data=/srv/a", "/data/gitea=/srv/b"]);
        assert_eq!(x.relocated("/data/gitea/jwt"), "/srv/b/jwt");
        assert_eq!(x.relocated("/data/ssh"), "/srv/a/ssh");
        assert_eq!(x.relocated("/database"), "/database");
        assert_eq!(x.relocated("/data"), "/srv/a");
    }

    #[test]
    fn relocate_rejects_relative_or_dotdot() {
        assert!(parse_relocate("data=/x").is_err());
        assert!(parse_relocate("/data=/x/../etc").is_err());
        assert!(parse_relocate("/data").is_err());
    }
}
