//! `forgekeep status DIR|s3://BUCKET/PREFIX/`: the fleet view.
//!
//! Whoever keeps the archives of many forges in one folder or bucket wants one line per
//! host: its newest archive, how old it is, how many there are, how much they take; and
//! one cron line that fails when any host has stopped backing up (`--max-age`). It reads
//! the folder's listing only (names and sizes, the time from the name, as prune does):
//! nothing is downloaded or decrypted, so it needs no key and a credential that may only
//! list the bucket. Proving the newest archive opens is `verify --latest`'s job.

use crate::cli::StatusArgs;
use crate::config::Config;
use crate::error::{Error, ExitCode, Result};
use crate::report::{human_age, human_bytes, parse_age, Out};
use crate::retention::Archive;
use crate::store::Folder;
use serde_json::json;
use std::collections::BTreeMap;

pub fn run(args: &StatusArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    let max_age = args.max_age.as_deref().map(parse_age).transpose()?;
    let folder = Folder::open(&folder_arg(args, config)?, &config.s3)?;
    let now = jiff::Timestamp::now();
    let mut hosts = per_host(folder.archives()?, now);
    if !args.hosts.is_empty() {
        hosts.retain(|h| args.hosts.contains(&h.host));
    }
    let missing: Vec<&String> = args
        .hosts
        .iter()
        .filter(|h| !hosts.iter().any(|s| &&s.host == h))
        .collect();
    let stale: Vec<&HostStatus> = hosts
        .iter()
        .filter(|h| max_age.is_some_and(|max| h.age > max))
        .collect();
    say_table(&folder, &hosts, max_age, out);
    let mut report = json!({
        "command": "status",
        "folder": folder.to_string(),
        "hosts": hosts.iter().map(|h| h.to_json(max_age)).collect::<Vec<_>>(),
        "archives": hosts.iter().map(|h| h.count).sum::<usize>(),
        "bytes": hosts.iter().map(|h| h.bytes).sum::<u64>(),
    });
    if let Some(max) = max_age {
        report["max_age_seconds"] = json!(max);
        report["stale_hosts"] = json!(stale.iter().map(|h| &h.host).collect::<Vec<_>>());
    }
    if !missing.is_empty() {
        report["missing_hosts"] = json!(missing);
    }
    match verdict(&folder, &hosts, &stale, &missing, args) {
        Some(e) => Ok(out.report_failed(report, &e)),
        None => {
            out.report(&report);
            Ok(ExitCode::Success)
        }
    }
}

/// The folder argument, else the configured job's output folder (a folder or a prefix).
fn folder_arg(args: &StatusArgs, config: &Config) -> Result<std::path::PathBuf> {
    if let Some(f) = &args.folder {
        return Ok(f.clone());
    }
    config.configured_folder().map(std::path::Path::to_path_buf).ok_or_else(|| {
        Error::usage("no archive folder given").hint(
            "name the folder of archives: forgekeep status /var/backups/forgekeep or s3://BUCKET/PREFIX/ (or set [backup] output in the configuration file)",
        )
    })
}

/// One host's archives in the folder.
struct HostStatus {
    host: String,
    /// Its newest archive (names sort by time within a host).
    newest: Archive,
    /// Seconds since the newest archive was made (by the time in its name).
    age: i64,
    count: usize,
    bytes: u64,
}

impl HostStatus {
    fn to_json(&self, max_age: Option<i64>) -> serde_json::Value {
        let mut v = json!({
            "host": self.host,
            "newest": self.newest.name,
            "newest_time": self.newest.time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "age_seconds": self.age,
            "archives": self.count,
            "bytes": self.bytes,
        });
        if let Some(max) = max_age {
            v["stale"] = json!(self.age > max);
        }
        v
    }
}

