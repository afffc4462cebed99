//! The docker images' `environment-to-ini` (docs/FORGES.md §1.1): `GITEA__SECTION__KEY`
//! (and Forgejo's `FORGEJO__…`) variables written into app.ini at every container start,
//! decoded the way `modules/setting/config_env.go` does. Only the images do this: the
//! binary itself never reads them, so a native install's unit variables change nothing.

use super::super::ini::Ini;
use super::super::items::Builder;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Decodes an env-to-ini name part: `_0X2E_` is `.`, `_0X2D_` is `-`
/// (`modules/setting/config_env.go` `decodeEnvSectionKey`).
pub(crate) fn decode_part(s: &str) -> String {
    // `_0X<hex>_` is the UTF-8 bytes written in hex (`_0X2E_` is `.`, `_0XC3A9_` is `é`);
    // `_0x` as well, as config_env.go's pattern `_0[xX]([0-9a-fA-F]+)_` allows.
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("_0X").into_iter().chain(rest.find("_0x")).min() {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let decoded = after.find('_').and_then(|end| {
            let hex = &after[..end];
            if hex.is_empty() || !hex.len().is_multiple_of(2) {
                return None;
            }
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|j| u8::from_str_radix(&hex[j..j + 2], 16).ok())
                .collect();
            Some((String::from_utf8(bytes?).ok()?, end))
        });
        match decoded {
            Some((text, end)) => {
                out.push_str(&text);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[i..i + 3]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Applies `GITEA__SECTION__KEY=value` and `GITEA__SECTION__KEY__FILE=/path` overrides.
/// Returns the `__FILE` targets: `(section, KEY, path)`; their content is read into the
/// ini (it stays in memory and is never printed).
pub(crate) fn apply_env(
    ini: &mut Ini,
    env: &BTreeMap<String, String>,
    prefixes: &[&str],
    b: &Builder,
) -> Vec<(String, String, PathBuf)> {
    let mut files = Vec::new();
    for (name, value) in env {
        let Some(rest) = prefixes.iter().find_map(|p| name.strip_prefix(p)) else {
            continue;
        };
        // config_env.go: an exact `__FILE` suffix reads the value from a file; the
        // section ends at the FIRST `__`, the key is the rest (it may contain `__`).
        let (rest, is_file) = match rest.strip_suffix("__FILE") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let Some((sec, key)) = rest.split_once("__") else {
            continue;
        };
        if key.is_empty() {
            continue;
        }
        let sec = decode_part(sec);
        let sec = if sec.eq_ignore_ascii_case("DEFAULT") {
            String::new()
        } else {
            sec
        };
        let key = decode_part(key);
        if is_file {
            let path = PathBuf::from(value.trim());
            let content = b
                .read_text(&path)
                .map(|(_, t)| t.trim_end_matches(['\r', '\n']).to_string())
                .unwrap_or_else(|_| "\0unread".to_string());
            ini.set(&sec, &key, &content);
            files.push((sec, key.to_ascii_uppercase(), path));
        } else {
            ini.set(&sec, &key, value);
        }
    }
    files
}
