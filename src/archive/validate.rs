//! The rules an UNTRUSTED archive must satisfy before anyone acts on it: the manifest's
//! own consistency, each tar member against its manifest entry, and `SHA256SUMS`
//! against the content hashed on the way (see [`super::reader`] for the order).
//!
//! Every check here is linear in the size of what it checks (a path of a million
//! components once cost 222 s of CPU in a check that re-hashed every prefix of every
//! path), and every limit is checked before the bytes it bounds are read.

use super::limits::{Limits, MAX_DEPTH, MAX_NAME_BYTES, MAX_PATH_BYTES};
use super::manifest::{Entry, Kind, Manifest, Role};
use super::strict_tar::{Member, MemberKind};
use super::sums::{self, Sha256Sum};
use super::SUMS_MEMBER;
use std::collections::HashMap;
use std::io::{BufRead, Read};

type Check<T = ()> = std::result::Result<T, String>;

/// The most `--exclude` patterns a manifest may record.
const MAX_EXCLUDES: usize = 1024;

/// What a valid manifest promises, for the ceilings that follow it.
#[derive(Debug, Clone, Copy)]
pub struct Totals {
    /// The sum of the sizes of the file entries.
    pub content_bytes: u64,
    /// The most bytes `SHA256SUMS` can need for these files (one line each, names
    /// escaped at worst).
    pub sums_bytes: u64,
}

