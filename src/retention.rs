//! Which archives of a folder to keep: restic's `forget` rules over archive names.
//!
//! Only files named exactly `forgekeep-<host>-<YYYYmmddTHHMMSSZ>.tar.zst.age` are ever
//! considered ([`parse_name`]); everything else in the folder (undo archives of restore,
//! temp files, the lock file, notes, symlinks, folders) is invisible here, so it can never
//! be deleted by a prune. Times come from the UTC stamp in the name, not from the file's
//! mtime (a copy with `cp`/`rsync` keeps the name, not always the mtime).
//!
//! The rules ([`plan`]), as restic's:
//! * `--keep-last N`: the N newest archives;
//! * `--keep-hourly/daily/weekly/monthly/yearly N`: walking from the newest to the oldest,
//!   the newest archive of each UTC hour / day / ISO week / month / year, until N such
//!   periods have one (periods without an archive do not count);
//! * an archive kept by any rule is kept; a rule with N = 0 keeps nothing;
//! * the newest archive is always kept, whatever the rules say.
//!
//! Rules apply **per host**: archives of different hosts in one folder are independent
//! (`--keep-last 3` keeps three of each host, and each host's newest always survives),
//! so several machines can share one backup folder without one crowding out the other.

use crate::archive::SUFFIX;
use crate::cli::KeepArgs;
use crate::error::{Error, Result};
use jiff::Timestamp;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const PREFIX: &str = "forgekeep-";
/// `YYYYmmddTHHMMSSZ`
const STAMP_LEN: usize = 16;

/// One archive file of a folder, as named by `forgekeep backup -o DIR/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Where it is: a path, or an `s3://` URL (an archive argument either way).
    pub path: PathBuf,
    pub name: String,
    pub host: String,
    pub time: Timestamp,
    /// Bytes.
    pub size: u64,
}

/// The name `backup -o DIR/` gives an archive made at `time` (to the second, UTC), which
/// [`parse_name`] reads back. Unique in a folder because backup picks it under the
/// folder's lock and waits for the next second when it is taken.
pub fn archive_name(host: &str, time: Timestamp) -> String {
    format!("{PREFIX}{host}-{}{SUFFIX}", time.strftime("%Y%m%dT%H%M%SZ"))
}

/// `forgekeep-<host>-<YYYYmmddTHHMMSSZ>.tar.zst.age` → (host, time); anything else → None.
///
/// Strict: the host is one or more of the characters `host_for_filename` produces (ASCII
/// letters and digits, `.`, `-`, `_`; it may contain `-`, the stamp is the last
/// `-`-separated part), and the stamp must be a real UTC date and time.
pub fn parse_name(name: &str) -> Option<(String, Timestamp)> {
    let middle = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (host, stamp) = middle.rsplit_once('-')?;
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return None;
    }
    Some((host.to_string(), parse_stamp(stamp)?))
}

/// `20261125T030000Z` → the timestamp; exact width, digits only, a valid date and time.
fn parse_stamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != STAMP_LEN || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i32> {
        let part = &b[r];
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let dt = jiff::civil::DateTime::new(
        i16::try_from(digits(0..4)?).ok()?,
        digits(4..6)? as i8,
        digits(6..8)? as i8,
        digits(9..11)? as i8,
        digits(11..13)? as i8,
        digits(13..15)? as i8,
        0,
    )
    .ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(dt).ok()
}

/// The archives in `dir`: regular files with a valid archive name (symlinks and folders
/// are skipped even when named like one), newest first, ties by name.
pub fn list(dir: &Path) -> Result<Vec<Archive>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list folder", dir, &e))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io("cannot list folder", dir, &e))?;
        let Ok(name) = ent.file_name().into_string() else {
            continue;
        };
        let Some((host, time)) = parse_name(&name) else {
            continue;
        };
        let path = dir.join(&name);
        let size = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => m.len(),
            Ok(_) => continue,
            // Removed meanwhile (by someone else than forgekeep, which holds the lock).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("cannot inspect", &path, &e)),
        };
        out.push(Archive {
            path,
            name,
            host,
            time,
            size,
        });
    }
    sort_newest_first(&mut out);
    Ok(out)
}

/// Newest first, ties by name: the order every listing of a folder is given in.
pub fn sort_newest_first(v: &mut [Archive]) {
    v.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
}

