//! Property: arbitrary trees (names, nesting, sizes, modes, symlinks) survive
//! backup → restore byte for byte, with their modes and link targets.

use crate::util::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

#[derive(Debug, Clone)]
enum Node {
    File(Vec<u8>, u32),
    Link(String),
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._\\-é\\\\]{1,12}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

fn tree() -> impl Strategy<Value = BTreeMap<Vec<String>, Node>> {
    let node = prop_oneof![
        4 => (proptest::collection::vec(any::<u8>(), 0..3000), prop_oneof![Just(0o600u32), Just(0o640), Just(0o400), Just(0o700)])
            .prop_map(|(d, m)| Node::File(d, m)),
        1 => "[a-z/.]{1,20}".prop_map(Node::Link),
    ];
    proptest::collection::btree_map(proptest::collection::vec(name(), 1..4), node, 1..12)
}

fn write_tree(root: &Path, t: &BTreeMap<Vec<String>, Node>) {
    for (path, node) in t {
        let p = path.iter().fold(root.to_path_buf(), |acc, c| acc.join(c));
        // Skip paths that collide with a file made earlier (a/b as file, a/b/c wanted).
        if p.ancestors().skip(1).any(|a| a.is_file() || a.is_symlink())
            || p.exists()
            || p.is_symlink()
        {
            continue;
        }
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        match node {
            Node::File(d, m) => {
                fs::write(&p, d).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(*m)).unwrap();
            }
            Node::Link(t) => symlink(t, &p).unwrap(),
        }
    }
}

fn describe(root: &Path) -> String {
    stdout(&sh(&format!(
        "cd '{}' && find . -mindepth 1 \\( -type l -printf '%p L %l\\n' \\) -o \\( -type f -printf '%p F %m ' -exec sha256sum {{}} \\; \\) -o \\( -type d -printf '%p D\\n' \\) | sort",
        root.display()
    )))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, .. ProptestConfig::default() })]
    #[test]
    fn arbitrary_trees_round_trip(t in tree()) {
        let td = TestDir::new();
        let src = td.mkdir("src", 0o700);
        write_tree(&src, &t);
        let (k, r) = td.age_key("k.txt");
        let a = td.join("a.age");
        let o = fk(&["backup", src.to_str().unwrap(), "-r", &r, "-o", a.to_str().unwrap()]);
        prop_assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
        let dest = td.join("dest");
        let o = fk(&["restore", "--allow-untrusted", a.to_str().unwrap(), "-i", k.to_str().unwrap(), "--root", dest.to_str().unwrap()]);
        prop_assert_eq!(code(&o), 0, "{}", stderr(&o));
        let copy = dest.join(src.strip_prefix("/").unwrap());
        prop_assert_eq!(describe(&src), describe(&copy));
    }
}
