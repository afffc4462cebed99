//! Finding the forges installed natively on this host (docs/FORGES.md §7): their systemd
//! units (with the configuration their `ExecStart`/`Environment=`/`EnvironmentFile=`
//! name) and their configuration files at the known places.
//!
//! The file-system root is a parameter so tests can build a fake tree; the paths
//! reported are the host's own (`/etc/gitea/app.ini`), never prefixed with the root.

use super::gitea::{app_ini_from_env, native_candidates};
use super::{envfile, Forge};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One installation found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    pub forge: Forge,
    /// The configuration to resolve it with (`resolve`'s `config`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// How it was found: "config file /etc/gitea/app.ini",
    /// "systemd unit /etc/systemd/system/gitea.service".
    pub via: String,
    /// The environment the unit gives the service (`Environment=`, `EnvironmentFile=`):
    /// the forge resolves its paths with it, so the profile must too. Never
    /// serialized: values may be secrets.
    #[serde(skip)]
    pub env: BTreeMap<String, String>,
    /// The unit's `WorkingDirectory=`: where Gitea resolves the relative paths it hands
    /// to the OS (`file:` secrets, the SQLite path; docs/FORGES.md §1.1).
    #[serde(skip)]
    pub working_dir: Option<PathBuf>,
}

const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/local/lib/systemd/system",
];

const UNITS: [(&str, Forge); 7] = [
    ("gitea.service", Forge::Gitea),
    ("forgejo.service", Forge::Forgejo),
    ("woodpecker-server.service", Forge::Woodpecker),
    ("woodpecker-agent.service", Forge::WoodpeckerAgent),
    ("gitlab-runsvdir.service", Forge::Gitlab),
    ("gogs.service", Forge::Gogs),
    ("drone.service", Forge::Drone),
];

/// Native installations on this host (`/` as root).
pub fn detect(env: &BTreeMap<String, String>) -> Vec<Detected> {
    detect_in(Path::new("/"), env)
}

fn on(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// What a unit file says: its environment and its config file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Unit {
    env: BTreeMap<String, String>,
    env_files: Vec<PathBuf>,
    config: Option<PathBuf>,
    working_dir: Option<PathBuf>,
}

/// Splits a systemd value into words, honouring double and single quotes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_unit(text: &str) -> Unit {
    let mut u = Unit::default();
    for line in text.lines() {
        let line = line.trim();
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "Environment" => {
                for w in words(v) {
                    if let Some((a, b)) = w.split_once('=') {
                        u.env.insert(a.to_string(), b.to_string());
                    }
                }
            }
            "EnvironmentFile" => {
                let f = v.trim_start_matches('-');
                if !f.is_empty() {
                    u.env_files.push(PathBuf::from(f));
                }
            }
            "WorkingDirectory" => u.working_dir = Some(PathBuf::from(v.trim_start_matches('-'))),
            "ExecStart" => {
                let w = words(v.trim_start_matches(['@', '-', ':', '+', '!']));
                let mut it = w.iter();
                while let Some(a) = it.next() {
                    if a == "--config" || a == "-c" {
                        if let Some(p) = it.next() {
                            u.config = Some(PathBuf::from(p));
                        }
                    } else if let Some(p) = a.strip_prefix("--config=") {
                        u.config = Some(PathBuf::from(p));
                    }
                }
            }
            _ => {}
        }
    }
    u
}

/// The app.ini a Gitea-like unit points at: `--config`, else its environment.
fn ini_from(forge: Forge, u: &Unit) -> Option<PathBuf> {
    if let Some(c) = &u.config {
        return Some(match &u.working_dir {
            Some(w) if c.is_relative() => w.join(c),
            _ => c.clone(),
        });
    }
    let from_env = match forge {
        Forge::Gogs => {
            let get = |k: &str| u.env.get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
            get("GOGS_CUSTOM")
                .map(|c| c.join("conf/app.ini"))
                .or_else(|| get("GOGS_WORK_DIR").map(|w| w.join("custom/conf/app.ini")))
        }
        // The same search the profile runs (one function, so they cannot disagree).
        _ => app_ini_from_env(forge, &u.env).map(|(p, _)| p),
    };
    // Last resort: packaged units run the forge from its work folder.
    from_env.or_else(|| {
        u.working_dir
            .as_ref()
            .map(|w| w.join("custom/conf/app.ini"))
    })
}

