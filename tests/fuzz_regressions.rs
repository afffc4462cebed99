//! Inputs the fuzzers (`fuzz/`) found to crash, hang or exhaust memory, each run
//! through the real binary: the reader must answer with an error (or a result), never a
//! panic, an abort or a hang.

use crate::util::*;

#[test]
fn compose_interpolation_with_a_non_ascii_operator_is_an_error_not_a_panic() {
    // fuzz/compose: `${th` followed by a two-byte character; the operator was cut at
    // byte 1, inside the character (panic, exit 101).
    let td = TestDir::new();
    let file = td.write(
        "compose.yaml",
        "nfffff ${th\u{75e}\u{7d9}orgegitea:.SECRET:?v}\n".as_bytes(),
        0o644,
    );
    for yaml in [
        "services:\n  gitea:\n    image: gitea/gitea\n    environment:\n      A: ${th\u{75e}x}\n",
        "services:\n  gitea:\n    image: gitea/gitea\n    environment:\n      A: ${X:\u{e9}}\n",
    ] {
        let f = td.write("c2/compose.yaml", yaml.as_bytes(), 0o644);
        let out = fk(&["check", "--compose", f.to_str().unwrap()]);
        expect_code(&out, 2);
        assert!(
            stderr(&out).contains("invalid interpolation format"),
            "{}",
            stderr(&out)
        );
    }
    let out = fk(&["check", "--compose", file.to_str().unwrap()]);
    expect_code(&out, 2);
}
