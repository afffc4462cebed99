//! Which secrets sign or encrypt things that others keep: when one of them changes,
//! everything issued with the old one dies, and `diff` must say so in plain words.

/// What breaks when the secret at `path` (described by its profile as `what`, if known)
/// changes or disappears; `None` for files whose change is harmless.
pub fn consequence(path: &str, what: Option<&str>) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.ends_with("/jwt/private.pem") || what.is_some_and(|w| w.contains("OAuth2")) {
        return Some("the OAuth2 signing key changed since this backup: tokens issued before it are no longer valid (Woodpecker, Drone and git credential helpers fail with \"unable to parse refresh token\" until every user logs in again)");
    }
    if path.ends_with("/actions_id_token/private.pem") {
        return Some("the Actions ID-token signing key changed since this backup: relying parties that trusted the old key reject new tokens until they fetch the new key");
    }
    if path.ends_with("/lfs/private.pem") {
        return Some("the LFS token signing key changed since this backup: LFS tokens issued before it are no longer valid");
    }
    if name == "gitlab-secrets.json" {
        return Some("gitlab-secrets.json changed since this backup: if db_key_base or otp_key_base differ, CI variables, runner tokens and 2FA stop working (check with gitlab-rake gitlab:doctor:secrets)");
    }
    if (name.starts_with("ssh_host_") && name.ends_with("_key"))
        || (path.contains("/ssh/")
            && (name.ends_with(".rsa") || name.ends_with(".ecdsa") || name.ends_with(".ed25519")))
    {
        return Some("an SSH host key changed since this backup: every client that knew the old key sees \"REMOTE HOST IDENTIFICATION HAS CHANGED\"");
    }
    if what.is_some_and(|w| w.contains("signing key")) {
        return Some("a signing key changed since this backup: what was signed with the old key is no longer accepted");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::consequence;

    #[test]
    fn knows_the_keys_that_matter() {
        assert!(consequence("/var/lib/gitea/jwt/private.pem", None)
            .unwrap()
            .contains("OAuth2 signing key"));
        assert!(consequence("/etc/gitlab/ssh_host_ed25519_key", None)
            .unwrap()
            .contains("SSH host key"));
        assert!(consequence("/data/gitea/ssh/gitea.rsa", None).is_some());
        assert!(consequence("/etc/ssh/ssh_host_ed25519_key.pub", None).is_none());
        assert!(consequence("/etc/gitea/custom/public/logo.png", None).is_none());
    }
}
