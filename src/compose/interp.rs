//! Variable interpolation and `.env` files, the way docker compose does them.
//!
//! Compose replaces `${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}` and `${VAR+replacement}` in every
//! value of the file (not in keys), and `$$` stands for a literal `$`. Defaults and
//! replacements are themselves interpolated. A variable that is not set becomes the
//! empty string (compose warns; so do we, through the `warnings` set).
//!
//! Values never appear in error messages or warnings: only variable names and the
//! file's own texts (the `?error` message) do.

use std::collections::{BTreeMap, BTreeSet};

/// The variables interpolation can see: the process environment over the `.env` file.
pub type Vars = BTreeMap<String, String>;

/// Interpolates one value. `Err` carries a message naming the variable (no values).
pub fn interpolate(
    s: &str,
    vars: &Vars,
    warnings: &mut BTreeSet<String>,
) -> Result<String, String> {
    let lookup = |name: &str| vars.get(name).cloned();
    interpolate_with(s, &lookup, warnings)
}

/// [`interpolate`] with any lookup (the `.env` parser sees its own earlier keys).
pub fn interpolate_with(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut BTreeSet<String>,
) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' || i + 1 == chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let next = chars[i + 1];
        if next == '$' {
            out.push('$');
            i += 2;
        } else if next == '{' {
            let close = matching_brace(&chars, i + 2).ok_or_else(|| {
                "invalid interpolation format: a `${` without its `}`".to_string()
            })?;
            let inner: String = chars[i + 2..close].iter().collect();
            out.push_str(&braced(&inner, lookup, warnings)?);
            i = close + 1;
        } else if next == '_' || next.is_ascii_alphabetic() {
            let mut j = i + 1;
            while j < chars.len() && (chars[j] == '_' || chars[j].is_ascii_alphanumeric()) {
                j += 1;
            }
            let name: String = chars[i + 1..j].iter().collect();
            out.push_str(&value_or_warn(&name, lookup, warnings));
            i = j;
        } else {
            // Compose rejects this; a lone `$` is kept as it is, which is what the user
            // most likely meant.
            out.push('$');
            i += 1;
        }
    }
    Ok(out)
}

/// The index of the `}` closing a `${` whose body starts at `start`.
fn matching_brace(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 1;
    let mut k = start;
    while k < chars.len() {
        if chars[k] == '$' && chars.get(k + 1) == Some(&'{') {
            depth += 1;
            k += 2;
            continue;
        }
        if chars[k] == '}' {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
        k += 1;
    }
    None
}

fn value_or_warn(
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut BTreeSet<String>,
) -> String {
    lookup(name).unwrap_or_else(|| {
        warnings.insert(format!(
            "the variable {name} is not set: an empty string is used"
        ));
        String::new()
    })
}

/// The body of `${...}`.
fn braced(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut BTreeSet<String>,
) -> Result<String, String> {
    let name_len = inner
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(inner.len());
    let (name, rest) = inner.split_at(name_len);
    if name.is_empty() {
        return Err("invalid interpolation format: `${` not followed by a variable name".into());
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let sub =
        |text: &str, warnings: &mut BTreeSet<String>| interpolate_with(text, lookup, warnings);
    if rest.is_empty() {
        return Ok(value_or_warn(name, lookup, warnings));
    }
    // The operator is one or two characters (`-`, `:-`, ...), split on a character
    // boundary: a non-ASCII character after the name is an unknown operator, not a panic.
    let mut chars = rest
        .char_indices()
        .skip(if rest.starts_with(':') { 1 } else { 0 });
    let op_len = chars.next().map_or(rest.len(), |(i, c)| i + c.len_utf8());
    let (op, arg) = rest.split_at(op_len);
    match op {
        ":-" => {
            if non_empty {
                Ok(value.unwrap_or_default())
            } else {
                sub(arg, warnings)
            }
        }
        "-" => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                sub(arg, warnings)
            }
        }
        ":?" | "?" => {
            let ok = if op == ":?" { non_empty } else { set };
            if ok {
                Ok(value.unwrap_or_default())
            } else {
                // The message as written: interpolating it could put a value in it.
                let msg = arg;
                Err(if msg.is_empty() {
                    format!("required variable {name} is missing a value")
                } else {
                    format!("required variable {name} is missing a value: {msg}")
                })
            }
        }
        ":+" => {
            if non_empty {
                sub(arg, warnings)
            } else {
                Ok(String::new())
            }
        }
        "+" => {
            if set {
                sub(arg, warnings)
            } else {
                Ok(String::new())
            }
        }
        // The text after the operator may be a secret: only the name is shown.
        _ => Err(format!(
            "invalid interpolation format: ${{{name} followed by something other than :-, -, :?, ?, :+, + or }}"
        )),
    }
}