/// Installations under `root`, found by unit files, then by configuration files.
pub fn detect_in(root: &Path, env: &BTreeMap<String, String>) -> Vec<Detected> {
    let mut out: Vec<Detected> = Vec::new();
    let exists = |p: &Path| on(root, p).exists();

    for (unit, forge) in UNITS {
        let Some(path) = UNIT_DIRS
            .iter()
            .map(|d| Path::new(d).join(unit))
            .find(|p| on(root, p).is_file())
        else {
            continue;
        };
        let text = std::fs::read_to_string(on(root, &path)).unwrap_or_default();
        let mut u = parse_unit(&text);
        // Environment files add to the unit's environment (GITEA_CUSTOM may be there).
        for f in u.env_files.clone() {
            if let Ok(t) = std::fs::read_to_string(on(root, &f)) {
                u.env.extend(envfile::parse(&t));
            }
        }
        let config = match forge {
            Forge::Gitea | Forge::Forgejo | Forge::Gogs => ini_from(forge, &u),
            Forge::Woodpecker | Forge::WoodpeckerAgent | Forge::Drone => {
                u.env_files.iter().find(|f| exists(f)).cloned()
            }
            Forge::Gitlab => Some(PathBuf::from("/etc/gitlab")),
        };
        out.push(Detected {
            forge,
            config,
            via: format!("systemd unit {}", path.display()),
            env: u.env.clone(),
            working_dir: u.working_dir.clone(),
        });
    }

    let mut files: Vec<(Forge, PathBuf, Option<PathBuf>)> = Vec::new();
    for forge in [Forge::Gitea, Forge::Forgejo] {
        // Each candidate file once, under the forge whose name is in its path.
        for c in native_candidates(forge) {
            let own = c.contains(forge.as_str());
            if own {
                files.push((forge, PathBuf::from(c), Some(PathBuf::from(c))));
            }
        }
    }
    for c in [
        "/home/git/gogs/custom/conf/app.ini",
        "/opt/gogs/custom/conf/app.ini",
    ] {
        files.push((Forge::Gogs, PathBuf::from(c), Some(PathBuf::from(c))));
    }
    files.push((
        Forge::Woodpecker,
        "/etc/woodpecker/woodpecker-server.env".into(),
        Some("/etc/woodpecker/woodpecker-server.env".into()),
    ));
    files.push((
        Forge::WoodpeckerAgent,
        "/etc/woodpecker/woodpecker-agent.env".into(),
        Some("/etc/woodpecker/woodpecker-agent.env".into()),
    ));
    files.push((
        Forge::Gitlab,
        "/etc/gitlab/gitlab-secrets.json".into(),
        Some("/etc/gitlab".into()),
    ));
    // This process's own environment may name a custom path (not GITEA_APP_INI: only
    // the images' scripts read that one, docs/FORGES.md §1.1).
    for (var, forge) in [
        ("GITEA_CUSTOM", Forge::Gitea),
        ("FORGEJO_CUSTOM", Forge::Forgejo),
        ("GOGS_CUSTOM", Forge::Gogs),
    ] {
        if let Some(v) = env.get(var).filter(|v| !v.is_empty()) {
            let p = Path::new(v).join("conf/app.ini");
            files.push((forge, p.clone(), Some(p)));
        }
    }

    for (forge, file, config) in files {
        if !exists(&file) {
            continue;
        }
        let known = out
            .iter_mut()
            .find(|d| d.forge == forge && (d.config == config || d.config.is_none()));
        match known {
            Some(d) => {
                if d.config.is_none() {
                    d.config = config;
                }
            }
            None => out.push(Detected {
                forge,
                config,
                env: BTreeMap::new(),
                working_dir: None,
                via: format!("config file {}", file.display()),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, p: &str, text: &str) {
        let h = on(root, Path::new(p));
        std::fs::create_dir_all(h.parent().unwrap()).unwrap();
        std::fs::write(h, text).unwrap();
    }

    #[test]
    fn unit_parsing() {
        let u = parse_unit(
            "[Service]\nUser=git\nWorkingDirectory=/var/lib/gitea/\n\
             ExecStart=/usr/local/bin/gitea web --config /etc/gitea/app.ini\n\
             Environment=USER=git HOME=/home/git \"GITEA_WORK_DIR=/var/lib/gitea\"\n\
             EnvironmentFile=-/etc/default/gitea\n",
        );
        assert_eq!(u.config, Some(PathBuf::from("/etc/gitea/app.ini")));
        assert_eq!(u.env["GITEA_WORK_DIR"], "/var/lib/gitea");
        assert_eq!(u.env["HOME"], "/home/git");
        assert_eq!(u.env_files, vec![PathBuf::from("/etc/default/gitea")]);
        assert_eq!(parse_unit("ExecStart=/bin/forgejo web -c=x\n").config, None);
        assert_eq!(
            parse_unit("ExecStart=/bin/forgejo web --config=/etc/forgejo/app.ini\n").config,
            Some(PathBuf::from("/etc/forgejo/app.ini"))
        );
    }

    #[test]
    fn fake_tree() {
        let dir = tempfile::TempDir::new().unwrap();
        let root = dir.path();
        // openSUSE-style Forgejo: config through GITEA_CUSTOM in the unit.
        write(
            root,
            "/usr/lib/systemd/system/forgejo.service",
            "[Service]\nEnvironment=GITEA_CUSTOM=/etc/forgejo FORGEJO_WORK_DIR=/var/lib/forgejo\nExecStart=/usr/bin/forgejo web\n",
        );
        write(root, "/etc/forgejo/conf/app.ini", "");
        write(
            root,
            "/usr/local/lib/systemd/system/woodpecker-server.service",
            "[Service]\nEnvironmentFile=/etc/woodpecker/woodpecker-server.env\nExecStart=/usr/local/bin/woodpecker-server\n",
        );
        write(
            root,
            "/etc/woodpecker/woodpecker-server.env",
            "WOODPECKER_HOST=x\n",
        );
        write(root, "/etc/gitea/app.ini", "");
        write(root, "/etc/gitlab/gitlab-secrets.json", "{}");
        let found = detect_in(root, &BTreeMap::new());
        let want = [
            (
                Forge::Forgejo,
                "/etc/forgejo/conf/app.ini",
                "systemd unit /usr/lib/systemd/system/forgejo.service",
            ),
            (
                Forge::Woodpecker,
                "/etc/woodpecker/woodpecker-server.env",
                "systemd unit /usr/local/lib/systemd/system/woodpecker-server.service",
            ),
            (
                Forge::Gitea,
                "/etc/gitea/app.ini",
                "config file /etc/gitea/app.ini",
            ),
            (
                Forge::Gitlab,
                "/etc/gitlab",
                "config file /etc/gitlab/gitlab-secrets.json",
            ),
        ];
        assert_eq!(found.len(), want.len(), "{found:?}");
        for (d, (f, c, via)) in found.iter().zip(want) {
            assert_eq!(
                (d.forge, d.config.as_deref(), d.via.as_str()),
                (f, Some(Path::new(c)), via)
            );
        }
    }
}
