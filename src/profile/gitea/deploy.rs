//! Where each Gitea and Forgejo deployment keeps its app.ini, and the paths its process
//! starts with: read from the images' Dockerfiles and entrypoints and from the binary's
//! own `modules/setting/path.go` (docs/FORGES.md §1.1 for Gitea, §2.1 for Forgejo).
//!
//! The deployments differ where it matters for a backup:
//!
//! * native: the unit's `--config`, else `<custom>/conf/app.ini` from `GITEA_CUSTOM` /
//!   `GITEA_WORK_DIR` (Forgejo also `FORGEJO_*`, which win). The binary never reads
//!   `GITEA_APP_INI`; only the images' scripts do.
//! * rootful image (`Dockerfile`, `docker/root`): `${GITEA_CUSTOM:-/data/gitea}/conf/app.ini`;
//!   the `/usr/local/bin/gitea` wrapper sets the work path to `/data/gitea`; the s6 `run`
//!   script starts the forge from `/app/gitea`.
//! * Gitea's rootless image: `${GITEA_APP_INI:-/etc/gitea/app.ini}`, work path and working
//!   directory `/var/lib/gitea`.
//! * Forgejo's rootless image: the same before v8; from v8 `GITEA_APP_INI` is
//!   `/var/lib/gitea/custom/conf/app.ini` and the entrypoint uses the legacy
//!   `/etc/gitea/app.ini` instead whenever that file exists; v15 dropped the legacy file
//!   and its `VOLUME` (forgejo#11098). A tag that states no version gets the current
//!   release's rule, with a finding when a legacy file is what it would read.

use super::super::items::Builder;
use super::super::{Context, Forge, Layout};
use crate::findings::{Code, Severity};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a deployment decides before app.ini is read.
pub(crate) struct Deployment {
    /// The app.ini the forge reads.
    pub config: PathBuf,
    /// How it was chosen, for messages.
    pub how: String,
    /// The work path the image's wrapper gives when `GITEA_WORK_DIR` is not set.
    pub image_work: Option<&'static str>,
    /// The custom path the image gives when `GITEA_CUSTOM` is not set.
    pub image_custom: Option<&'static str>,
    /// The process's working directory, against which the forge resolves the relative
    /// paths it hands straight to the OS (`file:` secrets, the SQLite path, ...).
    /// `None` natively without a unit that says.
    pub cwd: Option<PathBuf>,
    /// The image runs `environment-to-ini` at start: `GITEA__…` variables are app.ini.
    pub env_to_ini: bool,
    /// What the entrypoint writes when there is no app.ini yet (`docker/*/etc/templates/
    /// app.ini`): the keys that decide where secrets go, for when app.ini cannot be read.
    pub template: String,
}

/// The env value for `names`, the first non-empty one.
pub(crate) fn env_first<'e>(env: &'e BTreeMap<String, String>, names: &[&str]) -> Option<&'e str> {
    names
        .iter()
        .filter_map(|n| env.get(*n))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

/// `GITEA_CUSTOM`, and for Forgejo `FORGEJO_CUSTOM` first (path.go reads it last, so it
/// wins).
pub(crate) fn custom_env(forge: Forge) -> &'static [&'static str] {
    match forge {
        Forge::Forgejo => &["FORGEJO_CUSTOM", "GITEA_CUSTOM"],
        _ => &["GITEA_CUSTOM"],
    }
}

pub(crate) fn work_env(forge: Forge) -> &'static [&'static str] {
    match forge {
        Forge::Forgejo => &["FORGEJO_WORK_DIR", "GITEA_WORK_DIR"],
        _ => &["GITEA_WORK_DIR"],
    }
}

/// The app.ini a native binary reads from its environment (`path.go`
/// `InitWorkPathAndCfgProvider`): `<custom>/conf/app.ini`, a relative custom path being
/// relative to the work path, else `<work>/custom/conf/app.ini`. Shared with detection,
/// which reads a systemd unit's environment, so both find the same file.
pub(crate) fn app_ini_from_env(
    forge: Forge,
    env: &BTreeMap<String, String>,
) -> Option<(PathBuf, &'static str)> {
    let work = env_first(env, work_env(forge));
    if let Some(c) = env_first(env, custom_env(forge)) {
        let base = PathBuf::from(work.unwrap_or("/"));
        return Some((base.join(c).join("conf/app.ini"), "the custom path"));
    }
    work.map(|w| (Path::new(w).join("custom/conf/app.ini"), "the work path"))
}