/// A normalised absolute path within the fixed ceilings: no `.`, `..`, empty or
/// overlong component, no NUL, not `/` itself.
fn check_path(p: &str, what: &str) -> Check {
    let normal = p.len() > 1
        && p.starts_with('/')
        && !p.contains('\0')
        && p[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !normal {
        return Err(format!("the manifest records an unsafe {what} {p:?}"));
    }
    if p.len() > MAX_PATH_BYTES
        || p[1..].split('/').any(|c| c.len() > MAX_NAME_BYTES)
        || p.bytes().filter(|b| *b == b'/').count() > MAX_DEPTH
    {
        return Err(format!(
            "the manifest records a {what} longer than {MAX_PATH_BYTES} bytes, deeper than {MAX_DEPTH} folders, or with a name over {MAX_NAME_BYTES} bytes ({}…)",
            p.chars().take(60).collect::<String>()
        ));
    }
    Ok(())
}

fn is_under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// The folder holding `path` (`None` for a top-level entry, whose folder is `/`).
pub fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// The manifest's own rules, checked before any member is looked at, and its totals
/// against the ceilings.
pub fn manifest(m: &Manifest, limits: &Limits) -> Check<Totals> {
    for s in &m.sources {
        check_path(&s.path, "source path")?;
    }
    // `diff` compiles these globs: a backup has a handful, not thousands of huge ones.
    if m.exclude.len() > MAX_EXCLUDES || m.exclude.iter().any(|g| g.len() > MAX_PATH_BYTES) {
        return Err(format!(
            "the manifest records more than {MAX_EXCLUDES} --exclude patterns, or one longer than {MAX_PATH_BYTES} bytes"
        ));
    }
    if m.entries.len() > limits.max_entries {
        return Err(format!(
            "the manifest lists {} entries, more than --max-entries {}",
            m.entries.len(),
            limits.max_entries
        ));
    }
    // Kind of every entry seen so far, by path: one lookup per entry (its parent).
    let mut kinds: HashMap<&str, Kind> = HashMap::with_capacity(m.entries.len());
    let mut previous: Option<&str> = None;
    let mut totals = Totals {
        content_bytes: 0,
        sums_bytes: 0,
    };
    for e in &m.entries {
        check_path(&e.path, "path")?;
        // Strictly sorted: no duplicates, and every parent comes before what it holds.
        if previous.is_some_and(|p| p >= e.path.as_str()) {
            return Err(format!(
                "the manifest is not in order at {} (or lists it twice)",
                e.path
            ));
        }
        previous = Some(&e.path);
        let src = &m.sources[e.source].path;
        let inside = match e.role {
            Role::Content => e.path == *src || is_under(&e.path, src),
            Role::Ancestor => e.kind == Kind::Dir && is_under(src, &e.path),
        };
        if !inside {
            return Err(format!(
                "{} lies outside the sources the archive records",
                e.path
            ));
        }
        match e.kind {
            Kind::File => {}
            Kind::Dir if e.size == 0 && e.target.is_none() => {}
            Kind::Symlink
                if e.size == 0
                    && e.target.as_deref().is_some_and(|t| {
                        !t.is_empty() && !t.contains('\0') && t.len() <= MAX_PATH_BYTES
                    }) => {}
            _ => return Err(format!("the manifest entry {} is inconsistent", e.path)),
        }
        if e.path.starts_with("/forgekeep/") || e.path == "/forgekeep" {
            return Err(format!("{} collides with forgekeep's own members", e.path));
        }
        // Nothing may go through a link: every entry's folder is listed before it, as a
        // folder (a backup always records the folders above its sources). By induction
        // every folder above it is then a listed folder too, so ONE lookup per entry
        // proves what looking up every prefix would.
        if let Some(parent) = parent_of(&e.path) {
            match kinds.get(parent) {
                Some(Kind::Dir) => {}
                Some(_) => {
                    return Err(format!(
                        "{} lies below {parent}, which is not a directory",
                        e.path
                    ))
                }
                None => return Err(format!("{} is listed without its folder {parent}", e.path)),
            }
        }
        kinds.insert(e.path.as_str(), e.kind);
        if e.kind == Kind::File {
            totals.content_bytes = totals.content_bytes.saturating_add(e.size);
            // `\` + 64 hex + 2 spaces + the name, each byte escaped at worst + `\n`.
            totals.sums_bytes += 68 + 2 * e.path.len() as u64;
        }
    }
    if totals.content_bytes > limits.max_content_bytes {
        return Err(format!(
            "the manifest's files add up to {} bytes, more than --max-content-bytes {}",
            totals.content_bytes, limits.max_content_bytes
        ));
    }
    Ok(totals)
}

/// The member's name checked to be a plain relative path: no `..`, no absolute path,
/// no `.` or empty component; a folder's one trailing `/` is dropped (and only a
/// folder may have one).
pub fn member_name(m: &Member) -> Check<String> {
    let s = std::str::from_utf8(&m.path).map_err(|_| "a member name is not UTF-8".to_string())?;
    let s = match s.strip_suffix('/') {
        Some(rest) if m.kind == MemberKind::Dir => rest,
        _ => s,
    };
    let safe = !s.is_empty()
        && !s.starts_with('/')
        && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if !safe {
        return Err(format!(
            "unsafe member name {s:?} (absolute, empty, or with . or ..)"
        ));
    }
    Ok(s.to_string())
}

/// A tar member against the manifest entry it must be.
pub fn member(m: &Member, path: &str, e: &Entry) -> Check {
    if path != e.member_name() {
        return Err(format!(
            "member {path:?} is not what the manifest lists next ({})",
            e.path
        ));
    }
    let kind = match m.kind {
        MemberKind::File => Kind::File,
        MemberKind::Dir => Kind::Dir,
        MemberKind::Symlink => Kind::Symlink,
    };
    if kind != e.kind {
        return Err(format!(
            "{} is a {} in the tar but a {} in the manifest",
            e.path,
            kind.as_str(),
            e.kind.as_str()
        ));
    }
    if m.size != e.size {
        return Err(format!(
            "{}: size {} disagrees with the manifest ({})",
            e.path, m.size, e.size
        ));
    }
    if m.mode != e.mode || m.uid != e.uid as u64 || m.gid != e.gid as u64 {
        return Err(format!(
            "{}: owner or mode in the tar disagrees with the manifest",
            e.path
        ));
    }
    // GNU tar gives the file the owner NAMED in the header when it extracts by name, as
    // forgekeep does with the manifest's names: they must be the same (the writer stores
    // names of up to 32 bytes, the header's field size).
    let named = |n: &Option<String>| -> Vec<u8> {
        n.as_deref()
            .filter(|n| n.len() <= 32)
            .unwrap_or("")
            .as_bytes()
            .to_vec()
    };
    if m.uname != named(&e.user) || m.gname != named(&e.group) {
        return Err(format!(
            "{}: owner names in the tar disagree with the manifest",
            e.path
        ));
    }
    if kind == Kind::Symlink && m.link.as_deref() != e.target.as_deref().map(str::as_bytes) {
        return Err(format!(
            "{}: link target disagrees with the manifest",
            e.path
        ));
    }
    Ok(())
}

/// `SHA256SUMS` read as it streams, one line at a time (memory stays one line), against
/// the digests of the files in manifest order; the member may be no larger than
/// [`Totals::sums_bytes`] plus the manifest's line (checked by the caller before
/// reading). Its first line may be the manifest's own (`manifest_line`, as this build writes it;
/// archives of earlier builds lack it), and must be when the archive is signed: the
/// signature over SHA256SUMS then covers the manifest and, through it, every entry's
/// path, type, owner and mode.
pub fn sums(
    data: impl Read,
    m: &Manifest,
    digests: &[Option<Sha256Sum>],
    manifest_line: &str,
    manifest_line_required: bool,
) -> Check {
    let mut lines = std::io::BufReader::new(data);
    let mut files = m
        .entries
        .iter()
        .zip(digests)
        .filter_map(|(e, d)| d.as_ref().map(|d| (e, d)));
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        let n = lines
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{SUMS_MEMBER} cannot be read ({e})"))?;
        if first {
            first = false;
            if line == manifest_line.as_bytes() {
                continue;
            }
            if manifest_line_required {
                return Err(format!(
                    "{SUMS_MEMBER} does not begin with the manifest's checksum (the manifest was changed)"
                ));
            }
        }
        if n == 0 {
            break;
        }
        let text = std::str::from_utf8(&line)
            .ok()
            .and_then(|t| t.strip_suffix('\n'))
            .ok_or_else(|| format!("{SUMS_MEMBER} is malformed"))?;
        let (member, hex) =
            sums::parse_line(text).ok_or_else(|| format!("{SUMS_MEMBER} is malformed"))?;
        if member == super::MANIFEST_MEMBER {
            return Err(format!(
                "{SUMS_MEMBER}: the manifest's checksum does not match the manifest"
            ));
        }
        match files.next() {
            Some((e, d)) if e.member_name() == member => {
                if hex != sums::sha256_hex(d) {
                    return Err(format!("checksum mismatch for {}", e.path));
                }
            }
            Some((e, _)) => {
                return Err(format!(
                    "{SUMS_MEMBER} lists {member} where {} was expected (missing, extra, twice or out of order)",
                    e.path
                ))
            }
            None => {
                return Err(format!(
                    "{SUMS_MEMBER} lists {member}, which the archive does not hold"
                ))
            }
        }
    }
    if let Some((e, _)) = files.next() {
        return Err(format!("{SUMS_MEMBER} has no line for {}", e.path));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_within_the_ceilings() {
        assert!(check_path("/a/b", "path").is_ok());
        assert!(check_path(
            format!("/{}", "a/".repeat(300)).trim_end_matches('/'),
            "path"
        )
        .is_err());
        assert!(check_path(&format!("/{}", "x".repeat(256)), "path").is_err());
        assert!(check_path(&format!("/{}", "x".repeat(255)), "path").is_ok());
        assert!(check_path(&"/xxxxxxxxxxxxxxx".repeat(300), "path").is_err());
        assert!(check_path("/a//b", "path").is_err());
        assert!(check_path("/", "path").is_err());
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a"), None);
        assert_eq!(parent_of("/a/b/c"), Some("/a/b"));
    }
}
