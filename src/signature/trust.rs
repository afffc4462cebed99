//! Trust files: which keys may sign archives of which hosts.
//!
//! The format is OpenSSH's `allowed_signers` (ssh-keygen(1), "ALLOWED SIGNERS"), so the
//! same file serves `ssh-keygen -Y verify` in the plain-tools recovery and forgekeep:
//!
//! ```text
//! # principals          options                      key
//! git.example.org       namespaces="forgekeep"       ssh-ed25519 AAAAC3Nza…  backup key
//! *.example.org,!old.example.org  valid-before="20271231Z"  ssh-ed25519 AAAAC3Nza…
//! ```
//!
//! The principals are the host names whose archives the key may sign: an archive is
//! vouched for only when a line lists its signer's key AND a principal pattern matching
//! the host the (signed) manifest records, so host A's key cannot sign an archive that
//! claims to be host B's. Parsing and matching follow OpenSSH's own code
//! (`sshsig.c: parse_principals_key_and_options, sshsigopt_parse,
//! check_allowed_keys_line`; `match.c: match_pattern_list`; `misc.c:
//! parse_absolute_time`): the validity window is checked against the present time, as
//! `ssh-keygen -Y verify` does, so both verdicts agree. Certificate authorities
//! (`cert-authority`) are read but never match: archives are signed by plain keys.

use super::Signer;
use crate::error::{Error, Result};
use ssh_key::PublicKey;
use std::path::{Path, PathBuf};

/// Trust files are short lists of keys; the cap keeps a mistaken path bounded.
const MAX_TRUST_FILE: u64 = 1 << 20;

/// One line of a trust file.
#[derive(Debug, Clone)]
struct Allowed {
    line: usize,
    principals: String,
    namespaces: Option<String>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
    cert_authority: bool,
    key: PublicKey,
}

/// A parsed trust file.
#[derive(Debug, Clone)]
pub struct TrustFile {
    path: PathBuf,
    entries: Vec<Allowed>,
}

/// A trust file's verdict in favour of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    /// The host the archive records, which a principal pattern of the line matched.
    pub principal: String,
    /// The trust file and line that vouched.
    pub file: PathBuf,
    pub line: usize,
}

/// Why no line of a trust file vouches for an archive, most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    /// The file lists the key, but only for other hosts.
    Principal { host: String, principals: String },
    /// The file lists the key for this host, but not for the `forgekeep` namespace.
    Namespace { namespaces: String },
    /// The key's validity window has not begun.
    NotYetValid { valid_after: i64 },
    /// The key's validity window has ended.
    Expired { valid_before: i64 },
    /// No line lists the key.
    NotListed,
}

impl Untrusted {
    /// One line: why the archive is refused.
    pub fn describe(&self, signer: &Signer, file: &Path) -> String {
        let key = signer.fingerprint();
        let file = file.display();
        match self {
            Untrusted::Principal { host, principals } => format!(
                "{file} lists the signing key {key} for {}, not for {}, the host this archive claims to come from",
                crate::report::printable(principals),
                crate::report::printable(host)
            ),
            Untrusted::Namespace { namespaces } => format!(
                "{file} allows the signing key {key} only for namespaces {}, not \"{}\"",
                crate::report::printable(namespaces),
                super::NAMESPACE
            ),
            Untrusted::NotYetValid { valid_after } => format!(
                "{file} allows the signing key {key} only from {}",
                stamp(*valid_after)
            ),
            Untrusted::Expired { valid_before } => format!(
                "{file} allowed the signing key {key} only until {}",
                stamp(*valid_before)
            ),
            Untrusted::NotListed => format!("the signing key {key} is not in {file}"),
        }
    }

    /// How specific a reason is: a key found on some line beats "not listed".
    fn rank(&self) -> u8 {
        match self {
            Untrusted::NotListed => 0,
            Untrusted::Principal { .. } => 1,
            Untrusted::Namespace { .. } => 2,
            Untrusted::NotYetValid { .. } | Untrusted::Expired { .. } => 3,
        }
    }
}

fn stamp(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| t.to_string())
}

impl TrustFile {
    pub fn load(path: &Path) -> Result<TrustFile> {
        let text = crate::keys::read_capped_text(
            path,
            "the trust file",
            MAX_TRUST_FILE,
            "a trust file lists signing keys, one a line (OpenSSH allowed_signers format)",
        )?;
        TrustFile::parse(&text, path)
    }

