//! S3 failures as forgekeep errors: one line, what to do next, and no secret.
//!
//! The SDK has already retried what is worth retrying (resets, timeouts, 500/502/503/504,
//! `SlowDown`) by the time an error reaches here, so every error is final: it is turned
//! into the user's words at once. Messages are built from the error's code, the HTTP
//! status, the store's one-line message and the object's URL; requests, headers and
//! credentials are never formatted.

use super::location::ObjectUrl;
use crate::error::Error;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ErrorMetadata, ProvideErrorMetadata, SdkError};
use std::error::Error as StdError;

/// What the store said, reduced to what decides the message.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub code: Option<String>,
    pub status: Option<u16>,
    pub message: String,
}

impl Failure {
    pub fn from_sdk<E>(err: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        match err {
            SdkError::ServiceError(se) => {
                let meta: &ErrorMetadata = se.err().meta();
                Failure {
                    code: meta.code().map(str::to_string),
                    status,
                    message: one_line(meta.message().unwrap_or("")),
                }
            }
            SdkError::TimeoutError(_) => Failure {
                code: Some("Timeout".into()),
                status,
                message: "the store did not answer in time".into(),
            },
            SdkError::DispatchFailure(d) => Failure {
                code: Some(
                    if d.is_timeout() {
                        "Timeout"
                    } else {
                        "Unreachable"
                    }
                    .into(),
                ),
                status,
                message: one_line(&root_cause(err)),
            },
            _ => Failure {
                code: None,
                status,
                message: one_line(&root_cause(err)),
            },
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// 412: `If-None-Match: *` found an object (or `If-Match` found another one).
    pub fn precondition_failed(&self) -> bool {
        self.is("PreconditionFailed") || self.status == Some(412)
    }

    pub fn not_found(&self) -> bool {
        self.is("NoSuchKey")
            || self.is("NotFound")
            || (self.status == Some(404) && !self.is("NoSuchBucket"))
    }

    /// The error for `action` (e.g. "cannot upload") on `url`.
    pub fn into_error(self, action: &str, url: &ObjectUrl) -> Error {
        let code = self.code.as_deref().unwrap_or("");
        let said = if self.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.message)
        };
        let e = |what: String| Error::runtime(format!("{action} {url}: {what}"));
        match code {
            "NoSuchBucket" => e(format!("the bucket {} does not exist", url.bucket)).hint(
                "check the bucket's name and the endpoint (AWS_ENDPOINT_URL or [s3] endpoint), or create the bucket",
            ),
            "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => e(format!("access denied{said}")).hint(
                "the credential lacks the permission for this; see the permissions in man forgekeep (OFF-HOST ARCHIVES), and check AWS_PROFILE",
            ),
            "InvalidAccessKeyId" => e("the store does not know this access key".into()).hint(
                "check AWS_ACCESS_KEY_ID, or the profile in the credentials file (AWS_PROFILE)",
            ),
            // Temporary credentials: the token was cut, belongs to other keys, or expired.
            "InvalidToken" | "ExpiredToken" | "TokenRefreshRequired" => {
                e("the store refused the session token (invalid or expired)".into()).hint(
                    "check AWS_SESSION_TOKEN: temporary credentials expire, so get new ones (or unset it for long-term keys)",
                )
            }
            "SignatureDoesNotMatch" => e("the secret key does not match the access key".into())
                .hint("check AWS_SECRET_ACCESS_KEY, or the profile in the credentials file (AWS_PROFILE)"),
            "AuthorizationHeaderMalformed" | "PermanentRedirect" | "IllegalLocationConstraintException" => {
                e(format!("the bucket is not in this region{said}"))
                    .hint("set AWS_REGION or [s3] region to the bucket's region (for Garage, its s3_region)")
            }
            "NoSuchUpload" => e("the multipart upload is gone (aborted or expired meanwhile)".into())
                .hint("run again; if it keeps happening, check the bucket's lifecycle rules"),
            "InvalidRequest" | "InvalidArgument" if self.message.to_ascii_lowercase().contains("lock") => {
                e(format!("the store refused Object Lock{said}")).hint(
                    "Object Lock needs a bucket created with it enabled; use such a bucket, or remove lock-days",
                )
            }
            // Garage answers PutObjectRetention so: it has no Object Lock at all.
            "NotImplemented" if self.message.contains("Retention") || self.message.contains("Lock") => {
                e(format!("the store does not implement Object Lock{said}")).hint(
                    "this store cannot lock archives (Garage, for one, has none): remove --s3-lock-days (lock-days in [s3]), or use a store with Object Lock",
                )
            }
            "NotImplemented" => e(format!("the store does not implement this request{said}"))
                .hint("this S3-compatible store lacks a feature this command needs; see its documentation"),
            "Timeout" => e(self.message).hint("check the network and the endpoint, then run again"),
            "Unreachable" => e(format!("cannot reach the store: {}", self.message))
                .hint("check the endpoint (AWS_ENDPOINT_URL or [s3] endpoint) and the network"),
            _ if self.precondition_failed() => e("it already exists".into())
                .hint("choose another name or an output folder, or pass --force to replace it"),
            _ if self.not_found() => e("no such object".into())
                .hint("check the key; list the folder to see what is there"),
            // A HEAD request's refusal has no body, so no code: a wrong key looks the same
            // as a missing permission, and the message must not send the user after only one.
            _ if self.status == Some(403) => e(
                "access denied (the store gave no reason: a wrong access or secret key, or a missing permission)".into(),
            )
            .hint(
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile, AWS_PROFILE), and the credential's permissions (man forgekeep, OFF-HOST ARCHIVES)",
            ),
            "" => e(match self.status {
                Some(s) => format!("the store answered HTTP {s}{said}"),
                None => format!("the request failed{said}"),
            })
            .hint("run again; if it keeps failing, check the store's logs"),
            code => e(format!("{code}{said}"))
                .hint("see the store's documentation for this error code"),
        }
    }
}

