//! Keys: recipients to encrypt to, identities to decrypt with, passphrases.
//!
//! The backup host should hold only PUBLIC keys (age `age1…`, `ssh-ed25519`, `ssh-rsa`),
//! so a compromise of it never exposes old archives. Identities (age identity files,
//! OpenSSH private keys, passphrase-encrypted identity files) are needed only to read an
//! archive. Passphrases are read from the terminal, or from the file named by
//! `FORGEKEEP_PASSPHRASE_FILE` for scripts, never from argv or the environment's value
//! (argv is visible in `ps`). Nothing in this module ever formats a secret.

use crate::error::{Error, ExitCode, Result};
use age::secrecy::SecretString;
use age::{Identity, Recipient};
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

/// The environment variable naming a file whose first line is the passphrase.
pub const PASSPHRASE_FILE_ENV: &str = "FORGEKEEP_PASSPHRASE_FILE";

/// Identity and recipient files are capped as age caps them (16 MiB).
const MAX_KEY_FILE: u64 = 16 << 20;

pub type BoxedRecipient = Box<dyn Recipient + Send>;

/// What an archive is encrypted to.
pub enum Encryption {
    Recipients(Vec<BoxedRecipient>),
    Passphrase(SecretString),
}

impl Encryption {
    pub fn recipients(&self) -> Vec<&dyn Recipient> {
        match self {
            Encryption::Recipients(r) => r.iter().map(|r| r.as_ref() as &dyn Recipient).collect(),
            Encryption::Passphrase(_) => Vec::new(),
        }
    }
}

/// Parses one recipient string. `origin` names where it came from, for messages.
pub fn parse_recipient(s: &str, origin: &str) -> Result<BoxedRecipient> {
    let s = s.trim();
    if s.starts_with("age1") {
        return s
            .parse::<age::x25519::Recipient>()
            .map(|r| Box::new(r) as BoxedRecipient)
            .map_err(|e| {
                Error::usage(format!("{origin}: not a valid age recipient ({e})"))
                    .hint("an age recipient is the age1… line printed by `forgekeep keygen` or `age-keygen -y`")
            });
    }
    if s.starts_with("ssh-") {
        let bad = |why: String| {
            Error::usage(format!("{origin}: not a usable SSH public key ({why})"))
                .hint("use an ssh-ed25519 key or an ssh-rsa key of 2048 to 4096 bits")
        };
        return without_panics(|| s.parse::<age::ssh::Recipient>())
            .ok_or_else(|| bad("invalid key".into()))?
            .map(|r| Box::new(r) as BoxedRecipient)
            .map_err(|e| bad(ssh_recipient_error(&e)));
    }
    if s.starts_with("AGE-SECRET-KEY-") {
        return Err(Error::usage(format!("{origin}: this is a private key, not a recipient"))
            .hint("give the public key (age-keygen -y FILE prints it); keep the private key off the backed-up host"));
    }
    Err(Error::usage(format!("{origin}: not a recipient"))
        .hint("recipients look like age1…, ssh-ed25519 AAAA… or ssh-rsa AAAA…"))
}

/// Runs one of age's SSH key parsers, turning a panic into `None`. age 0.12.1 indexes
/// past the end of an SSH integer made only of zero bytes (`ssh.rs`, `mpint`: found by
/// `fuzz/recipients`), so a crafted `ssh-rsa` line in a recipients file would kill the
/// backup with a panic instead of an error naming the line. The panic message is kept
/// off stderr (the hook is silenced for the call; keys are parsed before any thread).
fn without_panics<T>(f: impl FnOnce() -> T) -> Option<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    std::panic::set_hook(hook);
    out
}

fn ssh_recipient_error(e: &age::ssh::ParseRecipientKeyError) -> String {
    use age::ssh::ParseRecipientKeyError as P;
    match e {
        P::RsaModulusTooLarge => "RSA key larger than 4096 bits".into(),
        P::RsaModulusTooSmall => "RSA key smaller than 2048 bits".into(),
        P::Unsupported(t) => format!("key type {t} is not supported"),
        _ => "invalid key".into(),
    }
}

