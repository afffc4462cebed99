//! Owners: turning recorded users and groups into ids on the host being restored.
//!
//! The `git` user may be uid 1000 on the host that made the backup and 998 on the one
//! restoring it, so by default ownership comes back by NAME, falling back to the recorded
//! number where the name does not exist (and saying so). A source recorded as `numeric`
//! (a container volume: the uid inside the container is what counts) comes back by
//! number. `--numeric-ids`, `--map-user` and `--map-group` override both. Every decision
//! is recorded as a [`Mapping`] so the dry-run plan can show it.

use crate::archive::manifest::{Entry, Ownership};
use crate::error::{Error, Result};
use nix::unistd::{Gid, Group, Uid, User};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// Cached uid → user name and gid → group name lookups for collection.
#[derive(Default)]
pub struct NameCache {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl NameCache {
    pub fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    pub fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                Group::from_gid(Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }
}

/// A user or group as named on the command line: a name, or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Name(String),
    Id(u32),
}

impl Who {
    fn parse(s: &str) -> Who {
        match s.parse::<u32>() {
            Ok(n) => Who::Id(n),
            Err(_) => Who::Name(s.to_string()),
        }
    }

    fn matches(&self, name: Option<&str>, id: u32) -> bool {
        match self {
            Who::Id(n) => *n == id,
            Who::Name(s) => name == Some(s.as_str()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// The recorded name exists here.
    ByName,
    /// The recorded name does not exist here; the recorded number is used.
    NumericFallback,
    /// The source or the command line asked for numbers.
    Numeric,
    /// An explicit --map-user / --map-group.
    Mapped,
}

impl How {
    pub fn describe(self) -> &'static str {
        match self {
            How::ByName => "by name",
            How::NumericFallback => "name unknown here, by number",
            How::Numeric => "by number",
            How::Mapped => "mapped",
        }
    }
}

/// One line of the owner mapping table shown by the plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Mapping {
    pub kind: &'static str,
    pub recorded: String,
    pub to: u32,
    #[serde(skip)]
    pub how_key: u8,
    pub how: String,
}

/// Owner resolution for one restore run.
pub struct OwnerPolicy {
    numeric_ids: bool,
    map_user: Vec<(Who, u32)>,
    map_group: Vec<(Who, u32)>,
    users: HashMap<String, Option<u32>>,
    groups: HashMap<String, Option<u32>>,
    /// (kind, recorded, resolved id, how): one line per distinct decision.
    used: BTreeSet<(&'static str, String, u32, How)>,
}

fn parse_map(spec: &str, what: &'static str) -> Result<(Who, u32)> {
    let (from, to) = spec.split_once('=').ok_or_else(|| {
        Error::usage(format!("--map-{what} {spec:?} is not FROM=TO")).hint(format!(
            "e.g. --map-{what} git=998 or --map-{what} 1000=git"
        ))
    })?;
    if from.is_empty() || to.is_empty() {
        return Err(Error::usage(format!(
            "--map-{what} {spec:?} is not FROM=TO"
        )));
    }
    let id = match Who::parse(to) {
        Who::Id(n) => n,
        Who::Name(n) => {
            let found = if what == "user" {
                User::from_name(&n).ok().flatten().map(|u| u.uid.as_raw())
            } else {
                Group::from_name(&n).ok().flatten().map(|g| g.gid.as_raw())
            };
            found.ok_or_else(|| {
                Error::usage(format!("--map-{what}: no {what} named {n:?} on this host"))
                    .hint(format!("create the {what} first, or give its number"))
            })?
        }
    };
    Ok((Who::parse(from), id))
}

impl OwnerPolicy {
    pub fn new(numeric_ids: bool, map_user: &[String], map_group: &[String]) -> Result<Self> {
        Ok(OwnerPolicy {
            numeric_ids,
            map_user: map_user
                .iter()
                .map(|s| parse_map(s, "user"))
                .collect::<Result<_>>()?,
            map_group: map_group
                .iter()
                .map(|s| parse_map(s, "group"))
                .collect::<Result<_>>()?,
            users: HashMap::new(),
            groups: HashMap::new(),
            used: BTreeSet::new(),
        })
    }

    fn one(
        &mut self,
        kind: &'static str,
        name: Option<&str>,
        id: u32,
        ownership: Ownership,
    ) -> (u32, How) {
        let maps = if kind == "user" {
            &self.map_user
        } else {
            &self.map_group
        };
        let (to, how) = if let Some((_, to)) = maps.iter().find(|(w, _)| w.matches(name, id)) {
            (*to, How::Mapped)
        } else if self.numeric_ids || ownership == Ownership::Numeric {
            (id, How::Numeric)
        } else if let Some(n) = name {
            let cache = if kind == "user" {
                &mut self.users
            } else {
                &mut self.groups
            };
            let found = *cache.entry(n.to_string()).or_insert_with(|| {
                if kind == "user" {
                    User::from_name(n).ok().flatten().map(|u| u.uid.as_raw())
                } else {
                    Group::from_name(n).ok().flatten().map(|g| g.gid.as_raw())
                }
            });
            match found {
                Some(x) => (x, How::ByName),
                None => (id, How::NumericFallback),
            }
        } else {
            (id, How::NumericFallback)
        };
        let recorded = match name {
            Some(n) => format!("{n}({id})"),
            None => id.to_string(),
        };
        self.used.insert((kind, recorded, to, how));
        (to, how)
    }

    /// The uid and gid `entry` gets on this host.
    pub fn resolve(&mut self, entry: &Entry, ownership: Ownership) -> (u32, u32) {
        let (uid, _) = self.one("user", entry.user.as_deref(), entry.uid, ownership);
        let (gid, _) = self.one("group", entry.group.as_deref(), entry.gid, ownership);
        (uid, gid)
    }

    /// Every mapping used so far, for the plan.
    pub fn mappings(&self) -> Vec<Mapping> {
        self.used
            .iter()
            .map(|(kind, recorded, to, how)| Mapping {
                kind,
                recorded: recorded.clone(),
                to: *to,
                how_key: *how as u8,
                how: how.describe().to_string(),
            })
            .collect()
    }
}

/// Can the calling user give a file this owner? Root with `CAP_CHOWN` can; anyone else
/// (root in a container or a unit without it too) only keeps their own uid and may
/// choose among their groups.
pub fn can_chown_to(uid: u32, gid: u32) -> bool {
    let me = nix::unistd::geteuid();
    if me.is_root() && missing_root_capabilities().is_empty() {
        return true;
    }
    if uid != me.as_raw() {
        return false;
    }
    gid == nix::unistd::getegid().as_raw()
        || nix::unistd::getgroups()
            .map(|gs| gs.iter().any(|g| g.as_raw() == gid))
            .unwrap_or(false)
}

/// The capabilities a root restore relies on: give files their owners (`CAP_CHOWN`), set
/// modes of files it then no longer owns (`CAP_FOWNER`), write into folders of other
/// users (`CAP_DAC_OVERRIDE`). (Bit numbers of linux/capability.h.)
const ROOT_CAPABILITIES: [(u32, &str); 3] =
    [(0, "CAP_CHOWN"), (1, "CAP_DAC_OVERRIDE"), (3, "CAP_FOWNER")];

/// Which of those this process lacks while running as root (a container without them, a
/// unit's `CapabilityBoundingSet=`): root is then not all-powerful, and "run as root" is
/// no advice. Empty for a non-root caller, whose limits are its uid's.
pub fn missing_root_capabilities() -> Vec<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return Vec::new();
    }
    let Some(effective) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
    else {
        return Vec::new();
    };
    ROOT_CAPABILITIES
        .iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect()
}