    /// Parses the text of a trust file. A line OpenSSH would reject is an error naming
    /// the line: a trust file that silently lost a line would refuse good archives on
    /// the day they are needed. Lines with key types forgekeep cannot read are skipped
    /// with a warning (they can never vouch for an archive anyway).
    pub fn parse(text: &str, path: &Path) -> Result<TrustFile> {
        let mut entries = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            match parse_line(raw) {
                Ok(Some(mut a)) => {
                    a.line = line;
                    entries.push(a);
                }
                Ok(None) => {}
                Err(LineError::UnsupportedKey(kind)) => log::warn!(
                    "{}:{line}: skipped: {} keys cannot sign forgekeep archives",
                    path.display(),
                    crate::report::printable(&kind)
                ),
                Err(LineError::Invalid(why)) => {
                    return Err(Error::usage(format!(
                        "trust file {} line {line}: {why}",
                        path.display()
                    ))
                    .hint("each line is: PRINCIPALS [OPTIONS] ssh-ed25519 KEY (OpenSSH allowed_signers format)"))
                }
            }
        }
        Ok(TrustFile {
            path: path.to_path_buf(),
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Does a line vouch for `signer` signing an archive of `host`, at time `now`
    /// (seconds since the epoch)?
    pub fn judge(
        &self,
        signer: &Signer,
        host: &str,
        now: i64,
    ) -> std::result::Result<Vouched, Untrusted> {
        let mut best = Untrusted::NotListed;
        for a in &self.entries {
            if a.cert_authority || a.key.key_data() != signer.key.key_data() {
                continue;
            }
            let verdict = if match_pattern_list(host, &a.principals) != 1 {
                Err(Untrusted::Principal {
                    host: host.to_string(),
                    principals: a.principals.clone(),
                })
            } else if a
                .namespaces
                .as_deref()
                .is_some_and(|ns| match_pattern_list(super::NAMESPACE, ns) != 1)
            {
                Err(Untrusted::Namespace {
                    namespaces: a.namespaces.clone().unwrap_or_default(),
                })
            } else if let Some(t) = a.valid_after.filter(|t| now < *t) {
                Err(Untrusted::NotYetValid { valid_after: t })
            } else if let Some(t) = a.valid_before.filter(|t| now > *t) {
                Err(Untrusted::Expired { valid_before: t })
            } else {
                Ok(Vouched {
                    principal: host.to_string(),
                    file: self.path.clone(),
                    line: a.line,
                })
            };
            match verdict {
                Ok(v) => return Ok(v),
                Err(u) if u.rank() > best.rank() => best = u,
                Err(_) => {}
            }
        }
        Err(best)
    }
}

enum LineError {
    Invalid(String),
    UnsupportedKey(String),
}

/// Key types OpenSSH knows; a line whose key has one of these but that forgekeep
/// cannot parse is skipped rather than read as options.
const KEY_TYPE_PREFIXES: [&str; 6] = ["ssh-", "ecdsa-", "sk-", "rsa-", "webauthn-", "x509v3-"];

/// The trust file line that lets `signer` sign the archives of `host` (and nothing
/// else: `namespaces="forgekeep"` keeps the line from vouching for git commits or files
/// the same key might sign).
pub fn line(host: &str, signer: &Signer) -> String {
    let principal = if host.contains([' ', '\t', '"', ',', '*', '?', '!']) || host.is_empty() {
        // Not a pattern: a host name with such characters is quoted and matched as is.
        format!("\"{}\"", host.replace('"', ""))
    } else {
        host.to_string()
    };
    format!(
        "{principal} namespaces=\"{}\" {}",
        super::NAMESPACE,
        signer.openssh()
    )
}

/// One line: `None` for blank lines and comments.
fn parse_line(raw: &str) -> std::result::Result<Option<Allowed>, LineError> {
    let invalid = |s: &str| LineError::Invalid(s.to_string());
    let s = raw.trim_start_matches([' ', '\t', '\r']);
    if s.is_empty() || s.starts_with('#') {
        return Ok(None);
    }
    // Principals: one token, possibly quoted (misc.c strdelimw).
    let (principals, rest) = if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"').ok_or_else(|| invalid("unterminated quote"))?;
        (&q[..end], &q[end + 1..])
    } else {
        let end = s.find([' ', '\t', '"']).unwrap_or(s.len());
        (&s[..end], &s[end..])
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    if principals.is_empty() || rest.trim().is_empty() {
        return Err(invalid("expected principals, then a key"));
    }
    // Either the key follows, or an options token, then the key.
    let (options, key_text) = if starts_with_key_type(rest) {
        (None, rest)
    } else {
        let end = options_end(rest).ok_or_else(|| invalid("unterminated quote in the options"))?;
        let key = rest[end..].trim_start_matches([' ', '\t']);
        if key.trim().is_empty() {
            return Err(invalid("missing key"));
        }
        (Some(&rest[..end]), key)
    };
    let key_text = key_text.trim_end_matches(['\r', ' ', '\t']);
    let key = match PublicKey::from_openssh(key_text) {
        Ok(k) => k,
        Err(_) if starts_with_key_type(key_text) => {
            let kind = key_text.split([' ', '\t']).next().unwrap_or_default();
            if kind == "ssh-ed25519" {
                return Err(invalid("the ssh-ed25519 key is damaged"));
            }
            return Err(LineError::UnsupportedKey(kind.to_string()));
        }
        Err(_) => return Err(invalid("invalid key")),
    };
    let mut a = Allowed {
        line: 0,
        principals: principals.to_string(),
        namespaces: None,
        valid_after: None,
        valid_before: None,
        cert_authority: false,
        key,
    };
    if let Some(opts) = options {
        parse_options(opts, &mut a).map_err(invalid)?;
    }
    Ok(Some(a))
}

fn starts_with_key_type(s: &str) -> bool {
    KEY_TYPE_PREFIXES.iter().any(|p| s.starts_with(p))
}

/// The end of an options token: the first space or tab outside double quotes.
fn options_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted && b.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    (!quoted).then_some(b.len())
}

/// `sshsigopt_parse`: comma-separated, case-insensitive names, quoted values.
fn parse_options(mut s: &str, a: &mut Allowed) -> std::result::Result<(), &'static str> {
    while !s.is_empty() {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("cert-authority") {
            a.cert_authority = true;
            s = &s["cert-authority".len()..];
        } else if let Some(name) = ["namespaces", "valid-after", "valid-before"]
            .into_iter()
            .find(|n| lower.starts_with(n) && lower[n.len()..].starts_with('='))
        {
            let (value, rest) = dequote(&s[name.len() + 1..])?;
            s = rest;
            match name {
                "namespaces" => {
                    if a.namespaces.replace(value).is_some() {
                        return Err("multiple \"namespaces\" clauses");
                    }
                }
                "valid-after" => {
                    let t = parse_absolute_time(&value).ok_or("invalid \"valid-after\" time")?;
                    if a.valid_after.replace(t).is_some() {
                        return Err("multiple \"valid-after\" clauses");
                    }
                }
                _ => {
                    let t = parse_absolute_time(&value).ok_or("invalid \"valid-before\" time")?;
                    if a.valid_before.replace(t).is_some() {
                        return Err("multiple \"valid-before\" clauses");
                    }
                }
            }
        } else {
            return Err("unknown key option");
        }
        if s.is_empty() {
            break;
        }
        s = s.strip_prefix(',').ok_or("unknown key option")?;
        if s.is_empty() {
            return Err("unexpected end-of-options");
        }
    }
    if let (Some(after), Some(before)) = (a.valid_after, a.valid_before) {
        if before <= after {
            return Err("\"valid-before\" time is before \"valid-after\"");
        }
    }
    Ok(())
}