/// Reads a recipients file: one recipient a line, `#` comments and blank lines ignored.
/// An `authorized_keys` file works: options before the key type are skipped, and key
/// types age cannot encrypt to (ecdsa, security keys) are skipped with a warning.
pub fn read_recipients_file(path: &Path) -> Result<Vec<BoxedRecipient>> {
    let text = read_small(path, "recipients file")?;
    parse_recipients(&text, &path.display().to_string())
}

/// The recipients in the text of a recipients file called `name` (see
/// [`read_recipients_file`]); public for the fuzzer.
pub fn parse_recipients(text: &[u8], name: &str) -> Result<Vec<BoxedRecipient>> {
    let text = std::str::from_utf8(text)
        .map_err(|_| Error::usage(format!("recipients file {name} is not text")))?;
    let mut out = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = format!("{name}:{}", no + 1);
        let key = ["age1", "ssh-ed25519 ", "ssh-rsa "]
            .iter()
            .filter_map(|p| line.find(p).map(|i| &line[i..]))
            .min_by_key(|s| line.len() - s.len());
        match key {
            Some(k) => out.push(parse_recipient(k, &origin)?),
            // A private key where public keys belong: on the backed-up host, and no
            // recipient to encrypt to. Said, not skipped.
            None if line.starts_with("AGE-SECRET-KEY-") || line.contains("PRIVATE KEY-----") => {
                return Err(Error::usage(format!(
                    "{origin}: this is a private key, not a recipient"
                ))
                .hint("put the public key here (age-keygen -y FILE or ssh-keygen -y -f FILE prints it) and keep the private key off the backed-up host"));
            }
            None => log::warn!("{origin}: skipped: not an age, ssh-ed25519 or ssh-rsa key"),
        }
    }
    if out.is_empty() {
        return Err(
            Error::usage(format!("recipients file {name} holds no usable recipient"))
                .hint("put one age1…, ssh-ed25519 or ssh-rsa public key per line"),
        );
    }
    Ok(out)
}

fn read_small(path: &Path, what: &str) -> Result<Vec<u8>> {
    read_capped(path, what, MAX_KEY_FILE)
}

/// Reads a small file whole, refusing one larger than `cap` (a key, a list of keys: a
/// mistaken `/dev/zero` or log file must not be read to its end).
pub fn read_capped(path: &Path, what: &str, cap: u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(&format!("cannot open {what}"), path, &e))?;
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(&format!("cannot read {what}"), path, &e))?;
    if buf.len() as u64 > cap {
        return Err(Error::usage(format!(
            "{what} {} is larger than {}: not what it should be",
            path.display(),
            crate::report::human_bytes(cap)
        )));
    }
    Ok(buf)
}

/// [`read_capped`] for a text file: not UTF-8 is a usage error with `hint`.
pub fn read_capped_text(path: &Path, what: &str, cap: u64, hint: &str) -> Result<String> {
    String::from_utf8(read_capped(path, what, cap)?)
        .map_err(|_| Error::usage(format!("{what} {} is not text", path.display())).hint(hint))
}

/// Reads a passphrase from `FORGEKEEP_PASSPHRASE_FILE`, else from the terminal.
/// `confirm` asks twice (a typo in a backup passphrase is unrecoverable).
pub fn read_passphrase(prompt: &str, confirm: bool) -> Result<SecretString> {
    if let Some(file) = std::env::var_os(PASSPHRASE_FILE_ENV) {
        let path = PathBuf::from(file);
        let bytes = read_small(&path, "passphrase file")?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::usage(format!(
                "passphrase file {} is not UTF-8 text",
                path.display()
            ))
        })?;
        let first = text.lines().next().unwrap_or("").to_string();
        if first.is_empty() {
            return Err(
                Error::usage(format!("passphrase file {} is empty", path.display()))
                    .hint("put the passphrase on its first line"),
            );
        }
        return Ok(SecretString::from(first));
    }
    let no_tty = || {
        Error::usage("a passphrase is needed but there is no terminal to ask on").hint(format!(
            "set {PASSPHRASE_FILE_ENV} to a file holding the passphrase"
        ))
    };
    if std::fs::File::open("/dev/tty").is_err() {
        return Err(no_tty());
    }
    let first = rpassword::prompt_password(format!("{prompt}: ")).map_err(|_| no_tty())?;
    if first.is_empty() {
        return Err(Error::usage("empty passphrase"));
    }
    if confirm {
        let again = rpassword::prompt_password("Confirm passphrase: ").map_err(|_| no_tty())?;
        if again != first {
            return Err(Error::usage("the passphrases do not match")
                .hint("run again and type the same passphrase twice"));
        }
    }
    Ok(SecretString::from(first))
}

