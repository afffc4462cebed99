//! Is a file a secret? Judged by what it holds, not by where it sits or what it is called.
//!
//! A plain path such as `/etc/ssh` holds host keys (secrets) next to `ssh_config`,
//! `sshd_config` and `moduli`, which every user must be able to read: a warning that
//! tells the user to `chmod o-rwx` those breaks ssh and can never be fixed, so every
//! night would exit 3. So a file readable by others is looked at (the first
//! [`PREFIX_BYTES`], through one descriptor that must be the file the walk saw) and is a
//! secret when it holds key material (PEM, OpenSSH, PuTTY, PGP and age private keys), a
//! setting named like a secret with a value (`SECRET_KEY = …`, `"db_password": …`), or
//! nothing but one long token; or when a profile keeps it (the items of `-p`/`--compose`,
//! and what is inside them). Public keys, certificates and encrypted files are not
//! secrets; text without any of the above is public configuration. What cannot be read
//! or judged (binary content, a file that changed) counts as a secret: the cautious side.

use super::StatSnapshot;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How much of a file is read to judge it. Key material starts a file; settings sit in
/// the first screens of a configuration file.
pub const PREFIX_BYTES: u64 = 64 << 10;

/// What the profiles of a run say about the files they keep.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    /// Items whose widest mode a profile states (app.ini 0640, agent.conf 0644): the
    /// profile's audit judges their mode (`mode-too-open`), and collection does not
    /// contradict it with a generic readability finding.
    pub expected_mode: BTreeMap<PathBuf, u32>,
    /// Items a profile keeps (files, and folders whose contents it keeps), by what the
    /// profile calls them.
    pub items: BTreeMap<PathBuf, String>,
}

impl Secrets {
    /// The item `path` is, or is inside, with what the profile calls it.
    fn item_of(&self, path: &Path) -> Option<&str> {
        self.items
            .range(..=path.to_path_buf())
            .rev()
            .find(|(p, _)| path.starts_with(p))
            .map(|(_, what)| what.as_str())
    }
}

/// What a file holds, as far as its permissions are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// A secret; the text says why (for the finding's message).
    Secret(String),
    /// Nothing others may not read: public keys, certificates, encrypted or plain text.
    Public,
}

/// Judges `path` (walked as `seen`). Reads at most [`PREFIX_BYTES`] of it.
pub fn judge(path: &Path, seen: &StatSnapshot, secrets: &Secrets) -> Holds {
    let item = secrets.item_of(path);
    let prefix = match read_prefix(path, seen) {
        Some(p) => p,
        None => {
            return Holds::Secret(match item {
                Some(what) => format!("is kept by a profile as {what}"),
                None => "cannot be judged by its content (it changed or cannot be read)".into(),
            })
        }
    };
    let whole = seen.size <= PREFIX_BYTES;
    match (classify(&prefix, whole), item) {
        (Content::Key(kind), _) => Holds::Secret(format!("holds {kind}")),
        (Content::PublicMaterial, _) => Holds::Public,
        (_, Some(what)) => Holds::Secret(format!("is kept by a profile as {what}")),
        (Content::Setting(key), None) => Holds::Secret(format!("sets {key}")),
        (Content::Token, None) => Holds::Secret("holds nothing but one token".into()),
        (Content::Binary, None) => {
            Holds::Secret("has binary content forgekeep cannot judge".into())
        }
        (Content::Text, None) => Holds::Public,
    }
}

/// Up to [`PREFIX_BYTES`] of the file, read through one descriptor that is the file the
/// walk saw (see [`super::open_as_walked`]); None when it cannot be.
fn read_prefix(path: &Path, seen: &StatSnapshot) -> Option<Vec<u8>> {
    let file = super::open_as_walked(path, seen).ok()??;
    let mut buf = Vec::new();
    file.take(PREFIX_BYTES).read_to_end(&mut buf).ok()?;
    Some(buf)
}

#[derive(Debug, PartialEq, Eq)]
enum Content {
    /// Private key material of this kind.
    Key(&'static str),
    /// Public keys, certificates, encrypted data: nothing secret in the open.
    PublicMaterial,
    /// A setting whose name says it is a secret, with a value.
    Setting(String),
    /// The whole file is one long token (a secret kept in a file of its own).
    Token,
    Binary,
    Text,
}

const PRIVATE_MARKERS: [(&str, &str); 6] = [
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "an OpenSSH private key",
    ),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----", "a PGP private key"),
    ("PuTTY-User-Key-File-", "a PuTTY private key"),
    ("AGE-SECRET-KEY-1", "an age identity"),
    ("PRIVATE KEY-----", "a PEM private key"),
    ("\"private_key\"", "a private key in JSON"),
];

