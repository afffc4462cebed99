//! The compose file reader with interpolation, on arbitrary YAML text. The reader takes
//! a file (relative paths in it are relative to its folder), so each input is written
//! to a fresh folder; it is read as for `detect --root`: that folder is the host's
//! root, no docker is asked, and a few variables are set for `${VAR}` to find.
#![no_main]
use forgekeep::compose::{load_with, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile_dir();
    let file = dir.join("compose.yaml");
    std::fs::write(&file, data).expect("write the input");
    let mut opts = LoadOptions::for_root(&dir);
    for (k, v) in [
        ("GITEA_DATA", "./gitea"),
        ("EMPTY", ""),
        ("HOME", "/root"),
        ("COMPOSE_PROJECT_NAME", "fz"),
    ] {
        opts.env.insert(k.to_string(), v.to_string());
    }
    if let Ok(p) = load_with(&file, opts) {
        for s in &p.services {
            let _ = s.mount_descriptions();
        }
        let _ = p.apps().count();
    }
    let _ = std::fs::remove_dir_all(&dir);
});

/// A fresh folder under /dev/shm (or the temp folder) for one input.
fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let d = base.join(format!(
        "forgekeep-fuzz-compose.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).expect("a temp folder");
    d
}