/// Known places of a native install's app.ini, the forge's own names first
/// (docs/FORGES.md §7).
pub(crate) fn native_candidates(forge: Forge) -> Vec<&'static str> {
    let gitea = [
        "/etc/gitea/app.ini",
        "/etc/gitea/conf/app.ini",
        "/var/lib/gitea/custom/conf/app.ini",
        "/usr/local/etc/gitea/conf/app.ini",
    ];
    let forgejo = [
        "/etc/forgejo/app.ini",
        "/etc/forgejo/conf/app.ini",
        "/var/lib/forgejo/custom/conf/app.ini",
        "/usr/local/etc/forgejo/conf/app.ini",
    ];
    match forge {
        Forge::Forgejo => forgejo.into_iter().chain(gitea).collect(),
        _ => gitea.into_iter().chain(forgejo).collect(),
    }
}

const ROOTLESS_WORK: &str = "/var/lib/gitea";
const ROOTLESS_CUSTOM: &str = "/var/lib/gitea/custom";
/// Gitea's rootless `GITEA_APP_INI`, and Forgejo's before v8 and legacy one until v14.
const ETC_APP_INI: &str = "/etc/gitea/app.ini";
/// Forgejo's rootless `GITEA_APP_INI=${GITEA_CUSTOM}/conf/app.ini` from v8.
const CUSTOM_APP_INI: &str = "/var/lib/gitea/custom/conf/app.ini";
const ROOTFUL_DATA: &str = "/data/gitea";

pub(crate) fn deployment(
    forge: Forge,
    config: Option<&Path>,
    ctx: &Context,
    b: &mut Builder,
) -> Deployment {
    let env = ctx.env;
    let get = |k: &str, default: &str| env_first(env, &[k]).unwrap_or(default).to_string();
    match ctx.layout {
        Layout::Native => {
            let (config, how) = match config {
                Some(c) => (c.to_path_buf(), "named on the command line".to_string()),
                None => match app_ini_from_env(forge, env) {
                    Some((p, how)) => (p, how.to_string()),
                    None => {
                        let cands = native_candidates(forge);
                        match cands.iter().find(|c| b.exists(Path::new(c))) {
                            Some(c) => (PathBuf::from(c), "a known location".to_string()),
                            None => (PathBuf::from(cands[0]), "the usual place".to_string()),
                        }
                    }
                },
            };
            Deployment {
                config,
                how,
                image_work: None,
                image_custom: None,
                cwd: ctx.working_dir.clone(),
                env_to_ini: false,
                template: String::new(),
            }
        }
        Layout::Docker => {
            // docker/root/etc/s6/gitea/setup writes and reads ${GITEA_CUSTOM}/conf/app.ini;
            // the binary, started by the wrapper with GITEA_CUSTOM=/data/gitea by default,
            // reads the same (a FORGEJO_CUSTOM wins in Forgejo's binary).
            let custom = env_first(env, custom_env(forge)).unwrap_or(ROOTFUL_DATA);
            let (config, how) = match config {
                Some(c) => (c.to_path_buf(), "named on the command line".to_string()),
                None => (
                    Path::new(custom).join("conf/app.ini"),
                    "the image's custom path".to_string(),
                ),
            };
            Deployment {
                config,
                how,
                image_work: Some(ROOTFUL_DATA),
                image_custom: Some(ROOTFUL_DATA),
                cwd: Some(PathBuf::from("/app/gitea")),
                env_to_ini: true,
                template: format!(
                    "RUN_USER = {}\n[server]\nAPP_DATA_PATH = {ROOTFUL_DATA}\nDISABLE_SSH = {}\n\
                     LFS_START_SERVER = {}\n",
                    get("USER", "git"),
                    get("DISABLE_SSH", "false"),
                    get("LFS_START_SERVER", "false"),
                ),
            }
        }
        Layout::DockerRootless => {
            let (config, how) = match config {
                Some(c) => (c.to_path_buf(), "named on the command line".to_string()),
                None => rootless_app_ini(forge, ctx, b),
            };
            Deployment {
                config,
                how,
                image_work: Some(ROOTLESS_WORK),
                image_custom: Some(ROOTLESS_CUSTOM),
                cwd: Some(PathBuf::from(ROOTLESS_WORK)),
                env_to_ini: true,
                template: format!(
                    "RUN_USER = {}\n[server]\nAPP_DATA_PATH = {}\nSTART_SSH_SERVER = true\n\
                     DISABLE_SSH = {}\nLFS_START_SERVER = {}\n",
                    get("USER", "git"),
                    env_first(env, work_env(forge)).unwrap_or(ROOTLESS_WORK),
                    get("DISABLE_SSH", "false"),
                    get("LFS_START_SERVER", ""),
                ),
            }
        }
    }
}