/// Parses a `.env` / `env_file` text: `KEY=value` lines, `export ` prefixes, `#` comments,
/// single quotes (literal), double quotes (escapes, may span lines, interpolated) and
/// unquoted values (interpolated, a ` #` starts a comment). A bare `KEY` takes its value
/// from `outer` and is skipped when `outer` does not have it. Interpolation sees the
/// file's own earlier keys first, then `outer`.
pub fn parse_dotenv(
    text: &str,
    outer: &Vars,
    warnings: &mut BTreeSet<String>,
) -> Result<Vars, String> {
    let mut out = Vars::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line_no = 1;
    while i < chars.len() {
        // Skip blank space and comment lines.
        match chars[i] {
            '\n' => {
                line_no += 1;
                i += 1;
                continue;
            }
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && chars[i] != '\n' {
            i += 1;
        }
        let mut key: String = chars[start..i]
            .iter()
            .collect::<String>()
            .trim()
            .to_string();
        if let Some(k) = key.strip_prefix("export ") {
            key = k.trim().to_string();
        }
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("line {line_no}: expected KEY=value"));
        }
        if i == chars.len() || chars[i] == '\n' {
            // A bare KEY.
            if let Some(v) = outer.get(&key) {
                out.insert(key, v.clone());
            }
            continue;
        }
        i += 1; // '='
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        let lookup = |name: &str| out.get(name).or_else(|| outer.get(name)).cloned();
        let value = match chars.get(i) {
            Some('\'') => {
                let s = i + 1;
                let e = (s..chars.len())
                    .find(|&k| chars[k] == '\'')
                    .ok_or_else(|| {
                        format!("line {line_no}: the value of {key} has no closing quote")
                    })?;
                i = e + 1;
                let v: String = chars[s..e].iter().collect();
                line_no += v.matches('\n').count();
                v
            }
            Some('"') => {
                let mut v = String::new();
                let mut k = i + 1;
                loop {
                    match chars.get(k) {
                        None => {
                            return Err(format!(
                                "line {line_no}: the value of {key} has no closing quote"
                            ))
                        }
                        Some('"') => break,
                        Some('\\') => {
                            match chars.get(k + 1) {
                                Some('n') => v.push('\n'),
                                Some('r') => v.push('\r'),
                                Some('t') => v.push('\t'),
                                Some('$') => v.push_str("$$"),
                                Some(&c) => v.push(c),
                                None => {}
                            }
                            k += 2;
                        }
                        Some(&c) => {
                            if c == '\n' {
                                line_no += 1;
                            }
                            v.push(c);
                            k += 1;
                        }
                    }
                }
                i = k + 1;
                interpolate_with(&v, &lookup, warnings)
                    .map_err(|e| format!("line {line_no}: {e}"))?
            }
            _ => {
                let s = i;
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                let mut v: String = chars[s..i].iter().collect();
                if let Some(p) = v.find(" #").or_else(|| v.find("\t#")) {
                    v.truncate(p);
                }
                interpolate_with(v.trim_end(), &lookup, warnings)
                    .map_err(|e| format!("line {line_no}: {e}"))?
            }
        };
        // Whatever follows a closing quote up to the end of the line is ignored.
        while i < chars.len() && chars[i] != '\n' {
            i += 1;
        }
        out.insert(key, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(s: &str, v: &Vars) -> Result<String, String> {
        interpolate(s, v, &mut BTreeSet::new())
    }

    #[test]
    fn forms() {
        let v = vars(&[("A", "x"), ("EMPTY", "")]);
        assert_eq!(run("${A}/$A/$A_/${A}_", &v).unwrap(), "x/x//x_");
        assert_eq!(run("${B:-./d}", &v).unwrap(), "./d");
        assert_eq!(run("${EMPTY:-d}|${EMPTY-d}|${B-d}", &v).unwrap(), "d||d");
        assert_eq!(run("${A:-d}", &v).unwrap(), "x");
        assert_eq!(run("${B:-${A}/y}", &v).unwrap(), "x/y");
        assert_eq!(run("${A:+r}|${B:+r}|${EMPTY+r}", &v).unwrap(), "r||r");
        assert_eq!(
            run("$$A and $${A} and 5$", &v).unwrap(),
            "$A and ${A} and 5$"
        );
    }

    #[test]
    fn required() {
        let v = vars(&[("EMPTY", "")]);
        let e = run("${SECRET:?set SECRET in .env}", &v).unwrap_err();
        assert!(
            e.contains("SECRET") && e.contains("set SECRET in .env"),
            "{e}"
        );
        assert!(run("${EMPTY:?}", &v).unwrap_err().contains("EMPTY"));
        assert_eq!(run("${EMPTY?}", &v).unwrap(), "");
        assert!(run("${NOPE?x}", &v).is_err());
        assert!(run("${A", &v).is_err());
        // Errors name the variable, never the rest of the text (it may be a secret).
        let e = run("pw-hunter2-${A:hunter2}", &v).unwrap_err();
        assert!(e.contains("${A ") && !e.contains("hunter2"), "{e}");
        assert!(!run("hunter2${", &v).unwrap_err().contains("hunter2"));
        assert!(!run("hunter2${:x}", &v).unwrap_err().contains("hunter2"));
    }

    #[test]
    fn unset_warns_without_value() {
        let mut w = BTreeSet::new();
        assert_eq!(
            interpolate("a${NOPE}b", &Vars::new(), &mut w).unwrap(),
            "ab"
        );
        assert_eq!(w.len(), 1);
        assert!(w.iter().next().unwrap().contains("NOPE"));
    }

    #[test]
    fn dotenv() {
        let text = "# c\nexport A=1\nB = 'lit $A' # x\nC=\"q $A\\n${B}\"\nD=plain $A # comment\nE\n\nF=\nG=\"multi\nline\"\n";
        let outer = vars(&[("E", "from-env"), ("A", "outer")]);
        let got = parse_dotenv(text, &outer, &mut BTreeSet::new()).unwrap();
        assert_eq!(got["A"], "1");
        assert_eq!(got["B"], "lit $A");
        assert_eq!(got["C"], "q 1\nlit $A");
        assert_eq!(got["D"], "plain 1");
        assert_eq!(got["E"], "from-env");
        assert_eq!(got["F"], "");
        assert_eq!(got["G"], "multi\nline");
        assert!(parse_dotenv("A='x\n", &outer, &mut BTreeSet::new()).is_err());
    }
}
