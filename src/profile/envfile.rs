//! A reader for env files: the `/etc/woodpecker/woodpecker-server.env` of the Woodpecker
//! packages (loaded by systemd's `EnvironmentFile=`), Drone's `.env`, compose `env_file:`.
//!
//! Accepted: `KEY=value`, `export KEY=value`, blank lines, whole-line `#` comments,
//! values in double quotes (with `\"`, `\\`, `\n` escapes) or single quotes (literal),
//! and ` #` comments after an unquoted value. Lines that are not assignments are skipped.
//! Values may be secrets: callers must never print them.

use std::collections::BTreeMap;

/// Parses an env file into KEY → value (later assignments win).
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for raw in text.lines() {
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .or_else(|| line.strip_prefix("export\t"))
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            continue;
        }
        out.insert(k.to_string(), value(v.trim()));
    }
    out
}

fn value(v: &str) -> String {
    if let Some(rest) = v.strip_prefix('"') {
        let mut s = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return s,
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some(o) => s.push(o),
                    None => {}
                },
                c => s.push(c),
            }
        }
        return s; // unterminated: take what is there
    }
    if let Some(rest) = v.strip_prefix('\'') {
        return match rest.find('\'') {
            Some(i) => rest[..i].to_string(),
            None => rest.to_string(),
        };
    }
    let cut = [" #", "\t#"]
        .iter()
        .filter_map(|p| v.find(p))
        .min()
        .unwrap_or(v.len());
    v[..cut].trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn woodpecker_server_env() {
        let env = parse(
            "# /etc/woodpecker/woodpecker-server.env\n\
             WOODPECKER_HOST=https://ci.example.org\n\
             export WOODPECKER_AGENT_SECRET=\"abc \\\"q\\\" def\"\n\
             WOODPECKER_GITEA=true # inline comment\n\
             WOODPECKER_GITEA_SECRET_FILE='/etc/woodpecker/gitea-secret'\n\
             WOODPECKER_DATABASE_DATASOURCE=\n\
             not an assignment\n\
             =novalue\n\
             WOODPECKER_HOST=https://override.example.org\n",
        );
        assert_eq!(env["WOODPECKER_HOST"], "https://override.example.org");
        assert_eq!(env["WOODPECKER_AGENT_SECRET"], "abc \"q\" def");
        assert_eq!(env["WOODPECKER_GITEA"], "true");
        assert_eq!(
            env["WOODPECKER_GITEA_SECRET_FILE"],
            "/etc/woodpecker/gitea-secret"
        );
        assert_eq!(env["WOODPECKER_DATABASE_DATASOURCE"], "");
        assert_eq!(env.len(), 5);
    }

    #[test]
    fn quotes_keep_hashes_and_spaces() {
        let env = parse("A=\"x # y\"\nB='a\\nb'\nC=\"line\\nnext\"\n");
        assert_eq!(env["A"], "x # y");
        assert_eq!(env["B"], "a\\nb");
        assert_eq!(env["C"], "line\nnext");
    }
}