const PUBLIC_MARKERS: [&str; 10] = [
    "ssh-ed25519 ",
    "ssh-rsa ",
    "ssh-dss ",
    "ecdsa-sha2-",
    "sk-ssh-ed25519",
    "sk-ecdsa-sha2-",
    "-----BEGIN PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----",
    "-----BEGIN SSH2 PUBLIC KEY-----",
    "-----BEGIN AGE ENCRYPTED FILE-----",
];

fn classify(prefix: &[u8], whole: bool) -> Content {
    if prefix.starts_with(b"age-encryption.org/") {
        return Content::PublicMaterial; // encrypted: an archive, a protected identity
    }
    if prefix.starts_with(b"SQLite format 3\0") || prefix.contains(&0) {
        return Content::Binary;
    }
    let text = String::from_utf8_lossy(prefix);
    if let Some((_, kind)) = PRIVATE_MARKERS.iter().find(|(m, _)| text.contains(m)) {
        return Content::Key(kind);
    }
    let first = text.trim_start();
    if PUBLIC_MARKERS.iter().any(|m| first.starts_with(m))
        || (first.starts_with("age1") && !first.contains('='))
    {
        return Content::PublicMaterial;
    }
    if let Some(key) = text.lines().find_map(secret_setting) {
        return Content::Setting(key);
    }
    // base64 (padding only at the end), hex, a JWT; not `NAME=value` or `file:...`.
    let token = text.trim();
    if whole
        && token.len() >= 16
        && token
            .trim_end_matches('=')
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/_.-".contains(c))
    {
        return Content::Token;
    }
    Content::Text
}

/// Words that make a setting's name a secret's (`SECRET_KEY`, `db_password`, `JWT_SECRET`,
/// `INTERNAL_TOKEN`, `smtp_pass`).
const SECRET_WORDS: [&str; 11] = [
    "secret",
    "secrets",
    "token",
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pwd",
    "apikey",
    "credentials",
    "privatekey",
];

/// Last words of a setting that names where or how a secret is, not the secret
/// (`SECRET_KEY_URI`, `PASSWORD_HASH_ALGO`, `WOODPECKER_AGENT_SECRET_FILE`).
const NOT_THE_VALUE: [&str; 9] = [
    "file",
    "path",
    "uri",
    "dir",
    "length",
    "len",
    "type",
    "algo",
    "algorithm",
];

