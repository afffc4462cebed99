//! Services built locally (`build:`): the image their Dockerfile starts from.
//!
//! A stack that adds a theme, a CA certificate or a plugin to its forge builds its own
//! image `FROM gitea/gitea:1.22-rootless`. It is still that forge, with the base image's
//! paths, user and volumes; left unclassified, its JWT key and database were never
//! archived and nothing said so. So the Dockerfile is read the way the builder resolves
//! its base: global `ARG`s (defaults overridden by the service's `build.args`, bare
//! ones taken from the environment), `${VAR}` forms in `FROM`, `--platform`, named
//! stages (`FROM base AS final`, the final stage or `build.target`). What cannot be
//! read (a remote context, a missing Dockerfile) is said, never guessed.

use super::interp::{self, Vars};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use yaml_rust2::Yaml;

/// A service's `build:`, string or mapping form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Build {
    /// The context as written (after interpolation).
    pub context: String,
    /// Its host folder; `None` for a remote context (a git or http URL).
    pub context_dir: Option<PathBuf>,
    /// The Dockerfile, relative paths resolved against the context.
    pub dockerfile: Option<PathBuf>,
    /// `dockerfile_inline:`, the Dockerfile itself.
    #[serde(skip)]
    pub inline: Option<String>,
    /// `args:`: a value, or `None` for a bare name (taken from the environment).
    #[serde(skip)]
    pub args: BTreeMap<String, Option<String>>,
    /// `target:`, the stage built.
    pub target: Option<String>,
}

impl Build {
    /// Reads `build:`; `host_path` resolves a path written in the compose file.
    pub fn parse(y: &Yaml, host_path: &dyn Fn(&str) -> PathBuf) -> Option<Build> {
        let (context, map) = match y {
            Yaml::Hash(_) => (
                super::str_of(&y["context"]).unwrap_or_else(|| ".".into()),
                Some(y),
            ),
            other => (super::str_of(other)?, None),
        };
        let remote = is_remote(&context);
        let context_dir = (!remote).then(|| host_path(&context));
        let field = |k: &str| map.and_then(|m| super::str_of(&m[k]));
        let inline = field("dockerfile_inline");
        let dockerfile = if inline.is_some() {
            None
        } else {
            let name = field("dockerfile").unwrap_or_else(|| "Dockerfile".into());
            match &context_dir {
                Some(dir) => Some(super::mounts::clean(&dir.join(name))),
                // A remote context's Dockerfile is inside it; an absolute one is local.
                None => Path::new(&name).is_absolute().then(|| PathBuf::from(name)),
            }
        };
        let mut args = BTreeMap::new();
        match map.map(|m| &m["args"]) {
            Some(Yaml::Hash(h)) => {
                for (k, v) in h {
                    if let Some(k) = super::str_of(k) {
                        args.insert(k, super::str_of(v));
                    }
                }
            }
            Some(Yaml::Array(a)) => {
                for item in a.iter().filter_map(super::str_of) {
                    match item.split_once('=') {
                        Some((k, v)) => args.insert(k.to_string(), Some(v.to_string())),
                        None => args.insert(item, None),
                    };
                }
            }
            _ => {}
        }
        Some(Build {
            context,
            context_dir,
            dockerfile,
            inline,
            args,
            target: field("target"),
        })
    }

    /// The image the built stage starts from, or why it cannot be known. `env` gives
    /// bare build args their value, as compose does.
    pub fn base_image(&self, env: &Vars) -> Result<String, String> {
        let text = match (&self.inline, &self.dockerfile) {
            (Some(text), _) => text.clone(),
            (None, Some(path)) => read_capped(path)?,
            (None, None) => {
                return Err(format!(
                    "its build context {} is remote, and forgekeep reads only local Dockerfiles",
                    self.context
                ))
            }
        };
        let args: Vars = self
            .args
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone().or_else(|| env.get(k).cloned())?)))
            .collect();
        final_base(&text, &args, self.target.as_deref()).map_err(|why| match &self.dockerfile {
            Some(p) => format!("{}: {why}", p.display()),
            None => format!("its dockerfile_inline: {why}"),
        })
    }
}

/// A git or http(s) context: `https://…`, `git@host:repo`, `github.com/o/r`.
fn is_remote(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@") || context.starts_with("github.com/")
}

fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| {
        format!(
            "its Dockerfile {} cannot be read: {}",
            path.display(),
            crate::error::plain_io(&e)
        )
    })?;
    let mut buf = Vec::new();
    f.take(1 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {}", path.display(), crate::error::plain_io(&e)))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The base image of the stage `target` (the last stage without one), following
/// stages built `FROM` earlier stages. `args` are the build args given.
pub fn final_base(dockerfile: &str, args: &Vars, target: Option<&str>) -> Result<String, String> {
    let mut globals = Vars::new();
    // (stage name, base as written after substitution)
    let mut stages: Vec<(Option<String>, String)> = Vec::new();
    for line in instructions(dockerfile) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        match word.to_ascii_uppercase().as_str() {
            // Only the ARGs before the first FROM are visible to FROM lines.
            "ARG" if stages.is_empty() => {
                for decl in split_words(rest) {
                    let (name, default) = match decl.split_once('=') {
                        Some((n, d)) => (n.to_string(), Some(unquote(d))),
                        None => (decl.clone(), None),
                    };
                    let value = args.get(&name).cloned().or(default);
                    if let Some(v) = value {
                        globals.insert(name, v);
                    }
                }
            }
            "FROM" => {
                let words: Vec<String> = split_words(rest)
                    .into_iter()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let Some(image) = words.first() else {
                    return Err("a FROM without an image".into());
                };
                let image = interp::interpolate(image, &globals, &mut BTreeSet::new())
                    .map_err(|e| format!("FROM {image}: {e}"))?;
                if image.is_empty() {
                    return Err(format!("FROM {}: no image name", words[0]));
                }
                let name = match words.get(1).map(|w| w.to_ascii_lowercase()) {
                    Some(a) if a == "as" => words.get(2).map(|n| n.to_ascii_lowercase()),
                    _ => None,
                };
                stages.push((name, image));
            }
            _ => {}
        }
    }
    let mut index = match target {
        Some(t) => stages
            .iter()
            .position(|(n, _)| n.as_deref() == Some(&t.to_ascii_lowercase()))
            .ok_or_else(|| format!("no stage named {t:?} (build.target)"))?,
        None => stages
            .len()
            .checked_sub(1)
            .ok_or_else(|| "no FROM line".to_string())?,
    };
    // A stage built on an earlier stage: that stage's base, and so on (earlier only,
    // so this ends).
    loop {
        let base = stages[index].1.to_ascii_lowercase();
        match stages[..index]
            .iter()
            .rposition(|(n, _)| n.as_deref() == Some(&base))
        {
            Some(earlier) => index = earlier,
            None => return Ok(stages[index].1.clone()),
        }
    }
}

/// The Dockerfile's instructions, one string each: continuation lines joined (with the
/// `# escape=` parser directive's character), comment lines dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut escape = '\\';
    for line in text.lines() {
        let l = line.trim();
        let Some(directive) = l.strip_prefix('#') else {
            break;
        };
        match directive.trim().split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("escape") => {
                escape = v.trim().chars().next().unwrap_or('\\');
            }
            Some(_) => {}
            None => break, // a plain comment ends the directives
        }
    }
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') || (l.is_empty() && !current.is_empty()) {
            continue; // comments and empty lines inside a continuation vanish too
        }
        match l.strip_suffix(escape) {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(l);
                if !current.trim().is_empty() {
                    out.push(current.trim().to_string());
                }
                current.clear();
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Words separated by white space, quotes kept together (`ARG A="x y" B=1`).
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in s.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    s.to_string()
}

/// Whether an image reference or build context names a forge or CI project forgekeep
/// knows of (`example/gitea-custom`, `./forgejo`), and which word did.
pub fn forge_word(text: &str) -> Option<&'static str> {
    const WORDS: &[&str] = &["gitea", "forgejo", "woodpecker", "gitlab", "gogs", "drone"];
    let text = text.to_ascii_lowercase();
    WORDS.iter().copied().find(|w| text.contains(w))
}

