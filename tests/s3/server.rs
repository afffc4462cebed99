//! A real S3 server for the tests: moto, started once per test binary on 127.0.0.1.
//!
//! When `python3 -c 'import moto.server'` fails, every S3 test prints one SKIP line and
//! returns, unless FORGEKEEP_S3_TESTS=required (as CI sets it), which makes that a failure:
//! a missing server must never look like a pass where it is supposed to be installed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The access key the tests use; moto accepts any.
pub const ACCESS_KEY: &str = "AKIAFORGEKEEPTESTKEY";
/// The secret key: grepped for in every output the tests see.
pub const SECRET_KEY: &str = "fk-test-secret-9f4c1e7a2b6d8e0f3a5c7b9d1e2f4a6c";

pub struct Moto {
    pub endpoint: String,
    /// On the server that checks signatures: an access key of an IAM user it knows.
    pub known_access_key: Option<String>,
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
static STRICT_MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
static SKIP_SAID: OnceLock<()> = OnceLock::new();

/// The running server, or None (after one SKIP line) when moto is not installed.
pub fn moto() -> Option<&'static Moto> {
    running(MOTO.get_or_init(|| start(&[])))
}

/// A second server that checks every request's signature against its own IAM users, as
/// a real store does: the one place the tests meet a store refusing a credential. Its
/// first two requests go unchecked (INITIAL_NO_AUTH_ACTION_COUNT), and make the one user
/// it knows and that user's access key ([`Moto::known_access_key`]).
pub fn moto_with_authentication() -> Option<&'static Moto> {
    running(STRICT_MOTO.get_or_init(|| {
        let mut m = start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "2")])?;
        iam(&m.endpoint, "CreateUser")?;
        let answer = iam(&m.endpoint, "CreateAccessKey")?;
        let key = answer
            .split_once("<AccessKeyId>")
            .and_then(|(_, rest)| rest.split_once("</AccessKeyId>"))
            .map(|(key, _)| key.to_string())
            .ok_or_else(|| format!("moto made no access key: {answer}"))?;
        m.known_access_key = Some(key);
        Ok(m)
    }))
}

/// One IAM request (Query API) to moto, for a user named forgekeep-test. Unsigned: it is
/// one of the requests moto leaves unchecked; the Authorization header only tells moto's
/// single endpoint which service the request is for.
fn iam(endpoint: &str, action: &str) -> Result<String, String> {
    use std::io::Read;
    let addr = endpoint.trim_start_matches("http://");
    let body = format!("Action={action}&UserName=forgekeep-test&Version=2010-05-08");
    let mut conn = std::net::TcpStream::connect(addr).map_err(|e| format!("moto: {e}"))?;
    write!(
        conn,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAFORGEKEEPSETUP/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("moto: {e}"))?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)
        .map_err(|e| format!("moto: {e}"))?;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("moto refused {action}: {answer}"));
    }
    Ok(answer)
}

fn running(server: &'static Result<Moto, String>) -> Option<&'static Moto> {
    match server {
        Ok(m) => Some(m),
        Err(why) => {
            if std::env::var("FORGEKEEP_S3_TESTS").as_deref() == Ok("required") {
                panic!("the S3 tests are required (FORGEKEEP_S3_TESTS=required) but {why}");
            }
            SKIP_SAID.get_or_init(|| {
                // Straight to the stderr handle: libtest captures only the print macros,
                // and a skip must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIP: S3 tests: {why} (install it with: python3 -m pip install 'moto[server]==5.2.1')"
                );
            });
            None
        }
    }
}

fn start(env: &[(&str, &str)]) -> Result<Moto, String> {
    let ok = Command::new("python3")
        .args(["-c", "import moto.server, flask, flask_cors"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err("python3 module moto[server] is not installed".into());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/s3/moto_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start moto: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .map_err(|e| format!("moto did not start: {e}"))?;
    let port: u16 = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| format!("moto did not start (said {line:?})"))?;
    Ok(Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        known_access_key: None,
        _child: Mutex::new(child),
    })
}