/// `opt_dequote`: `"value"` with `\"` escapes; returns the value and what follows.
fn dequote(s: &str) -> std::result::Result<(String, &str), &'static str> {
    let mut chars = s
        .strip_prefix('"')
        .ok_or("missing start quote")?
        .char_indices();
    let body = &s[1..];
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if body[i + 1..].starts_with('"') => {
                chars.next();
                out.push('"');
            }
            '"' => return Ok((out, &body[i + 1..])),
            c => out.push(c),
        }
    }
    Err("missing end quote")
}

/// `parse_absolute_time`: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in UTC with a
/// `Z` or `UTC` suffix, else in local time.
fn parse_absolute_time(s: &str) -> Option<i64> {
    // Byte-wise: the suffixes are ASCII, so cutting them keeps a char boundary.
    let b = s.as_bytes();
    let (digits, utc) = if b.len() > 1 && b[b.len() - 1].eq_ignore_ascii_case(&b'z') {
        (&s[..s.len() - 1], true)
    } else if b.len() > 3 && b[b.len() - 3..].eq_ignore_ascii_case(b"utc") {
        (&s[..s.len() - 3], true)
    } else {
        (s, false)
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<i16>().ok();
    let (h, m, sec) = match digits.len() {
        8 => (0, 0, 0),
        12 => (n(8..10)?, n(10..12)?, 0),
        14 => (n(8..10)?, n(10..12)?, n(12..14)?),
        _ => return None,
    };
    let dt = jiff::civil::DateTime::new(
        n(0..4)?,
        n(4..6)? as i8,
        n(6..8)? as i8,
        h as i8,
        m as i8,
        sec as i8,
        0,
    )
    .ok()?;
    let tz = if utc {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::system()
    };
    let t = tz.to_timestamp(dt).ok()?.as_second();
    (t != 0).then_some(t)
}

/// `match_pattern_list`: 1 when a pattern of the comma-separated list matches, -1 when
/// a negated one (`!pattern`) does (which wins), 0 otherwise.
pub fn match_pattern_list(s: &str, list: &str) -> i32 {
    let mut positive = 0;
    for sub in list.split(',') {
        let (negated, pattern) = match sub.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, sub),
        };
        if match_pattern(s.as_bytes(), pattern.as_bytes()) {
            if negated {
                return -1;
            }
            positive = 1;
        }
    }
    positive
}