/// age callbacks that ask for passphrases the forgekeep way (file or terminal).
#[derive(Clone, Copy)]
pub struct PromptCallbacks;

impl age::Callbacks for PromptCallbacks {
    fn display_message(&self, message: &str) {
        eprintln!("forgekeep: {message}");
    }

    fn confirm(&self, _message: &str, _yes: &str, _no: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _description: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        match read_passphrase(description, false) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("forgekeep: {e}");
                None
            }
        }
    }
}

type EncryptedIdentity = age::encrypted::Identity<Cursor<Vec<u8>>, PromptCallbacks>;

/// Everything that can open an archive, plus how to encrypt an undo archive to the
/// same keys (a `--force` restore keeps the files it replaces that way).
#[derive(Default)]
pub struct Keyring {
    plain: Vec<Box<dyn Identity>>,
    encrypted: Vec<EncryptedIdentity>,
    /// Public halves of `plain`, in their text form.
    recipient_lines: Vec<String>,
    passphrase: Option<SecretString>,
}

impl Keyring {
    pub fn identities(&self) -> impl Iterator<Item = &dyn Identity> {
        self.plain
            .iter()
            .map(|i| i.as_ref() as &dyn Identity)
            .chain(self.encrypted.iter().map(|i| i as &dyn Identity))
    }

    pub fn uses_passphrase(&self) -> bool {
        self.passphrase.is_some()
    }

    /// A keyring for `--passphrase`: an scrypt identity.
    pub fn from_passphrase(pass: SecretString) -> Keyring {
        let id = age::scrypt::Identity::new(pass.clone());
        Keyring {
            plain: vec![Box::new(id)],
            passphrase: Some(pass),
            ..Keyring::default()
        }
    }

    /// Loads identity files: age identities, OpenSSH private keys (encrypted ones ask for
    /// their passphrase when first used), passphrase-encrypted age identity files.
    pub fn from_files(files: &[PathBuf]) -> Result<Keyring> {
        let mut k = Keyring::default();
        for path in files {
            k.load(path)?;
        }
        Ok(k)
    }

    fn load(&mut self, path: &Path) -> Result<()> {
        let bytes = read_small(path, "identity file")?;
        self.load_bytes(bytes, &path.display().to_string())
    }

    /// A keyring of the identities in the bytes of one identity file called `name`
    /// (see [`Keyring::from_files`]); public for the fuzzer.
    pub fn from_identity_bytes(bytes: Vec<u8>, name: &str) -> Result<Keyring> {
        let mut k = Keyring::default();
        k.load_bytes(bytes, name)?;
        Ok(k)
    }

