//! Signed archives: who made an archive, proven before a restore writes anything.
//!
//! age gives confidentiality, not proof of origin: the recipient sits on the forge host,
//! often in a world-readable file, and anyone who has it can make an archive that
//! decrypts. An archive whose manifest declares a source `/etc/cron.d` is a valid
//! archive, so restoring "the latest backup" from a folder or bucket someone else can
//! write to would run their code. restic, borg and kopia close this with a repository
//! MAC; forgekeep closes it with a signature made on the backup host by a key that
//! never leaves it, checked against a trust file the restoring operator keeps.
//!
//! The format is OpenSSH's `sshsig` (what `ssh-keygen -Y sign` writes), over the bytes
//! of `forgekeep/SHA256SUMS`, in the namespace `forgekeep`: SHA256SUMS lists every
//! file's digest and the manifest's (which records every entry's path, type, owner,
//! mode and link target, the sources, the host and the creation time), so one signature
//! covers the whole archive, and `ssh-keygen -Y verify` plus `sha256sum -c` prove it
//! without forgekeep. No signature format is written here: the `ssh-key` crate
//! (RustCrypto) encodes and checks it.
//!
//! Only Ed25519 keys sign and verify: one small, deterministic, misuse-resistant
//! algorithm; the host's own `ssh_host_ed25519_key` qualifies.

pub mod trust;

use crate::error::{Error, ExitCode, Result};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};
use std::path::{Path, PathBuf};

/// The `sshsig` namespace of every forgekeep signature: a signature made for git
/// (`git`) or for files (`file`) with the same key can never pass as an archive's.
pub const NAMESPACE: &str = "forgekeep";

/// Signing key files are small; the cap keeps a mistaken `--sign /dev/zero` bounded.
const MAX_KEY_FILE: u64 = 64 << 10;

/// A signing key, loaded and (if it was encrypted) decrypted.
pub struct SigningKey {
    key: PrivateKey,
    path: PathBuf,
}

/// Only the path: the key itself is never formatted.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.path.display())
    }
}

impl SigningKey {
    /// Loads an OpenSSH Ed25519 private key. A passphrase-protected key asks for its
    /// passphrase (terminal, or `FORGEKEEP_PASSPHRASE_FILE`).
    pub fn load(path: &Path) -> Result<SigningKey> {
        let key = Self::inspect(path)?;
        let key = if key.is_encrypted() {
            let pass = crate::keys::read_passphrase(
                &format!("Passphrase of the signing key {}", path.display()),
                false,
            )?;
            use age::secrecy::ExposeSecret;
            key.decrypt(pass.expose_secret().as_bytes()).map_err(|_| {
                Error::new(
                    ExitCode::NoIdentity,
                    format!(
                        "cannot open the signing key {}: wrong passphrase",
                        path.display()
                    ),
                )
                .hint("check the passphrase (or FORGEKEEP_PASSPHRASE_FILE) and try again")
            })?
        } else {
            key
        };
        Ok(SigningKey {
            key,
            path: path.to_path_buf(),
        })
    }

    /// Reads and parses the key file without decrypting it: an OpenSSH Ed25519 private
    /// key, or a one-line error saying what the file is instead.
    pub fn inspect(path: &Path) -> Result<PrivateKey> {
        let text = read_key_text(path)?;
        let bad = |why: &str| {
            Error::usage(format!("signing key {}: {why}", path.display())).hint(
                "give an OpenSSH Ed25519 private key (forgekeep keygen --sign, or ssh-keygen -t ed25519)",
            )
        };
        if text.trim_start().starts_with("ssh-") || text.trim_start().starts_with("age1") {
            return Err(bad("this is a public key; --sign needs the private key"));
        }
        if text.contains("AGE-SECRET-KEY-") {
            return Err(bad(
                "this is an age identity, which decrypts but cannot sign",
            ));
        }
        let key =
            PrivateKey::from_openssh(text.trim()).map_err(|_| bad("not an OpenSSH private key"))?;
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(bad(&format!(
                "{} keys do not sign forgekeep archives; only Ed25519 keys do",
                key.algorithm()
            )));
        }
        Ok(key)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who this key is, in the form verification prints.
    pub fn signer(&self) -> Signer {
        Signer::of(self.key.public_key().clone())
    }

