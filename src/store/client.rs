//! The connection to one store: the SDK client and the small runtime it runs on.
//!
//! forgekeep is synchronous; the SDK is async. One Tokio runtime with a single worker
//! thread per store is enough: it uploads a part in the background while the archive
//! writer fills the next one, and everything else is a `block_on` from the caller's
//! thread. Retries with backoff are the SDK's (standard mode), bounded per request; the
//! shared retry quota is switched off because one backup is one stream of requests, and
//! a quota drained by an earlier burst of resets would make the next reset fatal.

use super::config::{LockMode, Settings};
use super::error::Failure;
use super::location::ObjectUrl;
use super::objects::{timestamp, Retention};
use crate::error::{Error, Result};
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::provider_config::ProviderConfig;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ProvideCredentials, Region, RequestChecksumCalculation,
    SharedCredentialsProvider,
};
use aws_sdk_s3::types::ObjectLockMode;
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Attempts per request (the first and the retries), unless AWS_MAX_ATTEMPTS says otherwise.
const MAX_ATTEMPTS: u32 = 8;
/// Used when a custom endpoint has no region configured: MinIO, Ceph and moto accept it.
const DEFAULT_CUSTOM_REGION: &str = "us-east-1";

/// A connected store. Cheap to share (`Arc`); uploads and downloads hold one.
pub struct S3Store {
    rt: tokio::runtime::Runtime,
    client: Client,
    settings: Settings,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Settings hold no secret; the client (which holds the credentials) is left out.
        f.debug_struct("S3Store")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Builds the client and resolves the credentials (failing now, not at the first upload).
    pub fn connect(settings: &Settings) -> Result<Arc<S3Store>> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("forgekeep-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::runtime(format!("cannot start the S3 client: {e}")))?;
        let client = rt.block_on(build_client(settings))?;
        Ok(Arc::new(S3Store {
            rt,
            client,
            settings: settings.clone(),
        }))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `f` to completion on the store's runtime, from the caller's (non-async) thread.
    pub(crate) fn run<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Starts `f` in the background (a part upload while the next part fills).
    pub(crate) fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.spawn(f)
    }

    /// HeadObject: the object's size and ETag, or None when there is no such object.
    pub fn head(&self, url: &ObjectUrl) -> Result<Option<Head>> {
        self.run(head(&self.client, url))
    }
}

/// What HeadObject says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub etag: String,
    pub version_id: Option<String>,
    /// Object Lock retention. HeadObject reports it (to a credential that may read it) in
    /// the same request, so no GetObjectRetention is needed; moto, the test server, has
    /// none, and answers that GET with the object's data.
    pub retention: Option<Retention>,
}

pub(crate) async fn head(client: &Client, url: &ObjectUrl) -> Result<Option<Head>> {
    match client
        .head_object()
        .bucket(&url.bucket)
        .key(&url.key)
        .send()
        .await
    {
        Ok(h) => Ok(Some(Head {
            size: h.content_length().unwrap_or(0).max(0) as u64,
            etag: h.e_tag().unwrap_or("").to_string(),
            version_id: h.version_id().map(str::to_string),
            retention: match (h.object_lock_mode(), h.object_lock_retain_until_date()) {
                (Some(mode), Some(until)) => timestamp(until).map(|until| Retention {
                    mode: match mode {
                        ObjectLockMode::Compliance => LockMode::Compliance,
                        _ => LockMode::Governance,
                    },
                    until,
                }),
                _ => None,
            },
        })),
        Err(e) => {
            let f = Failure::from_sdk(&e);
            if f.not_found() {
                Ok(None)
            } else {
                Err(f.into_error("cannot look up", url))
            }
        }
    }
}

async fn build_client(settings: &Settings) -> Result<Client> {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let profile_files = profile_files(settings);
    let profile_name = settings.profile.clone().unwrap_or_else(|| "default".into());
    // Environment first, then the shared credentials file: the order of every AWS tool,
    // without the instance-metadata and container providers (see config.rs).
    let credentials = CredentialsProviderChain::first_try(
        "environment",
        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "profile",
        ProfileFileCredentialsProvider::builder()
            // Its HTTP client serves what a profile itself asks for (role_arn through
            // STS, or an explicit credential_source).
            .configure(&ProviderConfig::without_region().with_http_client(http.clone()))
            .profile_files(profile_files.clone())
            .profile_name(&profile_name)
            .build(),
    );
    // Resolved once now, so that a missing or broken credential is one clear error before
    // any archive is made. The SDK's messages here can quote the credentials file's path
    // and profile, never a key.
    if credentials.provide_credentials().await.is_err() {
        return Err(Error::runtime("no S3 credentials found").hint(
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile (AWS_PROFILE) in the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or [s3] credentials-file)",
        ));
    }
    let region = match &settings.region {
        Some(r) => r.clone(),
        None => {
            let from_profile = ProfileFileRegionProvider::builder()
                .profile_files(profile_files)
                .profile_name(&profile_name)
                .build()
                .region()
                .await;
            match (from_profile, &settings.endpoint) {
                (Some(r), _) => r.to_string(),
                (None, Some(_)) => DEFAULT_CUSTOM_REGION.to_string(),
                (None, None) => {
                    return Err(Error::usage("no AWS region is set").hint(
                        "set AWS_REGION (or [s3] region) to the bucket's region, or AWS_ENDPOINT_URL for another store",
                    ))
                }
            }
        }
    };
    let retry = RetryConfig::standard()
        .with_max_attempts(max_attempts())
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(20));
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .region(Region::new(region))
        .force_path_style(settings.path_style)
        .retry_config(retry)
        .retry_partition(
            RetryPartition::custom("forgekeep")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(120))
                .build(),
        )
        // The uploader computes and sends its own checksum on every part (upload.rs).
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
    if let Some(e) = &settings.endpoint {
        conf = conf.endpoint_url(e);
    }
    Ok(Client::from_conf(conf.build()))
}

fn profile_files(settings: &Settings) -> EnvConfigFiles {
    let mut files = EnvConfigFiles::builder().include_default_config_file(true);
    files = match &settings.credentials_file {
        Some(path) => files.with_file(EnvConfigFileKind::Credentials, path),
        None => files.include_default_credentials_file(true),
    };
    files.build()
}

/// AWS_MAX_ATTEMPTS, the AWS convention, when it is a sane number.
fn max_attempts() -> u32 {
    std::env::var("AWS_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=20).contains(n))
        .unwrap_or(MAX_ATTEMPTS)
}