/// The app.ini a rootless image's entrypoint hands to the forge (`docker-entrypoint.sh`:
/// `gitea -c ${GITEA_APP_INI} web`), by image and version (docs/FORGES.md §2.1).
fn rootless_app_ini(forge: Forge, ctx: &Context, b: &mut Builder) -> (PathBuf, String) {
    let env = ctx.env;
    let is = |min: &[u32]| ctx.at_least(min);
    // From v16 docker-setup.sh exposes every FORGEJO_* variable as GITEA_* (forgejo#10215).
    let names: &[&str] = if forge == Forge::Forgejo && is(&[16]) != Some(false) {
        &["FORGEJO_APP_INI", "GITEA_APP_INI"]
    } else {
        &["GITEA_APP_INI"]
    };
    let set = env_first(env, names);
    if forge == Forge::Gitea || is(&[8]) == Some(false) {
        return match set {
            Some(p) => (PathBuf::from(p), "GITEA_APP_INI".into()),
            None => (
                PathBuf::from(ETC_APP_INI),
                "the image's GITEA_APP_INI".into(),
            ),
        };
    }
    let main = PathBuf::from(set.unwrap_or(CUSTOM_APP_INI));
    let main_how = if set.is_some() {
        "GITEA_APP_INI"
    } else {
        "the image's GITEA_APP_INI"
    };
    let legacy = PathBuf::from(env_first(env, &["GITEA_APP_INI_LEGACY"]).unwrap_or(ETC_APP_INI));
    // Probed only here: an /etc/gitea that is not mounted has no app.ini worth a word.
    let legacy_here = legacy != main && b.exists(&legacy);
    match is(&[15]) {
        // v8–v14: the entrypoint takes the legacy file whenever it exists.
        Some(false) if legacy_here => (
            legacy,
            "the legacy GITEA_APP_INI_LEGACY, which Forgejo 8 to 14 read when it exists".into(),
        ),
        Some(false) => (main, main_how.into()),
        Some(true) => {
            if legacy_here {
                b.finding(
                    Code::ConfigProblem,
                    Severity::Info,
                    &legacy,
                    format!(
                        "{} is a legacy app.ini that Forgejo 15 and later no longer read; \
                         this one reads {}",
                        legacy.display(),
                        main.display()
                    ),
                    "remove the stale file (and its volume) once you are sure it is not needed",
                );
            }
            (main, main_how.into())
        }
        // The tag says no version: the current release's rule, unless only the legacy
        // file exists (an older image, or one about to lose its configuration).
        None => {
            if !legacy_here || b.exists(&main) {
                if legacy_here {
                    b.finding(
                        Code::ConfigProblem,
                        Severity::Info,
                        &legacy,
                        format!(
                            "{} and {} both exist: Forgejo 8 to 14 read the first, 15 and \
                             later the second (this one is taken)",
                            legacy.display(),
                            main.display()
                        ),
                        "pin the image to a version, and remove the file that is not used",
                    );
                }
                (main, main_how.into())
            } else {
                b.finding(
                    Code::ConfigProblem,
                    Severity::Warning,
                    &legacy,
                    format!(
                        "the app.ini is at the legacy {}, which Forgejo 15 and later ignore: \
                         they start with a new app.ini at {} (new SECRET_KEY, no database \
                         settings)",
                        legacy.display(),
                        main.display()
                    ),
                    format!(
                        "move it to {} (on the /var/lib/gitea volume) before upgrading",
                        main.display()
                    ),
                );
                (legacy, "the legacy GITEA_APP_INI_LEGACY".into())
            }
        }
    }
}