/// The verdict on one archive, with the rules that keep it (empty when deleted):
/// `"last"`, `"hourly 2026-11-25T03"`, `"daily 2026-11-25"`, `"weekly 2026-W48"`,
/// `"monthly 2026-11"`, `"yearly 2026"`, or `"newest"` when only the always-keep-the-newest
/// guarantee keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub archive: Archive,
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// True when no rule asks to keep anything (all absent or 0): `prune` refuses to run then
/// (it would delete all but the newest of each host).
pub fn no_rule(keep: &KeepArgs) -> bool {
    rules(keep).iter().all(|(_, n)| *n == 0)
}

#[derive(Clone, Copy)]
enum Rule {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

fn rules(keep: &KeepArgs) -> [(Rule, u32); 6] {
    [
        (Rule::Last, keep.keep_last.unwrap_or(0)),
        (Rule::Hourly, keep.keep_hourly.unwrap_or(0)),
        (Rule::Daily, keep.keep_daily.unwrap_or(0)),
        (Rule::Weekly, keep.keep_weekly.unwrap_or(0)),
        (Rule::Monthly, keep.keep_monthly.unwrap_or(0)),
        (Rule::Yearly, keep.keep_yearly.unwrap_or(0)),
    ]
}

/// The period of `t` a rule counts in, also the text of the reason (`None` for `last`,
/// where every archive is its own period).
fn bucket(rule: Rule, t: Timestamp) -> String {
    let z = jiff::tz::TimeZone::UTC.to_datetime(t);
    match rule {
        Rule::Last => "last".into(),
        Rule::Hourly => format!("hourly {}", z.strftime("%Y-%m-%dT%H")),
        Rule::Daily => format!("daily {}", z.strftime("%Y-%m-%d")),
        Rule::Weekly => {
            let w = z.date().iso_week_date();
            format!("weekly {:04}-W{:02}", w.year(), w.week())
        }
        Rule::Monthly => format!("monthly {}", z.strftime("%Y-%m")),
        Rule::Yearly => format!("yearly {}", z.strftime("%Y")),
    }
}

/// Applies the rules to `archives` (any order; each host on its own) and returns one
/// decision per archive, in the order given. Pure: looks at names and times only.
pub fn plan(archives: &[Archive], keep: &KeepArgs) -> Vec<Decision> {
    let rules = rules(keep);
    let mut decisions: Vec<Decision> = archives
        .iter()
        .map(|a| Decision {
            archive: a.clone(),
            keep: false,
            reasons: Vec::new(),
        })
        .collect();
    // Indices newest first (ties by name), then split by host keeping that order.
    let mut order: Vec<usize> = (0..archives.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&archives[a], &archives[b]);
        b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name))
    });
    let mut by_host: HashMap<&str, Vec<usize>> = HashMap::new();
    for i in order {
        by_host.entry(&archives[i].host).or_default().push(i);
    }
    for idx in by_host.values() {
        // Per rule: how many periods are still to fill, and the last period filled.
        let mut left: Vec<u32> = rules.iter().map(|(_, n)| *n).collect();
        let mut last: Vec<Option<String>> = vec![None; rules.len()];
        for &i in idx {
            let d = &mut decisions[i];
            for (r, (rule, _)) in rules.iter().enumerate() {
                if left[r] == 0 {
                    continue;
                }
                let b = bucket(*rule, d.archive.time);
                // Newest first: the first archive met in a period is that period's newest.
                // `last` has no periods: every archive counts.
                if matches!(rule, Rule::Last) || last[r].as_deref() != Some(b.as_str()) {
                    left[r] -= 1;
                    d.keep = true;
                    d.reasons.push(b.clone());
                    last[r] = Some(b);
                }
            }
        }
        // restic (0.17+): when a period rule has periods left over (fewer periods with an
        // archive than it asks for), the oldest archive is kept too, so a young
        // installation with --keep-monthly 12 keeps its first archive.
        if let Some(&oldest) = idx.last() {
            for (r, (rule, _)) in rules.iter().enumerate() {
                if left[r] > 0 && !matches!(rule, Rule::Last) {
                    let what = bucket(*rule, decisions[oldest].archive.time);
                    let kind = what.split(' ').next().unwrap_or("").to_string();
                    let d = &mut decisions[oldest];
                    // Only an archive no rule keeps yet needs the extra reason.
                    if !d.keep || d.reasons.iter().any(|x| x.starts_with("oldest")) {
                        d.keep = true;
                        d.reasons.push(format!("oldest ({kind})"));
                    }
                }
            }
        }
        if let Some(&newest) = idx.first() {
            let d = &mut decisions[newest];
            if !d.keep {
                d.keep = true;
                d.reasons.push("newest".into());
            }
        }
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(host: &str, stamp: &str) -> Archive {
        let name = format!("forgekeep-{host}-{stamp}{SUFFIX}");
        let (h, time) = parse_name(&name).unwrap_or_else(|| panic!("bad test name {name}"));
        Archive {
            path: PathBuf::from(&name),
            name,
            host: h,
            time,
            size: 0,
        }
    }

    fn keep(
        last: Option<u32>,
        hourly: Option<u32>,
        daily: Option<u32>,
        weekly: Option<u32>,
        monthly: Option<u32>,
        yearly: Option<u32>,
    ) -> KeepArgs {
        KeepArgs {
            keep_last: last,
            keep_hourly: hourly,
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
            keep_yearly: yearly,
        }
    }

    #[test]
    fn made_names_parse_back() {
        let t: Timestamp = "2026-11-25T03:00:09.750Z".parse().unwrap();
        let name = archive_name("git.example.org", t);
        assert_eq!(
            name,
            "forgekeep-git.example.org-20261125T030009Z.tar.zst.age"
        );
        let (h, back) = parse_name(&name).unwrap();
        assert_eq!(
            (h.as_str(), back.as_second()),
            ("git.example.org", t.as_second())
        );
    }

    #[test]
    fn names_are_parsed_strictly() {
        let (h, t) = parse_name("forgekeep-git.example.org-20261125T030000Z.tar.zst.age").unwrap();
        assert_eq!(h, "git.example.org");
        assert_eq!(t.to_string(), "2026-11-25T03:00:00Z");
        // The host may contain `-`: the stamp is the last part.
        let (h, _) = parse_name("forgekeep-my-forge-01-20261125T030000Z.tar.zst.age").unwrap();
        assert_eq!(h, "my-forge-01");
        let (h, _) = parse_name("forgekeep-a_b-20261125T030000Z.tar.zst.age").unwrap();
        assert_eq!(h, "a_b");
        for bad in [
            "",
            "forgekeep-20261125T030000Z.tar.zst.age", // no host
            "forgekeep--20261125T030000Z.tar.zst.age", // empty host
            "forgekeep-git-20261125T030000Z.tar.zst",
            "forgekeep-git-20261125T030000Z.tar.zst.age.bak",
            "forgekeep-git-20261125T030000Z.tar.zst.age~",
            "Forgekeep-git-20261125T030000Z.tar.zst.age",
            "restore-undo-git-20261125T030000Z.tar.zst.age",
            "restore-undo-git-20261125T030000Z-2.tar.zst.age",
            ".forgekeep.tmp.123.00ff00ff00ff00ff",
            ".forgekeep.lock",
            "forgekeep-git-20261125T030000.tar.zst.age", // no Z
            "forgekeep-git-20261125T0300000Z.tar.zst.age", // too long
            "forgekeep-git-2026112T030000Z.tar.zst.age", // too short
            "forgekeep-git-20261325T030000Z.tar.zst.age", // month 13
            "forgekeep-git-20260230T030000Z.tar.zst.age", // Feb 30
            "forgekeep-git-20261125T240000Z.tar.zst.age", // hour 24
            "forgekeep-git-20261125T036000Z.tar.zst.age", // minute 60
            "forgekeep-git-2026112+T030000Z.tar.zst.age",
            "forgekeep-git-+0261125T030000Z.tar.zst.age",
            "forgekeep-gi t-20261125T030000Z.tar.zst.age",
            "forgekeep-gït-20261125T030000Z.tar.zst.age",
            "forgekeep-g/t-20261125T030000Z.tar.zst.age",
            "forgekeep-git-20261125t030000Z.tar.zst.age",
            "forgekeep-git-20261125T030000Z-2.tar.zst.age",
        ] {
            assert_eq!(parse_name(bad), None, "{bad:?} must not parse");
        }
    }

    /// Renders a plan as `stamp keep|del reasons` lines for table comparison.
    fn run(archives: &[Archive], k: &KeepArgs) -> Vec<String> {
        plan(archives, k)
            .iter()
            .map(|d| {
                let stamp = d.archive.name.rsplit('-').next().unwrap();
                let stamp = &stamp[..16];
                if d.keep {
                    format!("{stamp} keep {}", d.reasons.join(", "))
                } else {
                    format!("{stamp} del")
                }
            })
            .collect()
    }

    fn series(stamps: &[&str]) -> Vec<Archive> {
        let mut v: Vec<Archive> = stamps.iter().map(|s| a("git", s)).collect();
        sort_newest_first(&mut v);
        v
    }

    #[test]
    fn retention_table() {
        // Newest first. 2026-12-31 (Thu) and 2027-01-01 (Fri) are both in ISO week
        // 2026-W53; 2027-01-04 (Mon) starts 2027-W01; 2026-12-28 (Mon) starts 2026-W53.
        let s = series(&[
            "20270104T030000Z",
            "20270101T150000Z",
            "20270101T030000Z",
            "20261231T030000Z",
            "20261228T030000Z",
            "20261227T030000Z",
            "20261130T030000Z",
            "20261101T030000Z",
            "20251231T030000Z",
            "20250101T030000Z",
        ]);
        let none = None;
        #[rustfmt::skip]
        let table: Vec<(KeepArgs, Vec<&str>)> = vec![
            (keep(Some(3), none, none, none, none, none), vec![
                "20270104T030000Z keep last",
                "20270101T150000Z keep last",
                "20270101T030000Z keep last",
                "20261231T030000Z del",
                "20261228T030000Z del",
                "20261227T030000Z del",
                "20261130T030000Z del",
                "20261101T030000Z del",
                "20251231T030000Z del",
                "20250101T030000Z del",
            ]),
            (keep(none, none, Some(3), none, none, none), vec![
                "20270104T030000Z keep daily 2027-01-04",
                "20270101T150000Z keep daily 2027-01-01",
                "20270101T030000Z del", // same day, older
                "20261231T030000Z keep daily 2026-12-31",
                "20261228T030000Z del",
                "20261227T030000Z del",
                "20261130T030000Z del",
                "20261101T030000Z del",
                "20251231T030000Z del",
                "20250101T030000Z del",
            ]),
            (keep(none, none, none, Some(3), none, none), vec![
                "20270104T030000Z keep weekly 2027-W01",
                "20270101T150000Z keep weekly 2026-W53", // across the year boundary
                "20270101T030000Z del",
                "20261231T030000Z del", // same ISO week as 2027-01-01
                "20261228T030000Z del",
                "20261227T030000Z keep weekly 2026-W52", // a Sunday
                "20261130T030000Z del",
                "20261101T030000Z del",
                "20251231T030000Z del",
                "20250101T030000Z del",
            ]),
            (keep(none, none, none, none, Some(3), none), vec![
                "20270104T030000Z keep monthly 2027-01",
                "20270101T150000Z del",
                "20270101T030000Z del",
                "20261231T030000Z keep monthly 2026-12",
                "20261228T030000Z del",
                "20261227T030000Z del",
                "20261130T030000Z keep monthly 2026-11",
                "20261101T030000Z del",
                "20251231T030000Z del",
                "20250101T030000Z del",
            ]),
            (keep(none, none, none, none, none, Some(10)), vec![
                "20270104T030000Z keep yearly 2027",
                "20270101T150000Z del",
                "20270101T030000Z del",
                "20261231T030000Z keep yearly 2026",
                "20261228T030000Z del",
                "20261227T030000Z del",
                "20261130T030000Z del",
                "20261101T030000Z del",
                "20251231T030000Z keep yearly 2025", // only 3 years have one:
                "20250101T030000Z keep oldest (yearly)", // restic keeps the oldest too
            ]),
            (keep(none, Some(2), none, none, none, none), vec![
                "20270104T030000Z keep hourly 2027-01-04T03",
                "20270101T150000Z keep hourly 2027-01-01T15",
                "20270101T030000Z del",
                "20261231T030000Z del",
                "20261228T030000Z del",
                "20261227T030000Z del",
                "20261130T030000Z del",
                "20261101T030000Z del",
                "20251231T030000Z del",
                "20250101T030000Z del",
            ]),
            // Rules combine: kept by any; the reasons list every rule that keeps it.
            (keep(Some(1), none, Some(2), Some(2), Some(4), Some(2)), vec![
                "20270104T030000Z keep last, daily 2027-01-04, weekly 2027-W01, monthly 2027-01, yearly 2027",
                "20270101T150000Z keep daily 2027-01-01, weekly 2026-W53",
                "20270101T030000Z del",
                "20261231T030000Z keep monthly 2026-12, yearly 2026",
                "20261228T030000Z del",
                "20261227T030000Z del",
                "20261130T030000Z keep monthly 2026-11",
                "20261101T030000Z del",
                "20251231T030000Z keep monthly 2025-12",
                "20250101T030000Z del",
            ]),
            // keep_last 0 keeps nothing; the newest is kept all the same.
            (keep(Some(0), none, none, none, none, none), vec![
                "20270104T030000Z keep newest",
                "20270101T150000Z del",
                "20270101T030000Z del",
                "20261231T030000Z del",
                "20261228T030000Z del",
                "20261227T030000Z del",
                "20261130T030000Z del",
                "20261101T030000Z del",
                "20251231T030000Z del",
                "20250101T030000Z del",
            ]),
            // No rule at all: the same (prune refuses this case before planning).
            (KeepArgs::default(), vec![
                "20270104T030000Z keep newest",
                "20270101T150000Z del",
                "20270101T030000Z del",
                "20261231T030000Z del",
                "20261228T030000Z del",
                "20261227T030000Z del",
                "20261130T030000Z del",
                "20261101T030000Z del",
                "20251231T030000Z del",
                "20250101T030000Z del",
            ]),
            // Huge N: everything kept, nothing overflows.
            (keep(Some(u32::MAX), Some(u32::MAX), Some(u32::MAX), Some(u32::MAX), Some(u32::MAX), Some(u32::MAX)), vec![
                "20270104T030000Z keep last, hourly 2027-01-04T03, daily 2027-01-04, weekly 2027-W01, monthly 2027-01, yearly 2027",
                "20270101T150000Z keep last, hourly 2027-01-01T15, daily 2027-01-01, weekly 2026-W53",
                "20270101T030000Z keep last, hourly 2027-01-01T03",
                "20261231T030000Z keep last, hourly 2026-12-31T03, daily 2026-12-31, monthly 2026-12, yearly 2026",
                "20261228T030000Z keep last, hourly 2026-12-28T03, daily 2026-12-28",
                "20261227T030000Z keep last, hourly 2026-12-27T03, daily 2026-12-27, weekly 2026-W52",
                "20261130T030000Z keep last, hourly 2026-11-30T03, daily 2026-11-30, weekly 2026-W49, monthly 2026-11",
                "20261101T030000Z keep last, hourly 2026-11-01T03, daily 2026-11-01, weekly 2026-W44",
                "20251231T030000Z keep last, hourly 2025-12-31T03, daily 2025-12-31, weekly 2026-W01, monthly 2025-12, yearly 2025",
                "20250101T030000Z keep last, hourly 2025-01-01T03, daily 2025-01-01, weekly 2025-W01, monthly 2025-01",
            ]),
            // A rule that keeps an older one but not the newest: the newest still survives.
            (keep(none, none, none, none, none, Some(1)), vec![
                "20270104T030000Z keep yearly 2027",
                "20270101T150000Z del",
                "20270101T030000Z del",
                "20261231T030000Z del",
                "20261228T030000Z del",
                "20261227T030000Z del",
                "20261130T030000Z del",
                "20261101T030000Z del",
                "20251231T030000Z del",
                "20250101T030000Z del",
            ]),
        ];
        for (k, want) in table {
            assert_eq!(run(&s, &k), want, "rules {k:?}");
        }
    }

    #[test]
    fn periods_are_utc_and_exact_at_the_edges() {
        // 23:59:59 and 00:00:00 are different days; the later one wins its day.
        let s = series(&["20261126T000000Z", "20261125T235959Z", "20261125T000000Z"]);
        assert_eq!(
            run(&s, &keep(None, None, Some(2), None, None, None)),
            vec![
                "20261126T000000Z keep daily 2026-11-26",
                "20261125T235959Z keep daily 2026-11-25",
                "20261125T000000Z del",
            ]
        );
        // Fewer days with an archive than the rule asks for: the oldest is kept as well,
        // as restic does.
        assert_eq!(
            run(&s, &keep(None, None, Some(5), None, None, None)),
            vec![
                "20261126T000000Z keep daily 2026-11-26",
                "20261125T235959Z keep daily 2026-11-25",
                "20261125T000000Z keep oldest (daily)",
            ]
        );
    }

    #[test]
    fn hosts_are_independent() {
        let mut v = vec![
            a("alpha", "20261125T030000Z"),
            a("alpha", "20261124T030000Z"),
            a("alpha", "20261123T030000Z"),
            a("beta-2", "20261101T030000Z"),
            a("beta-2", "20261001T030000Z"),
            a("beta", "20261125T030000Z"), // not the same host as beta-2
        ];
        // Same time on two hosts: a tie, ordered by name; both kept.
        v.push(a("gamma", "20261125T030000Z"));
        let d = plan(&v, &keep(Some(2), None, None, None, None, None));
        let kept: Vec<(&str, bool)> = d
            .iter()
            .map(|d| (d.archive.name.as_str(), d.keep))
            .collect();
        assert_eq!(
            kept,
            vec![
                ("forgekeep-alpha-20261125T030000Z.tar.zst.age", true),
                ("forgekeep-alpha-20261124T030000Z.tar.zst.age", true),
                ("forgekeep-alpha-20261123T030000Z.tar.zst.age", false),
                ("forgekeep-beta-2-20261101T030000Z.tar.zst.age", true),
                ("forgekeep-beta-2-20261001T030000Z.tar.zst.age", true),
                ("forgekeep-beta-20261125T030000Z.tar.zst.age", true),
                ("forgekeep-gamma-20261125T030000Z.tar.zst.age", true),
            ],
            "decisions come back in the order given"
        );
        // A host whose archives are all older than every other host's still keeps its newest.
        let d = plan(&v, &keep(None, None, Some(1), None, None, None));
        assert!(d
            .iter()
            .any(|d| d.keep && d.archive.name.contains("beta-2-20261101")));
        assert!(!d
            .iter()
            .any(|d| d.keep && d.archive.name.contains("beta-2-20261001")));
    }

    #[test]
    fn plan_does_not_depend_on_input_order() {
        let s = series(&[
            "20261125T030000Z",
            "20261124T030000Z",
            "20261124T010000Z",
            "20261001T030000Z",
        ]);
        let k = keep(Some(1), None, Some(2), None, Some(2), None);
        let mut rev = s.clone();
        rev.reverse();
        let mut a = plan(&s, &k);
        let mut b = plan(&rev, &k);
        a.sort_by(|x, y| x.archive.name.cmp(&y.archive.name));
        b.sort_by(|x, y| x.archive.name.cmp(&y.archive.name));
        assert_eq!(a, b);
        assert!(plan(&[], &k).is_empty());
    }

    #[test]
    fn no_rule_means_all_absent_or_zero() {
        assert!(no_rule(&KeepArgs::default()));
        assert!(no_rule(&keep(Some(0), None, Some(0), None, None, None)));
        assert!(!no_rule(&keep(Some(0), None, Some(1), None, None, None)));
    }

    #[test]
    fn listing_skips_everything_but_regular_archive_files() {
        let td = tempfile::tempdir().unwrap();
        let d = td.path();
        let names = [
            "forgekeep-git-20261125T030000Z.tar.zst.age",
            "forgekeep-git-20261124T030000Z.tar.zst.age",
            "forgekeep-other-20261124T030000Z.tar.zst.age",
        ];
        for n in names {
            std::fs::write(d.join(n), b"").unwrap();
        }
        std::fs::write(d.join("notes.txt"), b"").unwrap();
        std::fs::write(d.join(".forgekeep.lock"), b"").unwrap();
        std::fs::write(d.join("restore-undo-git-20261125T030000Z.tar.zst.age"), b"").unwrap();
        std::fs::create_dir(d.join("forgekeep-git-20261123T030000Z.tar.zst.age")).unwrap();
        std::os::unix::fs::symlink(
            d.join(names[0]),
            d.join("forgekeep-git-20261122T030000Z.tar.zst.age"),
        )
        .unwrap();
        let got: Vec<String> = list(d).unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(
            got,
            vec![
                "forgekeep-git-20261125T030000Z.tar.zst.age",
                "forgekeep-git-20261124T030000Z.tar.zst.age",
                "forgekeep-other-20261124T030000Z.tar.zst.age",
            ]
        );
        assert!(list(&d.join("missing")).is_err());
    }
}