/// Whether it names a CI runner (`gitea/act_runner`, `gitlab/gitlab-runner`,
/// `drone/drone-runner-docker`, `forgejo/runner`): it registers with the forge and holds
/// no secret the forge cannot issue again.
pub fn is_runner(text: &str) -> bool {
    text.to_ascii_lowercase().contains("runner")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(kv: &[(&str, &str)]) -> Vars {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bases() {
        let none = Vars::new();
        assert_eq!(
            final_base("FROM gitea/gitea:1.22-rootless\nCOPY x /y\n", &none, None).unwrap(),
            "gitea/gitea:1.22-rootless"
        );
        // Global ARG defaults, overridden by build args; braces and defaults.
        let df = "# syntax=docker/dockerfile:1\n# escape=\\\nARG VERSION=1.21\nARG FLAVOUR\nFROM --platform=$BUILDPLATFORM docker.io/gitea/gitea:${VERSION}${FLAVOUR:+-}${FLAVOUR} AS app\nRUN true\n";
        assert_eq!(
            final_base(df, &none, None).unwrap(),
            "docker.io/gitea/gitea:1.21"
        );
        assert_eq!(
            final_base(
                df,
                &vars(&[("VERSION", "1.22"), ("FLAVOUR", "rootless")]),
                None
            )
            .unwrap(),
            "docker.io/gitea/gitea:1.22-rootless"
        );
        // Multi-stage: the last stage, through the stages it is built on.
        let df = "FROM golang:1.22 AS build\nRUN make\nfrom codeberg.org/forgejo/forgejo:11-rootless as base\nFROM base AS final\nCOPY --from=build /x /y\n";
        assert_eq!(
            final_base(df, &none, None).unwrap(),
            "codeberg.org/forgejo/forgejo:11-rootless"
        );
        assert_eq!(final_base(df, &none, Some("build")).unwrap(), "golang:1.22");
        assert!(final_base(df, &none, Some("nope")).is_err());
        // Continuation lines and comments inside them.
        let df = "FROM \\\n  # the official image\n  woodpeckerci/woodpecker-server:v3\n";
        assert_eq!(
            final_base(df, &none, None).unwrap(),
            "woodpeckerci/woodpecker-server:v3"
        );
        // An ARG after the first FROM belongs to that stage: a later FROM cannot see it.
        let df = "FROM alpine\nARG X=gitea/gitea\nFROM $X\n";
        assert!(final_base(df, &none, None).is_err());
        assert!(final_base("RUN x\n", &none, None).is_err());
    }

    #[test]
    fn build_forms() {
        let host = |p: &str| Path::new("/srv/stack").join(p);
        let y = yaml_rust2::YamlLoader::load_from_str(
            "a: ./gitea\nb:\n  context: ./forgejo\n  dockerfile: docker/Dockerfile.custom\n  args:\n    - VERSION=11\n    - FLAVOUR\n  target: final\nc: https://github.com/o/r.git#main\nd:\n  dockerfile_inline: FROM gogs/gogs:0.13\n",
        )
        .unwrap()
        .remove(0);
        let a = Build::parse(&y["a"], &host).unwrap();
        assert_eq!(
            a.dockerfile.as_deref(),
            Some(Path::new("/srv/stack/gitea/Dockerfile"))
        );
        let b = Build::parse(&y["b"], &host).unwrap();
        assert_eq!(
            b.dockerfile.as_deref(),
            Some(Path::new("/srv/stack/forgejo/docker/Dockerfile.custom"))
        );
        assert_eq!(b.args["VERSION"].as_deref(), Some("11"));
        assert_eq!(b.args["FLAVOUR"], None);
        assert_eq!(b.target.as_deref(), Some("final"));
        let c = Build::parse(&y["c"], &host).unwrap();
        assert_eq!(c.context_dir, None);
        assert!(c
            .base_image(&Vars::new())
            .unwrap_err()
            .contains("is remote"));
        let d = Build::parse(&y["d"], &host).unwrap();
        assert_eq!(d.base_image(&Vars::new()).unwrap(), "gogs/gogs:0.13");
    }

    #[test]
    fn lookalikes() {
        assert_eq!(forge_word("example/Gitea-custom:1"), Some("gitea"));
        assert_eq!(forge_word("./forgejo"), Some("forgejo"));
        assert_eq!(forge_word("postgres:16"), None);
        assert!(is_runner("gitea/act_runner:0.2"));
        assert!(!is_runner("example/gitea-custom"));
    }
}
