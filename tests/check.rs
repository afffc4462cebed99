//! `check`: the audit without the archive; exit 0 clean, 3 warnings, 1 errors.

use crate::util::*;

#[test]
fn clean_tree_exits_0_and_writes_nothing() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let before: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let o = fk(&["check", tree.to_str().unwrap()]);
    expect_code(&o, 0);
    let after: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn world_readable_key_is_a_warning_in_json() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        tree.join("jwt/private.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = fk(&["check", tree.to_str().unwrap(), "--json"]);
    expect_code(&o, 3);
    let v = json_of(&o);
    assert_eq!(v["warnings"], 1, "{v}");
    assert_eq!(v["findings"][0]["code"], "world-readable");
    assert_eq!(v["ok"], false);
}

#[test]
fn nothing_to_check_is_a_usage_error() {
    let o = fk(&["check"]);
    expect_code(&o, 2);
}