    fn load_bytes(&mut self, bytes: Vec<u8>, name: &str) -> Result<()> {
        let name = name.to_string();
        let bad = |why: &str| {
            Error::usage(format!("identity file {name}: {why}"))
                .hint("give an age identity file (forgekeep keygen, age-keygen) or an OpenSSH private key")
        };
        if let Some(e) = mistaken_identity(&bytes, &name) {
            return Err(e);
        }
        if bytes.starts_with(b"age-encryption.org/")
            || bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
        {
            let reader = age::armor::ArmoredReader::new(Cursor::new(bytes));
            let mut all = Vec::new();
            BufReader::new(reader)
                .read_to_end(&mut all)
                .map_err(|_| bad("the encrypted identity file is damaged"))?;
            let id = age::encrypted::Identity::from_buffer(
                Cursor::new(all),
                Some(name.clone()),
                PromptCallbacks,
                None,
            )
            .map_err(|_| bad("the encrypted identity file is damaged"))?
            .ok_or_else(|| swapped(&name))?;
            self.encrypted.push(id);
            return Ok(());
        }
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
            || text.contains("-----BEGIN RSA PRIVATE KEY-----")
        {
            let parse = || {
                without_panics(|| {
                    age::ssh::Identity::from_buffer(Cursor::new(&bytes[..]), Some(name.clone()))
                })
                .and_then(|r| r.ok())
            };
            let id = parse().ok_or_else(|| bad("the SSH private key cannot be parsed"))?;
            if let age::ssh::Identity::Unsupported(u) = &id {
                let why = match u {
                    age::ssh::UnsupportedKey::EncryptedPem => {
                        "encrypted PEM keys are not supported; convert it with ssh-keygen -p -o"
                    }
                    age::ssh::UnsupportedKey::Hardware(_) => "hardware (sk-) keys cannot decrypt",
                    _ => "this SSH key type cannot decrypt age files (use ed25519 or RSA)",
                };
                return Err(bad(why));
            }
            if let Ok(r) = age::ssh::Recipient::try_from(parse().ok_or_else(|| bad("unreadable"))?)
            {
                self.recipient_lines.push(r.to_string());
            }
            self.plain
                .push(Box::new(id.with_callbacks(PromptCallbacks)));
            return Ok(());
        }
        let file = age::IdentityFile::from_buffer(BufReader::new(Cursor::new(&bytes[..])))
            .map_err(|_| bad("no identity found in it"))?;
        let mut lines = Vec::new();
        file.write_recipients_file(&mut lines)
            .map_err(|_| bad("no identity found in it"))?;
        self.recipient_lines.extend(
            String::from_utf8_lossy(&lines)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
        let ids = file
            .into_identities()
            .map_err(|_| bad("no identity found in it"))?;
        if ids.is_empty() {
            return Err(bad("no identity found in it"));
        }
        for id in ids {
            self.plain.push(id);
        }
        Ok(())
    }

    /// The keys that undo archives are encrypted to: the public halves of the identities
    /// that opened the archive, or the same passphrase.
    pub fn undo_encryption(&self) -> Result<Encryption> {
        if let Some(p) = &self.passphrase {
            return Ok(Encryption::Passphrase(p.clone()));
        }
        let mut out: Vec<BoxedRecipient> = Vec::new();
        for line in &self.recipient_lines {
            out.push(parse_recipient(line, "identity")?);
        }
        for e in &self.encrypted {
            out.extend(e.recipients().map_err(|_| {
                Error::new(
                    ExitCode::NoIdentity,
                    "cannot read the keys in the encrypted identity file",
                )
                .hint("check its passphrase")
            })?);
        }
        if out.is_empty() {
            return Err(Error::usage("cannot keep the replaced files: no public key can be derived from these identities")
                .hint("use an age or SSH identity file"));
        }
        Ok(Encryption::Recipients(out))
    }
}

/// The common mistakes with `-i`, said as such: a public key (a recipients file, an
/// `id_ed25519.pub`) where the private key belongs. None when the file may be an
/// identity.
fn mistaken_identity(bytes: &[u8], name: &str) -> Option<Error> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .peekable();
    lines.peek()?;
    let public = |l: &str| {
        l.starts_with("age1")
            || [
                "ssh-ed25519 ",
                "ssh-rsa ",
                "ecdsa-sha2-",
                "sk-ssh-",
                "sk-ecdsa-",
            ]
            .iter()
            .any(|t| l.contains(t))
    };
    if !lines.all(public) {
        return None;
    }
    Some(
        Error::usage(format!(
            "identity file {name}: this is a public key (a recipient); -i needs the private key"
        ))
        .hint(if name.ends_with(".pub") {
            "give the private key: the same file name without .pub"
        } else {
            "give the identity file that holds AGE-SECRET-KEY-1… (the one forgekeep keygen -o wrote) or the SSH private key"
        }),
    )
}

/// An archive given as `-i`: most likely the archive and the key were swapped.
fn swapped(name: &str) -> Error {
    Error::usage(format!(
        "{name} is an age-encrypted file (an archive?), not an identity: are the archive and the key swapped?"
    ))
    .hint("name the archive first and the key after -i: forgekeep restore ARCHIVE -i KEY")
}

/// A new X25519 identity, as the text of an identity file, and its recipient.
pub fn generate_identity() -> (SecretString, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let created = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    );
    (SecretString::from(text), recipient)
}
