use super::*;
use crate::profile::{Locate, Location};
use std::time::{Duration, Instant};
use tempfile::TempDir;

fn opts(env: &[(&str, &str)], engine: Engine) -> LoadOptions {
    LoadOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        project_name: None,
        engine: Arc::new(engine),
        root: None,
    }
}

/// Writes `files` (relative path, content) under a new temporary folder.
fn tree(files: &[(&str, &str)]) -> TempDir {
    let t = TempDir::new().unwrap();
    for (p, content) in files {
        let p = t.path().join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    t
}

fn at(svc: &Service, path: &str) -> Location {
    svc.mounts.locate(Path::new(path))
}

/// The compose file of woodpecker-ci/woodpecker#4850 (the oracle test's fixture).
const REPORT: &str = include_str!("../../tests/fixtures/compose/report/docker-compose.yml");

#[test]
fn the_report() {
    let t = tree(&[
        ("Forge Stack/docker-compose.yml", REPORT),
        ("Forge Stack/.env", "WOODPECKER_AGENT_SECRET=s3cr3t-value\n"),
    ]);
    let dir = t.path().join("Forge Stack");
    let started = Instant::now();
    // The real `docker` (present here without an engine, or absent): either way it
    // cannot say where the volume is.
    let p = load_with(&dir.join("docker-compose.yml"), opts(&[], Engine::docker())).unwrap();
    assert_eq!(p.name, "forgestack");
    assert_eq!(p.dir, dir);
    assert_eq!(
        p.extra_files,
        [dir.join("docker-compose.yml"), dir.join(".env")]
    );

    let gitea = p.service("gitea").unwrap();
    assert_eq!(gitea.app, Some((Forge::Gitea, Layout::DockerRootless)));
    assert_eq!(
        at(gitea, "/var/lib/gitea/jwt/private.pem"),
        Location::NotPersistent {
            volume_line: "./gitea/jwt:/var/lib/gitea/jwt".into()
        }
    );
    assert_eq!(
        gitea
            .mounts
            .lost_how(Path::new("/var/lib/gitea/jwt/private.pem")),
        Some("an anonymous volume (lost on `docker compose down`)")
    );
    assert_eq!(
        at(gitea, "/etc/gitea/app.ini"),
        Location::Host(dir.join("gitea/config/app.ini"))
    );
    assert_eq!(
        at(gitea, "/var/lib/gitea/data/gitea.db"),
        Location::Host(dir.join("gitea/data/gitea.db"))
    );
    assert_eq!(
        gitea.mount_descriptions(),
        [
            "./gitea/git → /var/lib/gitea/git (bind)",
            "./gitea/data → /var/lib/gitea/data (bind)",
            "./gitea/config → /etc/gitea (bind)",
        ]
    );

    let wp = p.service("woodpecker-server").unwrap();
    assert_eq!(wp.app, Some((Forge::Woodpecker, Layout::Docker)));
    assert_eq!(wp.env["WOODPECKER_AGENT_SECRET"], "s3cr3t-value");
    assert_eq!(wp.env["WOODPECKER_GITEA"], "true");
    match at(wp, "/var/lib/woodpecker/woodpecker.sqlite") {
        Location::Unknown { why } => {
            assert!(
                why.starts_with("named volume forgestack_woodpecker-server-data"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        wp.mount_descriptions(),
        ["woodpecker-server-data → /var/lib/woodpecker (named volume forgestack_woodpecker-server-data)"]
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "docker was asked too slowly"
    );

    // No secret value in the JSON or the debug output; the keys are there.
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("s3cr3t-value"), "{json}");
    assert!(json.contains("WOODPECKER_AGENT_SECRET"));
    assert!(
        json.contains(r#""app":{"forge":"gitea","layout":"docker-rootless"}"#),
        "{json}"
    );
    assert!(!format!("{p:?}").contains("s3cr3t-value"));
}

#[test]
fn process_env_wins_over_dotenv_and_required_vars_fail() {
    let compose = "\
name: My_Forge
services:
  gitea:
    image: ${IMAGE:-gitea/gitea:1.22}
    environment:
      SECRET: ${SECRET}
      LITERAL: \"$$notavar\"
      PORT: 3000
      FROM_ENV:
      ABSENT:
    volumes:
      - ${DATA:-./data}:/data
";
    let t = tree(&[
        ("docker-compose.yml", compose),
        (".env", "SECRET=from-dotenv\nFROM_ENV=dotenv\n"),
    ]);
    let f = t.path().join("docker-compose.yml");
    let p = load_with(&f, opts(&[("SECRET", "from-process")], Engine::none())).unwrap();
    assert_eq!(p.name, "my_forge");
    let g = &p.services[0];
    assert_eq!(g.app, Some((Forge::Gitea, Layout::Docker)));
    assert_eq!(g.env["SECRET"], "from-process");
    assert_eq!(g.env["LITERAL"], "$notavar");
    assert_eq!(g.env["PORT"], "3000");
    assert_eq!(g.env["FROM_ENV"], "dotenv");
    assert!(!g.env.contains_key("ABSENT"));
    // Rootful: everything is under /data.
    assert_eq!(
        at(g, "/data/gitea/jwt/private.pem"),
        Location::Host(t.path().join("data/gitea/jwt/private.pem"))
    );
    assert_eq!(
        at(g, "/data/ssh/ssh_host_rsa_key"),
        Location::Host(t.path().join("data/ssh/ssh_host_rsa_key"))
    );

    // COMPOSE_PROJECT_NAME beats `name:`, as in compose.
    let p = load_with(
        &f,
        opts(&[("COMPOSE_PROJECT_NAME", "other")], Engine::none()),
    )
    .unwrap();
    assert_eq!(p.name, "other");

    let t = tree(&[(
        "compose.yaml",
        "services:\n  g:\n    image: gitea/gitea\n    environment:\n      K: ${GITEA_SECRET:?put it in .env}\n",
    )]);
    let e = load_with(&t.path().join("compose.yaml"), opts(&[], Engine::none())).unwrap_err();
    assert!(
        e.what.contains("GITEA_SECRET") && e.what.contains("put it in .env"),
        "{}",
        e.what
    );
    assert!(e.what.contains("services.g.environment.K"), "{}", e.what);
}

#[test]
fn long_syntax_relative_sources_env_files_and_forgejo() {
    let compose = "\
x-common: &common
  restart: always
  env_file:
    - ./forgejo.env
    - path: ./optional.env
      required: false
services:
  forgejo:
    <<: *common
    image: codeberg.org/forgejo/forgejo:11-rootless
    environment:
      - USER_UID=1000
      - BARE
    volumes:
      - type: bind
        source: ../shared/forgejo
        target: /var/lib/gitea
      - type: bind
        source: ~/forgejo-conf
        target: /etc/gitea
        read_only: true
      - type: tmpfs
        target: /tmp
      - type: volume
        target: /var/cache/x
  runner:
    image: data.forgejo.org/forgejo/runner:6
    env_file: runner.env
";
    let t = tree(&[
        ("stack/compose.yaml", compose),
        (
            "stack/forgejo.env",
            "FORGEJO__security__SECRET_KEY=abc\nUSER_UID=999\n",
        ),
        ("stack/runner.env", "X=1\n"),
    ]);
    let dir = t.path().join("stack");
    let p = load_with(
        &dir.join("compose.yaml"),
        opts(&[("HOME", "/home/u"), ("BARE", "b")], Engine::none()),
    )
    .unwrap();
    let f = p.service("forgejo").unwrap();
    assert_eq!(f.app, Some((Forge::Forgejo, Layout::DockerRootless)));
    assert_eq!(f.env["FORGEJO__security__SECRET_KEY"], "abc");
    assert_eq!(f.env["USER_UID"], "1000", "environment: wins over env_file");
    assert_eq!(f.env["BARE"], "b");
    assert_eq!(
        f.env_files,
        [dir.join("forgejo.env"), dir.join("optional.env")]
    );
    assert_eq!(
        at(f, "/var/lib/gitea/jwt/private.pem"),
        Location::Host(t.path().join("shared/forgejo/jwt/private.pem"))
    );
    assert_eq!(
        at(f, "/etc/gitea/app.ini"),
        Location::Host("/home/u/forgejo-conf/app.ini".into())
    );
    assert!(matches!(at(f, "/tmp/x"), Location::NotPersistent { .. }));
    assert!(matches!(
        at(f, "/var/cache/x/y"),
        Location::NotPersistent { .. }
    ));
    assert_eq!(
        f.mounts.lost_how(Path::new("/tmp/x")),
        Some("a tmpfs (lost on every restart)")
    );
    assert!(f.mounts.list()[1].read_only);
    assert_eq!(
        f.mount_descriptions()[1],
        "~/forgejo-conf → /etc/gitea (bind, read-only)"
    );
    // Only the forge's existing env_file is archived; the runner is not a known app.
    assert_eq!(p.service("runner").unwrap().app, None);
    assert_eq!(
        p.extra_files,
        [dir.join("compose.yaml"), dir.join("forgejo.env")]
    );
    // The runner is said to be one, not silently skipped.
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(
        p.notes,
        [Note {
            severity: Severity::Info,
            message: "service runner (data.forgejo.org/forgejo/runner:6) is a CI runner: forgekeep keeps no runner state".into(),
            fix: "nothing to keep: register the runner again after a restore".into(),
        }]
    );
}

#[test]
fn named_volumes_bind_backed_external_and_docker_answers() {
    let compose = "\
services:
  gitlab:
    image: gitlab/gitlab-ee:17.9.1-ee.0
    volumes:
      - config:/etc/gitlab
      - data:/var/opt/gitlab
      - logs:/var/log/gitlab:ro
volumes:
  config:
    driver: local
    driver_opts:
      type: none
      o: bind
      device: ./gitlab-config
  data:
    name: gitlab-data-explicit
  logs:
    external: true
";
    let t = tree(&[("docker-compose.yml", compose)]);
    // A fake docker that knows one volume and not the other.
    let fake = t.path().join("docker");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = volume ] || exit 0 # no containers\n\
         if [ \"$5\" = gitlab-data-explicit ]; then echo /var/lib/docker/volumes/gitlab-data-explicit/_data; \
         else echo \"Error response from daemon: get $5: no such volume\" >&2; exit 1; fi\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let engine = Engine::with_program(Some(fake), Duration::from_secs(5));
    let p = load_with(&t.path().join("docker-compose.yml"), opts(&[], engine)).unwrap();
    let g = &p.services[0];
    assert_eq!(g.app, Some((Forge::Gitlab, Layout::Docker)));
    assert_eq!(
        at(g, "/etc/gitlab/gitlab-secrets.json"),
        Location::Host(t.path().join("gitlab-config/gitlab-secrets.json"))
    );
    assert_eq!(
        at(g, "/var/opt/gitlab/gitlab-rails/etc/secrets.yml"),
        Location::Host(
            "/var/lib/docker/volumes/gitlab-data-explicit/_data/gitlab-rails/etc/secrets.yml"
                .into()
        )
    );
    match at(g, "/var/log/gitlab/x") {
        Location::Unknown { why } => assert!(why.contains("logs does not exist"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        g.mount_descriptions()[0],
        format!(
            "config → /etc/gitlab (volume bound to {})",
            t.path().join("gitlab-config").display()
        )
    );
    // The answer is cached: a second question does not run docker again.
    std::fs::remove_file(t.path().join("docker")).unwrap();
    assert!(matches!(at(g, "/var/opt/gitlab/x"), Location::Host(_)));
}

#[test]
fn docker_that_hangs_is_given_up() {
    let t = tree(&[(
        "docker-compose.yml",
        "services:\n  d:\n    image: drone/drone:2\n    volumes: [\"drone:/data\"]\nvolumes:\n  drone: {}\n",
    )]);
    let fake = t.path().join("docker");
    std::fs::write(&fake, "#!/bin/sh\nsleep 30\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let engine = Engine::with_program(Some(fake), Duration::from_millis(300));
    let p = load_with(&t.path().join("docker-compose.yml"), opts(&[], engine)).unwrap();
    let started = Instant::now();
    for _ in 0..3 {
        match at(&p.services[0], "/data/database.sqlite") {
            Location::Unknown { why } => assert!(why.contains("did not answer"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn suggestions_follow_the_file() {
    let compose = "\
services:
  gitea:
    image: gitea/gitea:1.22
  woodpecker-server:
    image: woodpeckerci/woodpecker-server:v3
    volumes:
      - ./volumes/woodpecker-server/db:/var/lib/woodpecker/db
  woodpecker-agent:
    image: woodpeckerci/woodpecker-agent:v3
    secrets: [agent_secret]
secrets:
  agent_secret:
    file: ./secrets/agent.txt
";
    let t = tree(&[("docker-compose.yml", compose), ("secrets/agent.txt", "x")]);
    let p = load_with(
        &t.path().join("docker-compose.yml"),
        opts(&[], Engine::none()),
    )
    .unwrap();
    let g = p.service("gitea").unwrap();
    assert_eq!(
        at(g, "/data/gitea/jwt/private.pem"),
        Location::NotPersistent {
            volume_line: "./volumes/gitea/data:/data".into()
        }
    );
    let wp = p.service("woodpecker-server").unwrap();
    assert_eq!(
        at(wp, "/var/lib/woodpecker/woodpecker.sqlite"),
        Location::NotPersistent {
            volume_line: "./volumes/woodpecker-server/woodpecker:/var/lib/woodpecker".into()
        }
    );
    assert_eq!(
        wp.mounts
            .lost_how(Path::new("/var/lib/woodpecker/woodpecker.sqlite")),
        Some("the container's own layer (lost when the container is recreated)")
    );
    let agent = p.service("woodpecker-agent").unwrap();
    assert_eq!(agent.app, Some((Forge::WoodpeckerAgent, Layout::Docker)));
    assert_eq!(
        at(agent, "/run/secrets/agent_secret"),
        Location::Host(t.path().join("secrets/agent.txt"))
    );
    assert_eq!(
        at(agent, "/etc/woodpecker/agent.conf"),
        Location::NotPersistent {
            volume_line: "./volumes/woodpecker-agent/woodpecker:/etc/woodpecker".into()
        }
    );
    assert!(p.extra_files.contains(&t.path().join("secrets/agent.txt")));
}

#[test]
fn digest_pinned_gitea_is_rootless_by_its_mounts() {
    let t = tree(&[(
        "c.yml",
        "services:\n  g:\n    image: gitea/gitea@sha256:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080706050403020100f\n    volumes:\n      - ./d:/var/lib/gitea\n      - ./c:/etc/gitea\n",
    )]);
    let p = load_with(&t.path().join("c.yml"), opts(&[], Engine::none())).unwrap();
    assert_eq!(
        p.services[0].app,
        Some((Forge::Gitea, Layout::DockerRootless))
    );
}

#[test]
fn bad_files_are_usage_errors() {
    let t = tree(&[("a.yml", "services: [\n"), ("b.yml", "- just a list\n")]);
    for f in ["a.yml", "b.yml", "missing.yml"] {
        let e = load_with(&t.path().join(f), opts(&[], Engine::none())).unwrap_err();
        assert!(e.what.contains(f), "{}", e.what);
    }
}

#[test]
fn project_names() {
    assert_eq!(normalize_project_name("Forge Stack"), "forgestack");
    assert_eq!(normalize_project_name("_-My.App_1"), "myapp_1");
}

#[test]
fn a_volume_subpath_that_leaves_the_volume_is_refused() {
    let t = tree(&[(
        "compose.yml",
        "services:\n  g:\n    image: gitea/gitea\n    volumes:\n      - type: volume\n        source: data\n        target: /data\n        volume:\n          subpath: ../../../etc\nvolumes:\n  data:\n",
    )]);
    let e = load_with(&t.path().join("compose.yml"), opts(&[], Engine::none()));
    match e {
        Err(e) => assert!(e.what.contains("leaves the volume"), "{}", e.what),
        Ok(p) => assert!(
            p.warnings.iter().any(|w| w.contains("leaves the volume")),
            "{:?}",
            p.warnings
        ),
    }
}

#[test]
fn volumes_compose_refuses_are_refused() {
    for (vol, says) in [
        (":/data", "empty source"),
        ("./x:data", "relative container path"),
    ] {
        let t = tree(&[(
            "compose.yml",
            &format!("services:\n  g:\n    image: gitea/gitea\n    volumes:\n      - \"{vol}\"\n"),
        )]);
        match load_with(&t.path().join("compose.yml"), opts(&[], Engine::none())) {
            Err(e) => assert!(e.what.contains(says), "{}", e.what),
            Ok(p) => assert!(
                p.warnings.iter().any(|w| w.contains(says)),
                "{:?}",
                p.warnings
            ),
        }
    }
}

/// A fake `docker` whose `ps` lists `lines` (tab-separated as forgekeep asks) and which
/// knows the volumes `<project>_data` of every project listed.
fn engine_listing(t: &TempDir, lines: &[String]) -> Engine {
    use std::os::unix::fs::PermissionsExt;
    let listing = t.path().join("ps.txt");
    std::fs::write(&listing, lines.join("\n") + "\n").unwrap();
    let fake = t.path().join("docker");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n  ps) cat '{}' ;;\n  volume) echo \"/var/lib/docker/volumes/$5/_data\" ;;\n  *) exit 1 ;;\nesac\n",
            listing.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    Engine::with_program(Some(fake), Duration::from_secs(5))
}

#[test]
fn the_project_is_the_one_the_files_containers_run_as() {
    let compose = "services:\n  gitea:\n    image: gitea/gitea:1.22\n    volumes: [\"data:/data\"]\nvolumes:\n  data: {}\n";
    let t = tree(&[("stack/docker-compose.yml", compose)]);
    let dir = t.path().join("stack");
    let file = dir.join("docker-compose.yml");
    let row = |project: &str, running: &str, files: &str| {
        format!(
            "id-{project}\t{project}_gitea_1\t{running}\t{project}\tgitea\t{}\t{files}\tFalse",
            dir.display()
        )
    };
    let load = |lines: &[String], env: &[(&str, &str)]| {
        load_with(&file, opts(env, engine_listing(&t, lines))).unwrap()
    };

    // Started with `docker-compose -p prod` (v1 records the file relative to its folder).
    let p = load(&[row("prod", "running", "docker-compose.yml")], &[]);
    assert_eq!(p.name, "prod");
    assert!(p.name_from_engine && p.engine_answered);
    assert_eq!(
        p.services[0].container.as_ref().unwrap().name,
        "prod_gitea_1"
    );
    assert_eq!(
        at(&p.services[0], "/data/gitea/jwt/private.pem"),
        Location::Host("/var/lib/docker/volumes/prod_data/_data/gitea/jwt/private.pem".into())
    );
    assert_eq!(p.notes[0].severity, Severity::Info);

    // Another file in the same folder, or another folder: not this file's containers.
    let p = load(&[row("prod", "running", "compose.other.yml")], &[]);
    assert_eq!((p.name.as_str(), p.name_from_engine), ("stack", false));
    assert!(p.services[0].container.is_none() && p.engine_answered);

    // As computed: the engine agrees, nothing to say.
    let p = load(&[row("stack", "exited", &file.display().to_string())], &[]);
    assert_eq!(p.name, "stack");
    assert!(!p.name_from_engine && p.notes.is_empty());
    assert!(!p.services[0].container.as_ref().unwrap().running);

    // Two projects from one file: a warning, and the computed name stands.
    let p = load(
        &[row("prod", "running", ""), row("staging", "running", "")],
        &[],
    );
    assert_eq!(p.name, "stack");
    assert_eq!(p.notes[0].severity, Severity::Warning);
    assert!(p.notes[0].fix.contains("COMPOSE_PROJECT_NAME"));

    // The user's choice wins over the engine's.
    let p = load(
        &[row("prod", "running", "")],
        &[("COMPOSE_PROJECT_NAME", "staging")],
    );
    assert_eq!(p.name, "staging");
    assert!(p.services[0].container.is_none());
}
