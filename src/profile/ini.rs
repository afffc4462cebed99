//! A small, tolerant reader for the `app.ini` of Gitea, Forgejo and Gogs.
//!
//! It reads what those forges' INI library (go-ini, as Gitea loads it) reads, closely
//! enough to find paths and flags: `[section]` headers, `KEY = value` lines (the first
//! `=` splits; `:` is NOT a delimiter, Gitea loads with `KeyValueDelimiters: "="`),
//! whole-line `;` and `#` comments (no inline ones), values in `"…"`, `'…'` or `` `…` `` quotes, and keys
//! before any header in the root section (where Gitea keeps `RUN_USER`, `WORK_PATH`).
//! Section and key names are matched case-insensitively. A line it does not understand
//! is skipped, never an error: a profile must still find the keys it can.
//!
//! The parsed values are secrets in part (`SECRET_KEY`, `PASSWD`): [`Ini`]'s `Debug`
//! shows section and key names only.

use std::collections::BTreeMap;
use std::fmt;

/// A parsed INI file: section (lowercase, `""` for the root) → key (uppercase) → value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Ini {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl fmt::Debug for Ini {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: values may be secrets.
        let mut m = f.debug_map();
        for (s, keys) in &self.sections {
            m.entry(s, &keys.keys().collect::<Vec<_>>());
        }
        m.finish()
    }
}

fn section_name(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

fn key_name(k: &str) -> String {
    k.trim().to_ascii_uppercase()
}

/// Strips one pair of matching quotes. There is no inline comment: Gitea loads app.ini
/// with go-ini's `IgnoreInlineComment: true` (`modules/setting/config_provider.go`), so
/// `KEY = a ; b` is the value `a ; b` (a SECRET_KEY may well contain `#` or `;`).
fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\'', '`'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

impl Ini {
    pub fn parse(text: &str) -> Ini {
        let mut ini = Ini::default();
        let mut current = String::new();
        ini.sections.entry(current.clone()).or_default();
        for raw in text.lines() {
            let line = raw.trim().trim_start_matches('\u{feff}');
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                if let Some(end) = rest.find(']') {
                    current = section_name(&rest[..end]);
                    ini.sections.entry(current.clone()).or_default();
                }
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let k = key_name(k);
            if k.is_empty() {
                continue;
            }
            ini.sections
                .entry(current.clone())
                .or_default()
                .insert(k, unquote(v));
        }
        ini
    }

    /// The value of `key` in `section` (`""` = root), as written.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(&section_name(section))
            .and_then(|s| s.get(&key_name(key)))
            .map(String::as_str)
    }

    /// The value when set and not empty.
    pub fn non_empty(&self, section: &str, key: &str) -> Option<&str> {
        self.get(section, key).filter(|v| !v.trim().is_empty())
    }

    /// A boolean the way Gitea reads one (`MustBool`: strconv.ParseBool), else `default`.
    pub fn bool_or(&self, section: &str, key: &str, default: bool) -> bool {
        match self
            .get(section, key)
            .map(|v| v.trim().to_ascii_lowercase())
        {
            Some(v) if ["1", "t", "true", "on", "yes", "y"].contains(&v.as_str()) => true,
            Some(v) if ["0", "f", "false", "off", "no", "n"].contains(&v.as_str()) => false,
            _ => default,
        }
    }

    /// Sets a value (environment overrides).
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        self.sections
            .entry(section_name(section))
            .or_default()
            .insert(key_name(key), value.to_string());
    }

    /// Every `(section, KEY, value)`, sections and keys in sorted order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.sections.iter().flat_map(|(s, keys)| {
            keys.iter()
                .map(move |(k, v)| (s.as_str(), k.as_str(), v.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_INI: &str = "\u{feff}APP_NAME = Gitea: Git with a cup of tea\n\
RUN_USER = git\n\
WORK_PATH = /var/lib/gitea\n\
\n\
; a comment\n\
# another\n\
[Server]\n\
  APP_DATA_PATH = \"/var/lib/gitea/data\"\n\
start_ssh_server=true\n\
SSH_SERVER_HOST_KEYS = ssh/gitea.rsa, ssh/gogs.rsa\n\
LFS_JWT_SECRET = ab#c;d\n\
[security]\n\
SECRET_KEY =\n\
INTERNAL_TOKEN = `a=b;c`\n\
garbage line without delimiter\n\
[database]\n\
PATH = 'data/gitea.db'\n";

    #[test]
    fn sections_keys_and_root() {
        let ini = Ini::parse(APP_INI);
        assert_eq!(ini.get("", "RUN_USER"), Some("git"));
        assert_eq!(ini.get("", "work_path"), Some("/var/lib/gitea"));
        assert_eq!(
            ini.get("server", "APP_DATA_PATH"),
            Some("/var/lib/gitea/data")
        );
        assert_eq!(ini.get("SERVER", "START_SSH_SERVER"), Some("true"));
        assert!(ini.bool_or("server", "START_SSH_SERVER", false));
        assert_eq!(
            ini.get("server", "SSH_SERVER_HOST_KEYS"),
            Some("ssh/gitea.rsa, ssh/gogs.rsa")
        );
        assert_eq!(ini.get("database", "PATH"), Some("data/gitea.db"));
        assert_eq!(ini.get("server", "LFS_JWT_SECRET"), Some("ab#c;d"));
        assert_eq!(
            ini.get("", "APP_NAME"),
            Some("Gitea: Git with a cup of tea")
        );
    }

    #[test]
    fn empty_quoted_and_missing_values() {
        let ini = Ini::parse(APP_INI);
        assert_eq!(ini.get("security", "SECRET_KEY"), Some(""));
        assert_eq!(ini.non_empty("security", "SECRET_KEY"), None);
        assert_eq!(ini.get("security", "INTERNAL_TOKEN"), Some("a=b;c"));
        assert_eq!(ini.get("security", "NOPE"), None);
        assert_eq!(ini.get("nosection", "X"), None);
        assert!(!ini.bool_or("oauth2", "ENABLED", false));
        assert!(ini.bool_or("oauth2", "ENABLED", true));
    }

    #[test]
    fn set_overrides_and_later_lines_win() {
        let mut ini = Ini::parse("[a]\nK = 1\nk = 2\n");
        assert_eq!(ini.get("a", "K"), Some("2"));
        ini.set("A", "k", "3");
        assert_eq!(ini.get("a", "K"), Some("3"));
        ini.set("new.section", "X", "y");
        assert_eq!(ini.get("New.Section", "x"), Some("y"));
    }

    #[test]
    fn debug_shows_no_values() {
        let ini = Ini::parse("[security]\nSECRET_KEY = hunter2-very-secret\n");
        let d = format!("{ini:?}");
        assert!(d.contains("SECRET_KEY"));
        assert!(!d.contains("hunter2"));
    }
}