/// The archives (newest first) grouped by host, in host order.
fn per_host(archives: Vec<Archive>, now: jiff::Timestamp) -> Vec<HostStatus> {
    let mut by_host: BTreeMap<String, HostStatus> = BTreeMap::new();
    for a in archives {
        match by_host.get_mut(&a.host) {
            Some(h) => {
                h.count += 1;
                h.bytes += a.size;
            }
            None => {
                by_host.insert(
                    a.host.clone(),
                    HostStatus {
                        host: a.host.clone(),
                        age: now.as_second() - a.time.as_second(),
                        count: 1,
                        bytes: a.size,
                        newest: a,
                    },
                );
            }
        }
    }
    by_host.into_values().collect()
}

fn say_table(folder: &Folder, hosts: &[HostStatus], max_age: Option<i64>, out: &Out) {
    if hosts.is_empty() {
        out.say(format!("no forgekeep archives in {folder}"));
        return;
    }
    let width = hosts.iter().map(|h| h.host.len()).max().unwrap_or(4).max(4);
    out.say(format!(
        "{:<width$}  {:<20}  {:>14}  {:>8}  {:>10}",
        "HOST", "NEWEST", "AGE", "ARCHIVES", "SIZE"
    ));
    for h in hosts {
        let stale = max_age.is_some_and(|max| h.age > max);
        out.say(format!(
            "{:<width$}  {:<20}  {:>14}  {:>8}  {:>10}{}",
            h.host,
            h.newest.time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            human_age(h.age),
            h.count,
            human_bytes(h.bytes),
            if stale { "  STALE" } else { "" }
        ));
    }
    out.say(format!(
        "{} host(s), {} archive(s), {} in {folder}",
        hosts.len(),
        hosts.iter().map(|h| h.count).sum::<usize>(),
        human_bytes(hosts.iter().map(|h| h.bytes).sum())
    ));
}

/// The failure, if any: hosts whose newest archive is too old, hosts named by `--host`
/// with no archive, or (with `--max-age`) a folder with no archive at all.
fn verdict(
    folder: &Folder,
    hosts: &[HostStatus],
    stale: &[&HostStatus],
    missing: &[&String],
    args: &StatusArgs,
) -> Option<Error> {
    let max = args.max_age.as_deref().unwrap_or("");
    let mut problems: Vec<String> = stale
        .iter()
        .map(|h| format!("{} ({} old)", h.host, human_age(h.age)))
        .collect();
    problems.extend(missing.iter().map(|h| format!("{h} (no archive)")));
    if problems.is_empty() && !(hosts.is_empty() && args.max_age.is_some()) {
        return None;
    }
    let what = if problems.is_empty() {
        format!("no forgekeep archive in {folder}, so none is younger than --max-age {max}")
    } else if stale.is_empty() {
        format!("no archive in {folder} of: {}", problems.join(", "))
    } else {
        format!(
            "the newest archive is older than --max-age {max} for: {}",
            problems.join(", ")
        )
    };
    Some(Error::runtime(what).hint(
        "backups have stopped on those hosts: check their backup timer or cron job (systemctl status forgekeep-backup.timer, journalctl -u forgekeep-backup)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(host: &str, stamp: &str, size: u64) -> Archive {
        let name = format!("forgekeep-{host}-{stamp}.tar.zst.age");
        let (host, time) = crate::retention::parse_name(&name).unwrap();
        Archive {
            path: name.clone().into(),
            name,
            host,
            time,
            size,
        }
    }

    #[test]
    fn hosts_are_summed_up_from_their_newest() {
        let now: jiff::Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        // Newest first, as a folder lists them.
        let hosts = per_host(
            vec![
                archive("git", "20261126T030000Z", 10),
                archive("ci", "20261125T030000Z", 5),
                archive("git", "20261125T030000Z", 20),
            ],
            now,
        );
        let summary: Vec<(&str, &str, i64, usize, u64)> = hosts
            .iter()
            .map(|h| {
                (
                    h.host.as_str(),
                    h.newest.name.as_str(),
                    h.age,
                    h.count,
                    h.bytes,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "ci",
                    "forgekeep-ci-20261125T030000Z.tar.zst.age",
                    33 * 3600,
                    1,
                    5
                ),
                (
                    "git",
                    "forgekeep-git-20261126T030000Z.tar.zst.age",
                    9 * 3600,
                    2,
                    30
                ),
            ]
        );
    }
}