/// The innermost cause: "Connection refused", not four layers of "dispatch failure".
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut e = err;
    while let Some(next) = e.source() {
        e = next;
    }
    e.to_string()
}

/// Stores' messages on one line, and short.
fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(code: Option<&str>, status: Option<u16>) -> Failure {
        Failure {
            code: code.map(str::to_string),
            status,
            message: String::new(),
        }
    }

    #[test]
    fn permanent_failures_are_one_line_with_a_hint() {
        let url = ObjectUrl::parse("s3://b/k").unwrap();
        for (code, status, needle) in [
            (Some("NoSuchBucket"), Some(404), "does not exist"),
            (Some("AccessDenied"), Some(403), "access denied"),
            (None, Some(403), "access denied"),
            (Some("PreconditionFailed"), Some(412), "already exists"),
            (None, Some(412), "already exists"),
            (None, Some(404), "no such object"),
            (Some("NoSuchKey"), Some(404), "no such object"),
            (
                Some("SignatureDoesNotMatch"),
                Some(403),
                "secret key does not match",
            ),
            (Some("InvalidToken"), Some(400), "session token"),
            (Some("ExpiredToken"), Some(400), "session token"),
            (Some("SlowDown"), Some(503), "SlowDown"),
        ] {
            let e = f(code, status).into_error("cannot upload", &url);
            let line = e.to_string();
            assert!(line.starts_with("cannot upload s3://b/k: "), "{line}");
            assert!(line.contains(needle), "{line}");
            assert!(e.hint.is_some() && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn a_store_without_object_lock_says_so() {
        // Garage 2.5's answer to PutObjectRetention, as bench/garage.sh e2e met it.
        let garage = Failure {
            code: Some("NotImplemented".into()),
            status: Some(501),
            message: "Unimplemented action: PutObjectRetention".into(),
        };
        let e = garage.into_error(
            "cannot set the Object Lock retention of",
            &ObjectUrl::parse("s3://b/k").unwrap(),
        );
        assert!(
            e.what.contains("does not implement Object Lock"),
            "{}",
            e.what
        );
        assert!(e.hint.unwrap().contains("remove --s3-lock-days"));
        let other = Failure {
            code: Some("NotImplemented".into()),
            status: Some(501),
            message: "Unimplemented action: ListObjectVersions".into(),
        };
        let e = other.into_error("cannot list", &ObjectUrl::parse("s3://b/").unwrap());
        assert!(
            e.what.contains("does not implement this request"),
            "{}",
            e.what
        );
    }

    #[test]
    fn long_or_multi_line_messages_are_cut() {
        assert_eq!(one_line("a\nb\r\n"), "a b");
        assert_eq!(one_line(&"x".repeat(500)).chars().count(), 201);
    }
}