/// The name of the setting on `line` when it looks like `NAME = value` (INI, env, TOML,
/// `export`), `NAME: value` (YAML, JSON), or `- NAME=value` (a compose environment list)
/// and NAME says it is a secret and value is one (not empty, a boolean, a small number
/// or a `$VARIABLE`). Never the value: it must not reach a message.
fn secret_setting(line: &str) -> Option<String> {
    let line = line.trim_start();
    if line.starts_with(['#', ';']) || line.starts_with("//") {
        return None;
    }
    let line = line
        .strip_prefix("export ")
        .or_else(|| line.strip_prefix("- "))
        .unwrap_or(line);
    let at = line.find(['=', ':'])?;
    let (name, value) = (line[..at].trim(), line[at + 1..].trim());
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let value = value
        .trim_end_matches(',')
        .trim_matches(|c| c == '"' || c == '\'');
    let lower = value.to_ascii_lowercase();
    if value.is_empty()
        || value.starts_with('$')
        || value.starts_with("//") // a URL's `scheme://`, not a setting
        || ["true", "false", "yes", "no", "on", "off", "null", "~", "{", "["].contains(&lower.as_str())
        || (value.len() < 8 && value.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let words = words_of(name);
    let secret = words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
        || words.windows(2).any(|p| {
            p[1] == "key"
                && [
                    "private",
                    "api",
                    "access",
                    "signing",
                    "encryption",
                    "master",
                ]
                .contains(&p[0].as_str())
        });
    let names_a_place = words
        .last()
        .is_some_and(|w| NOT_THE_VALUE.contains(&w.as_str()));
    (secret && !names_a_place).then(|| name.trim_matches(|c| c == '"' || c == '\'').to_string())
}

/// `GITEA__security__SECRET_KEY` → `gitea security secret key`; `dbPassword` → `db
/// password`; `gitlab_rails['db_password']` → `gitlab rails db password`.
fn words_of(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut word = String::new();
        let mut prev_lower = false;
        for c in part.chars() {
            if c.is_ascii_uppercase() && prev_lower && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            word.push(c.to_ascii_lowercase());
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Content {
        classify(text.as_bytes(), true)
    }

    #[test]
    fn key_material_is_secret_public_material_is_not() {
        assert_eq!(
            class(
                "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n"
            ),
            Content::Key("a PEM private key")
        );
        assert_eq!(
            class("-----BEGIN RSA PRIVATE KEY-----\nabc\n"),
            Content::Key("a PEM private key")
        );
        assert_eq!(
            class("# created: 2026\n# public key: age1xyz\nAGE-SECRET-KEY-1QQQ\n"),
            Content::Key("an age identity")
        );
        assert_eq!(
            class("ssh-ed25519 AAAAC3Nza host\n"),
            Content::PublicMaterial
        );
        assert_eq!(
            class("-----BEGIN CERTIFICATE-----\nMIIB\n"),
            Content::PublicMaterial
        );
        assert_eq!(
            class("age1qyqszqgpqyqszqgpqyqszqgp\n"),
            Content::PublicMaterial
        );
    }

    #[test]
    fn public_ssh_configuration_is_text() {
        let sshd = "# comment\nInclude /etc/ssh/sshd_config.d/*.conf\nHostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n";
        assert_eq!(class(sshd), Content::Text);
        let ssh = "Host *\n    SendEnv LANG LC_*\n    HashKnownHosts yes\n    GSSAPIAuthentication yes\n    PasswordAuthentication=yes\n";
        assert_eq!(class(ssh), Content::Text);
        let moduli = "# Time Type Tests Tries Size Generator Modulus\n20230316035455 2 6 100 2047 5 C9F3...\n";
        assert_eq!(class(moduli), Content::Text);
    }

    #[test]
    fn settings_named_like_secrets_with_values_are_secret() {
        for (text, key) in [
            ("[security]\nINSTALL_LOCK = true\nSECRET_KEY = abcdef\n", "SECRET_KEY"),
            ("WOODPECKER_AGENT_SECRET=0123456789abcdef\n", "WOODPECKER_AGENT_SECRET"),
            ("{\n  \"gitlab_rails\": {\n    \"db_key_base\": \"x\",\n    \"secret_key_base\": \"y\"", "secret_key_base"),
            ("services:\n  gitea:\n    environment:\n      - GITEA__security__INTERNAL_TOKEN=eyJh\n", "GITEA__security__INTERNAL_TOKEN"),
            ("gitlab_rails['smtp_password'] = \"hunter2hunter2\"\n", "gitlab_rails['smtp_password']"),
            ("export DRONE_RPC_SECRET=f00\n", "DRONE_RPC_SECRET"),
            ("apiKey: abcdefgh\n", "apiKey"),
        ] {
            assert_eq!(class(text), Content::Setting(key.into()), "{text}");
        }
        for text in [
            "SECRET_KEY =\n",
            "SECRET_KEY_URI = file:/etc/gitea/secret\n",
            "WOODPECKER_AGENT_SECRET_FILE=/run/secrets/agent\n",
            "ENABLE_PASSWORD_SIGNIN_FORM = false\n",
            "MIN_PASSWORD_LENGTH = 8\n",
            "GITEA__security__SECRET_KEY=${SECRET_KEY}\n",
            "# SECRET_KEY = old\n",
            "url: https://example.org/token\n",
        ] {
            assert_eq!(class(text), Content::Text, "{text}");
        }
    }

    #[test]
    fn a_lone_token_is_secret_and_binary_is_not_judged_public() {
        assert_eq!(class("7d9f2c0e1b4a8f6d3c5e7a9b\n"), Content::Token);
        assert_eq!(classify(b"7d9f2c0e1b4a8f6d3c5e7a9b", false), Content::Text);
        assert_eq!(class("short\n"), Content::Text);
        assert_eq!(classify(b"SQLite format 3\0....", true), Content::Binary);
        assert_eq!(classify(b"\x7fELF\x02\x01\x01\0", true), Content::Binary);
    }

    #[test]
    fn items_cover_what_is_inside_them() {
        let mut s = Secrets::default();
        s.items.insert("/data/ssh".into(), "SSH host keys".into());
        s.items.insert("/data/sshd".into(), "other".into());
        assert_eq!(s.item_of(Path::new("/data/ssh/key")), Some("SSH host keys"));
        assert_eq!(s.item_of(Path::new("/data/ssh")), Some("SSH host keys"));
        assert_eq!(s.item_of(Path::new("/data/sshx")), None);
        assert_eq!(s.item_of(Path::new("/data")), None);
    }
}