/// The folders the forge derives once app.ini is read (`path.go`, `server.go`
/// `APP_DATA_PATH`), and where it resolves the relative paths it hands to the OS.
pub(crate) struct Paths {
    pub work: PathBuf,
    pub custom: PathBuf,
    pub data: PathBuf,
    cwd: Option<PathBuf>,
    cwd_assumed_said: bool,
    /// Forgejo from v16 resolves a relative `file:` secret against `APP_DATA_PATH`
    /// (forgejo#11194, `loadSecretFromURI`); before, and Gitea always, against the working
    /// directory. `None`: Forgejo of a version the deployment does not state.
    secrets_in_data: Option<bool>,
}

impl Paths {
    /// `WORK_PATH` in app.ini wins (Gitea 1.21+ writes it there); then the environment,
    /// then the image's wrapper; a relative custom path or `APP_DATA_PATH` is under the
    /// work path, and `APP_DATA_PATH` defaults to `<work>/data` in every deployment.
    pub fn derive(
        forge: Forge,
        ini: &super::super::ini::Ini,
        dep: &Deployment,
        ctx: &Context,
        ini_path: &Path,
        say_guess: bool,
        b: &mut Builder,
    ) -> Paths {
        use super::super::items::under;
        let work: PathBuf = if let Some(w) = ini.non_empty("", "WORK_PATH") {
            PathBuf::from(w.trim())
        } else if let Some(w) = env_first(ctx.env, work_env(forge)).or(dep.image_work) {
            PathBuf::from(w)
        } else if ini_path.ends_with("custom/conf/app.ini") {
            ini_path
                .ancestors()
                .nth(3)
                .unwrap_or(Path::new("/"))
                .to_path_buf()
        } else {
            let guess = if forge == Forge::Forgejo {
                "/var/lib/forgejo"
            } else {
                "/var/lib/gitea"
            };
            if say_guess {
                b.finding(
                    Code::ConfigProblem,
                    Severity::Info,
                    ini_path,
                    format!(
                        "app.ini has no WORK_PATH and no GITEA_WORK_DIR is known; assuming \
                         {guess} (the packaged unit's default); relative paths may be wrong"
                    ),
                    "start the forge once (it writes WORK_PATH since 1.21) or set WORK_PATH",
                );
            }
            PathBuf::from(guess)
        };
        let custom = match env_first(ctx.env, custom_env(forge)).or(dep.image_custom) {
            Some(c) => under(&work, c),
            None => work.join("custom"),
        };
        let data = match ini.non_empty("server", "APP_DATA_PATH") {
            Some(d) => under(&work, d),
            None => work.join("data"),
        };
        let secrets_in_data = match forge {
            Forge::Forgejo => ctx.at_least(&[16]),
            _ => Some(false),
        };
        Paths {
            work,
            custom,
            data,
            cwd: dep.cwd.clone(),
            cwd_assumed_said: false,
            secrets_in_data,
        }
    }

    /// `p` as the forge opens it when it hands it to the OS unchanged: relative to its
    /// working directory. Without a unit that states one, the work path (where packaged
    /// units start the forge), said once.
    pub fn at_cwd(&mut self, p: &str, b: &mut Builder) -> PathBuf {
        use super::super::items::under;
        if let Some(cwd) = &self.cwd {
            return under(cwd, p);
        }
        let path = under(&self.work, p);
        if !Path::new(p.trim()).is_absolute() && !self.cwd_assumed_said {
            self.cwd_assumed_said = true;
            b.finding(
                Code::ConfigProblem,
                Severity::Info,
                &path,
                format!(
                    "app.ini names {p:?}, a path the forge reads relative to its working \
                     directory, which no systemd unit states here: taken relative to the work \
                     path {}",
                    self.work.display()
                ),
                "use absolute paths in app.ini, or set WorkingDirectory= in the unit",
            );
        }
        path
    }

    /// Where a `file:` secret (`SECRET_KEY_URI = file:secret_key`) is read from; when
    /// the version does not say which rule applies, both places, the first existing one
    /// being the forge's.
    pub fn secret_file(&mut self, p: &str, b: &mut Builder) -> Vec<PathBuf> {
        use super::super::items::under;
        match self.secrets_in_data {
            Some(true) => vec![under(&self.data, p)],
            Some(false) => vec![self.at_cwd(p, b)],
            None => {
                let mut v = vec![under(&self.data, p), self.at_cwd(p, b)];
                v.dedup();
                v
            }
        }
    }
}