    /// An armored `sshsig` signature of `msg` (what `ssh-keygen -Y sign` would write).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let sig = self
            .key
            .sign(NAMESPACE, HashAlg::Sha512, msg)
            .and_then(|s| s.to_pem(LineEnding::LF))
            .map_err(|_| Error::runtime(format!("cannot sign with {}", self.path.display())))?;
        let mut bytes = sig.into_bytes();
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        Ok(bytes)
    }
}

fn read_key_text(path: &Path) -> Result<String> {
    crate::keys::read_capped_text(
        path,
        "the signing key",
        MAX_KEY_FILE,
        "give an OpenSSH Ed25519 private key",
    )
}

/// The public key that made a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub key: PublicKey,
}

impl Signer {
    fn of(key: PublicKey) -> Signer {
        // Comments are the key owner's free text: never part of an identity.
        let mut key = key;
        key.set_comment("");
        Signer { key }
    }

    /// A public key as a trust file or `ssh-keyscan` writes it: `ssh-ed25519 AAAA…`.
    pub fn from_openssh(line: &str) -> std::result::Result<Signer, BadSignature> {
        PublicKey::from_openssh(line.trim())
            .map(Signer::of)
            .map_err(|_| BadSignature::Malformed)
    }

    /// `ED25519 SHA256:…`, as `ssh-keygen -l` prints a key.
    pub fn fingerprint(&self) -> String {
        format!(
            "{} {}",
            algorithm_label(self.key.algorithm()),
            self.key.fingerprint(HashAlg::Sha256)
        )
    }

    /// `ssh-ed25519 AAAA…`: the key as a trust file lists it.
    pub fn openssh(&self) -> String {
        self.key.to_openssh().unwrap_or_default()
    }
}

fn algorithm_label(a: Algorithm) -> String {
    match a {
        Algorithm::Ed25519 => "ED25519".into(),
        other => other.as_str().to_ascii_uppercase(),
    }
}

/// Why a signature was not accepted (exit 4 everywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadSignature {
    /// Not an armored `sshsig` at all.
    Malformed,
    /// Made for another purpose (`git`, `file`, …).
    Namespace(String),
    /// A key type forgekeep does not verify.
    Algorithm(String),
    /// The signature does not match the signed bytes: something was changed.
    Mismatch,
}

impl std::fmt::Display for BadSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadSignature::Malformed => write!(f, "the signature is not an SSH signature"),
            BadSignature::Namespace(ns) => write!(
                f,
                "the signature was made for namespace {:?}, not {NAMESPACE:?}",
                crate::report::printable(ns)
            ),
            BadSignature::Algorithm(a) => {
                write!(f, "the signature was made with a {a} key; only Ed25519 keys sign archives")
            }
            BadSignature::Mismatch => write!(
                f,
                "the signature does not match the archive's checksums (the archive was changed after it was signed)"
            ),
        }
    }
}

/// Checks an armored `sshsig` over `msg` against the key it names, and returns that key.
/// Whether the key is one anybody trusts is the trust file's question ([`trust`]).
pub fn verify(sig_pem: &[u8], msg: &[u8]) -> std::result::Result<Signer, BadSignature> {
    let sig = SshSig::from_pem(sig_pem).map_err(|_| BadSignature::Malformed)?;
    if sig.namespace() != NAMESPACE {
        return Err(BadSignature::Namespace(sig.namespace().to_string()));
    }
    if sig.algorithm() != Algorithm::Ed25519 {
        return Err(BadSignature::Algorithm(sig.algorithm().to_string()));
    }
    let key = PublicKey::from(sig.public_key().clone());
    key.verify(NAMESPACE, msg, &sig)
        .map_err(|_| BadSignature::Mismatch)?;
    Ok(Signer::of(key))
}