/// `*` and `?` wildcards, byte-wise, in time linear in the input times the number of
/// stars (the classic backtrack to the last star; no recursion).
fn match_pattern(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOiKKC7lLUcyvJMo1gjvMr56XvOq814Hhin0OCYFAoT4";

    fn signer() -> Signer {
        Signer::of(PublicKey::from_openssh(KEY).unwrap())
    }

    fn parse(text: &str) -> TrustFile {
        TrustFile::parse(text, Path::new("trust")).unwrap()
    }

    #[test]
    fn patterns_as_openssh_matches_them() {
        assert_eq!(match_pattern_list("git.example.org", "git.example.org"), 1);
        assert_eq!(match_pattern_list("git.example.org", "*.example.org"), 1);
        assert_eq!(match_pattern_list("git.example.org", "gi?.example.*"), 1);
        assert_eq!(match_pattern_list("git.example.org", "other,*.org"), 1);
        assert_eq!(match_pattern_list("git.example.org", "*.org,!git.*"), -1);
        assert_eq!(match_pattern_list("git.example.org", "ci.example.org"), 0);
        assert_eq!(match_pattern_list("a", "*****b"), 0);
        assert!(!match_pattern(&[b'a'; 10_000], b"*b"));
    }

    #[test]
    fn a_line_vouches_for_its_host_only() {
        let t = parse(&format!("# backup keys\n\ngit.example.org {KEY} backup\n"));
        let v = t.judge(&signer(), "git.example.org", 0).unwrap();
        assert_eq!(v.line, 3);
        assert!(matches!(
            t.judge(&signer(), "ci.example.org", 0),
            Err(Untrusted::Principal { .. })
        ));
    }

    #[test]
    fn options_namespaces_and_validity() {
        let t = parse(&format!(
            "git namespaces=\"git,file\" {KEY}\nci valid-after=\"20300101\",valid-before=\"20310101Z\" {KEY}\n"
        ));
        assert!(matches!(
            t.judge(&signer(), "git", 0),
            Err(Untrusted::Namespace { .. })
        ));
        let y2029 = 1_861_920_000;
        let y2030_6 = 1_908_000_000;
        let y2032 = 1_956_528_000;
        assert!(matches!(
            t.judge(&signer(), "ci", y2029),
            Err(Untrusted::NotYetValid { .. })
        ));
        assert!(t.judge(&signer(), "ci", y2030_6).is_ok());
        assert!(matches!(
            t.judge(&signer(), "ci", y2032),
            Err(Untrusted::Expired { .. })
        ));
        let t = parse(&format!("git namespaces=\"forgekeep\" {KEY}\n"));
        assert!(t.judge(&signer(), "git", 0).is_ok());
    }

    #[test]
    fn unknown_key_is_not_listed_and_bad_lines_are_errors() {
        let t = parse("git ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFZ2ofY1M0vNqE6c0wX2sFxFYP0uAXzA1CCk2xvqKc2v\n");
        assert_eq!(t.judge(&signer(), "git", 0), Err(Untrusted::NotListed));
        for bad in [
            "git\n",
            &format!("git bogus-option {KEY}\n"),
            &format!("git valid-before=\"2030\" {KEY}\n"),
            &format!("git valid-after=\"20300101\",valid-before=\"20200101\" {KEY}\n"),
            &format!("git namespaces=\"a\",namespaces=\"b\" {KEY}\n"),
            &format!("git namespaces=\"a {KEY}\n"),
            "git ssh-ed25519 AAAA\n",
        ] {
            assert!(TrustFile::parse(bad, Path::new("t")).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoted_principals_and_cert_authorities() {
        let t = parse(&format!("\"git.example.org\" cert-authority {KEY}\n"));
        assert_eq!(
            t.judge(&signer(), "git.example.org", 0),
            Err(Untrusted::NotListed)
        );
    }

    #[test]
    fn times_in_utc_and_local() {
        assert_eq!(parse_absolute_time("19700102Z"), Some(86_400));
        assert_eq!(parse_absolute_time("197001020000UTC"), Some(86_400));
        assert_eq!(parse_absolute_time("19700102000001Z"), Some(86_401));
        assert_eq!(parse_absolute_time("1970010"), None);
        assert_eq!(parse_absolute_time("19701302Z"), None);
        // Found by fuzz/trust: a multi-byte character before the suffix.
        assert_eq!(parse_absolute_time("2026010\u{3a5}Z"), None);
        assert_eq!(parse_absolute_time("\u{3a5}utc"), None);
    }
}
