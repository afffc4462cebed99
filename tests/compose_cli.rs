//! The compose CLI as the oracle for forgekeep's own compose parser: for every fixture in
//! `tests/fixtures/compose/`, what `docker-compose config` prints (the real
//! implementation's normalised reading) and what forgekeep reads must agree on the
//! services, their images and builds, their environment after interpolation and
//! `env_file`s, their volumes, tmpfs and secrets, and the names docker gives the volumes.
//!
//! forgekeep keeps its own parser rather than reading this output when a CLI is there:
//! `detect --root` reads a dead host's disk, where no CLI can run with that host's
//! environment, so the parser stays in any case, and a second path would add code, not
//! remove any. The fixtures keep to what compose v1 (Debian's docker-compose 1.29) and the
//! compose specification read alike; where they differ (`${VAR:+…}`, a default that is
//! itself a variable `${A:-${B}}`, top-level `name:`, `env_file` `required:`), forgekeep
//! follows the specification (compose v2) and unit tests cover it.

use crate::engine;
use forgekeep::compose::{self, Engine, LoadOptions, Source};
use forgekeep::compose::{array_or_one as list, hash_iter as hash, str_of as text};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use yaml_rust2::{Yaml, YamlLoader};

/// The home both readings expand `~` with.
const HOME: &str = "/home/oracle";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mount {
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
    },
    Named {
        name: String,
        target: PathBuf,
        read_only: bool,
    },
    Anonymous {
        target: PathBuf,
    },
    Tmpfs {
        target: PathBuf,
    },
    Secret {
        name: String,
        target: PathBuf,
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reading {
    image: String,
    /// (context folder, Dockerfile, build args)
    build: Option<(PathBuf, PathBuf, BTreeMap<String, String>)>,
    env: BTreeMap<String, String>,
    mounts: BTreeSet<Mount>,
}

/// What both read from one compose file: the services, and the docker name of each
/// named volume.
pub type Project = (BTreeMap<String, Reading>, BTreeMap<String, String>);

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|dir| {
            ["docker-compose.yml", "compose.yaml"]
                .iter()
                .map(|n| dir.join(n))
                .find(|f| f.is_file())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn forgekeep_reads_every_fixture_as_the_compose_cli_does() {
    let name = "compose_cli::forgekeep_reads_every_fixture_as_the_compose_cli_does";
    let Some(cli) = engine::compose_cli() else {
        engine::skip(name, "no compose CLI (docker-compose or docker compose)");
        return;
    };
    let files = fixtures();
    assert!(files.len() >= 9, "fixtures: {files:?}");
    // The CLI takes a second to start (compose v1 is Python): all at once.
    let cli_readings: Vec<Project> = std::thread::scope(|s| {
        let runs: Vec<_> = files
            .iter()
            .map(|f| s.spawn(|| cli_reading(&cli, f)))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (file, theirs) in files.iter().zip(cli_readings) {
        let ours = forgekeep_reading(file);
        assert_eq!(
            ours.0.keys().collect::<Vec<_>>(),
            theirs.0.keys().collect::<Vec<_>>(),
            "{}: services",
            file.display()
        );
        for (svc, want) in &theirs.0 {
            assert_eq!(
                &ours.0[svc],
                want,
                "{}: service {svc} (left: forgekeep, right: {})",
                file.display(),
                cli.join(" ")
            );
        }
        assert_eq!(ours.1, theirs.1, "{}: volume names", file.display());
    }
}

/// `docker-compose config` in the fixture's folder, with only PATH and HOME set.
pub fn cli_reading(cli: &[String], file: &Path) -> Project {
    let dir = file.parent().unwrap();
    let out = engine::bounded(
        Command::new(&cli[0])
            .args(&cli[1..])
            .args(["-f", file.to_str().unwrap(), "config"])
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", HOME),
        60,
    );
    assert!(
        out.status.success(),
        "{} config {}: {}",
        cli.join(" "),
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = YamlLoader::load_from_str(&String::from_utf8_lossy(&out.stdout))
        .unwrap()
        .remove(0);
    let legacy = text(&doc["version"]).as_deref() == Some("1");
    let project = v1_project_name(dir);
    let secrets: BTreeMap<String, PathBuf> = hash(&doc["secrets"])
        .map(|(k, v)| (text(k).unwrap(), PathBuf::from(text(&v["file"]).unwrap())))
        .collect();
    let mut services = BTreeMap::new();
    let mut used = BTreeSet::new();
    for (name, s) in hash(&doc["services"]) {
        let mut r = Reading {
            image: text(&s["image"]).unwrap_or_default(),
            ..Reading::default()
        };
        if let Yaml::Hash(_) = &s["build"] {
            let context = PathBuf::from(text(&s["build"]["context"]).unwrap());
            let dockerfile = context
                .join(text(&s["build"]["dockerfile"]).unwrap_or_else(|| "Dockerfile".into()));
            let args = hash(&s["build"]["args"])
                .map(|(k, v)| (text(k).unwrap(), unescape(&text(v).unwrap_or_default())))
                .collect();
            r.build = Some((context, dockerfile, args));
        }
        for (k, v) in hash(&s["environment"]) {
            if let Some(v) = text(v) {
                r.env.insert(text(k).unwrap(), unescape(&v));
            }
        }
        for v in list(&s["volumes"]) {
            let m = match v {
                Yaml::Hash(_) => {
                    let target = PathBuf::from(text(&v["target"]).unwrap());
                    let read_only = matches!(v["read_only"], Yaml::Boolean(true));
                    match (text(&v["type"]).as_deref(), text(&v["source"])) {
                        (Some("bind"), Some(src)) => Mount::Bind {
                            source: src.into(),
                            target,
                            read_only,
                        },
                        (Some("volume"), Some(src)) => Mount::Named {
                            name: src,
                            target,
                            read_only,
                        },
                        (Some("volume"), None) => Mount::Anonymous { target },
                        (Some("tmpfs"), _) => Mount::Tmpfs { target },
                        other => panic!("{}: volume {other:?}", file.display()),
                    }
                }
                short => {
                    let spec = text(short).unwrap();
                    let parts: Vec<&str> = spec.split(':').collect();
                    let read_only = parts
                        .get(2)
                        .is_some_and(|m| m.split(',').any(|o| o == "ro"));
                    match parts[..] {
                        [t] => Mount::Anonymous { target: t.into() },
                        [src, t, ..] if src.starts_with('/') => Mount::Bind {
                            source: src.into(),
                            target: t.into(),
                            read_only,
                        },
                        [src, t, ..] => Mount::Named {
                            name: src.into(),
                            target: t.into(),
                            read_only,
                        },
                        _ => panic!("{spec}"),
                    }
                }
            };
            if let Mount::Named { name, .. } = &m {
                used.insert(name.clone());
            }
            r.mounts.insert(m);
        }
        for t in list(&s["tmpfs"]) {
            r.mounts.insert(Mount::Tmpfs {
                target: text(t).unwrap().split(':').next().unwrap().into(),
            });
        }
        for sec in list(&s["secrets"]) {
            let (source, target) = match sec {
                Yaml::Hash(_) => (text(&sec["source"]).unwrap(), text(&sec["target"])),
                other => (text(other).unwrap(), None),
            };
            let target = Path::new("/run/secrets").join(target.unwrap_or_else(|| source.clone()));
            r.mounts.insert(Mount::Secret {
                file: secrets.get(&source).cloned(),
                name: source,
                target,
            });
        }
        services.insert(text(name).unwrap(), r);
    }
    // Docker's name for each named volume: `name:` (external ones always have one), else
    // `<project>_<key>`, or the key itself in a version 1 file.
    let mut names = BTreeMap::new();
    for key in used {
        let declared = &doc["volumes"][key.as_str()];
        let docker = text(&declared["name"]).unwrap_or_else(|| {
            if legacy {
                key.clone()
            } else {
                format!("{project}_{key}")
            }
        });
        names.insert(key, docker);
    }
    (services, names)
}

/// forgekeep's reading of the same file, with the same environment.
pub fn forgekeep_reading(file: &Path) -> Project {
    let env: BTreeMap<String, String> = [("HOME".to_string(), HOME.to_string())].into();
    let p = compose::load_with(
        file,
        LoadOptions {
            env: env.clone(),
            project_name: None,
            engine: Arc::new(Engine::none()),
            root: None,
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut services = BTreeMap::new();
    let mut names = BTreeMap::new();
    for s in &p.services {
        let mut r = Reading {
            image: s.image.clone(),
            env: s.env.clone(),
            ..Reading::default()
        };
        if let Some(b) = &s.build {
            let args = b
                .args
                .iter()
                .map(|(k, v)| {
                    let v = v.clone().or_else(|| env.get(k).cloned());
                    (k.clone(), v.unwrap_or_default())
                })
                .collect();
            r.build = Some((
                b.context_dir.clone().unwrap(),
                b.dockerfile.clone().unwrap(),
                args,
            ));
        }
        for m in s.mounts.list() {
            let target = m.target.clone();
            let read_only = m.read_only;
            r.mounts.insert(match &m.source {
                Source::Bind { path, .. } => Mount::Bind {
                    source: path.clone(),
                    target,
                    read_only,
                },
                Source::Volume {
                    name, docker_name, ..
                } => {
                    names.insert(name.clone(), docker_name.clone());
                    Mount::Named {
                        name: name.clone(),
                        target,
                        read_only,
                    }
                }
                Source::Anonymous => Mount::Anonymous { target },
                Source::Tmpfs => Mount::Tmpfs { target },
                Source::File { name, path, .. } => Mount::Secret {
                    name: name.clone(),
                    target,
                    file: path.clone(),
                },
                Source::Other { kind } => panic!("{}: a {kind} mount", file.display()),
            });
        }
        services.insert(s.name.clone(), r);
    }
    (services, names)
}

/// compose 1.x's project name: the folder's name, lowercased, only `[-_a-z0-9]` kept.
fn v1_project_name(dir: &Path) -> String {
    dir.file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect()
}

/// `config` prints values ready to be read again: a literal `$` is `$$`.
fn unescape(s: &str) -> String {
    s.replace("$$", "$")
}