/// The signing key file's permissions, judged as any secret's: at most one finding for
/// its mode and one for its owner, each with the fix that ends it. Others who can read the key can sign archives this host's trust
/// line vouches for; others who can write it can swap in a key of theirs.
pub fn audit(path: &Path) -> Vec<crate::findings::Finding> {
    use crate::findings::{who_may_read, who_may_write, Code, Finding, Severity};
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new(); // loading it reports that
    };
    let mode = meta.mode() & 0o7777;
    let open = mode & 0o077;
    let mut out = Vec::new();
    if open != 0 {
        let code = if mode & 0o004 != 0 {
            Code::WorldReadable
        } else if mode & 0o040 != 0 {
            Code::GroupReadable
        } else {
            Code::Writable
        };
        let who: Vec<String> = [
            who_may_read(open).map(|w| format!("readable by {w}")),
            who_may_write(open).map(|w| format!("writable by {w}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        out.push(Finding {
            code,
            severity: Severity::Warning,
            path: path.display().to_string(),
            message: format!(
                "the signing key is {} (mode {mode:04o}): whoever can read it signs archives your trust files accept",
                if who.is_empty() { "open to others".to_string() } else { who.join(" and ") }
            ),
            fix: format!("chmod 600 {}", path.display()),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        out.push(Finding {
            code: Code::OwnerMismatch,
            severity: Severity::Warning,
            path: path.display().to_string(),
            message: format!(
                "the signing key belongs to uid {}, who can replace it with a key of theirs",
                meta.uid()
            ),
            fix: format!("chown {me} {}", path.display()),
        });
    }
    out
}

/// Who made an archive, as far as its reader could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticity {
    /// No signature: anyone holding the recipient could have made it.
    Unsigned,
    /// A good signature by `signer`; `vouched` when a trust file lists that key for the
    /// host the archive records (without a trust file nobody said whose key it is).
    Signed {
        signer: Signer,
        vouched: Option<trust::Vouched>,
    },
}

impl Authenticity {
    /// Does a trust file vouch for it? Only then may a restore write into the live tree
    /// without the operator's consent.
    pub fn trusted(&self) -> bool {
        matches!(
            self,
            Authenticity::Signed {
                vouched: Some(_),
                ..
            }
        )
    }

    /// One line for humans: `signed by git.example.org, ED25519 SHA256:…`.
    pub fn describe(&self) -> String {
        match self {
            Authenticity::Unsigned => {
                "not authenticated: the archive is not signed (anyone with the recipient could have made it)"
                    .into()
            }
            Authenticity::Signed {
                signer,
                vouched: Some(v),
            } => format!(
                "signed by {}, {}",
                crate::report::printable(&v.principal),
                signer.fingerprint()
            ),
            Authenticity::Signed {
                signer,
                vouched: None,
            } => format!(
                "signed by {} (not checked against a trust file: not authenticated)",
                signer.fingerprint()
            ),
        }
    }

    /// The `signature` object of the `--json` reports.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Authenticity::Unsigned => serde_json::json!({"signed": false, "trusted": false}),
            Authenticity::Signed { signer, vouched } => serde_json::json!({
                "signed": true,
                "trusted": vouched.is_some(),
                "key": signer.fingerprint(),
                "principal": vouched.as_ref().map(|v| &v.principal),
                "trust_file": vouched.as_ref().map(|v| v.file.display().to_string()),
                "trust_line": vouched.as_ref().map(|v| v.line),
            }),
        }
    }
}

/// A new Ed25519 signing key: the text of its OpenSSH private key file, and who it is.
pub fn generate(comment: &str) -> Result<(zeroize::Zeroizing<String>, Signer)> {
    let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
        .map_err(|_| Error::runtime("cannot make a signing key: no randomness"))?;
    key.set_comment(comment);
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|_| Error::runtime("cannot encode the signing key"))?;
    Ok((text, Signer::of(key.public_key().clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_in(dir: &Path) -> (PathBuf, Signer) {
        let p = dir.join("sign");
        let (text, s) = generate("test").unwrap();
        std::fs::write(&p, text.as_bytes()).unwrap();
        (p, s)
    }

    #[test]
    fn sign_then_verify_names_the_signer() {
        let dir = tempfile::tempdir().unwrap();
        let (p, signer) = key_in(dir.path());
        let k = SigningKey::load(&p).unwrap();
        let sig = k.sign(b"abc  forgekeep/manifest.json\n").unwrap();
        let who = verify(&sig, b"abc  forgekeep/manifest.json\n").unwrap();
        assert_eq!(who, signer);
        assert!(who.fingerprint().starts_with("ED25519 SHA256:"));
        assert_eq!(
            verify(&sig, b"abd  forgekeep/manifest.json\n"),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(verify(b"garbage", b""), Err(BadSignature::Malformed));
    }
}
