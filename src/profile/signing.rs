//! Which secrets sign or encrypt things that others keep: when one of them changes,
//! everything issued with the old one dies, and `diff` must say so in plain words
//! (docs/FORGES.md §1.2, §1.3). Some of them are values inside app.ini, not files:
//! [`app_ini_consequence`] compares those by value, so an edited setting is not
//! mistaken for a new key.

use super::ini::Ini;

const JWT_SECRET_TOKENS: &str = "[oauth2] JWT_SECRET changed since this backup: it signs the OAuth2 tokens (JWT_SIGNING_ALGORITHM HS256/384/512), so every token issued before it is no longer valid (Woodpecker, Drone and git credential helpers fail with \"unable to parse refresh token\" until every user logs in again), and the account-activation and password-reset links already mailed stop working";
const JWT_SECRET_LINKS: &str = "[oauth2] JWT_SECRET changed since this backup: the account-activation and password-reset links the forge already mailed, signed with it, stop working";
const SECRET_KEY: &str = "[security] SECRET_KEY changed since this backup: 2FA secrets, Actions secrets, auth-source passwords and webhook secrets stored in the database were encrypted with the old one and can no longer be read (users with 2FA cannot log in)";

/// Whether a source `what` is a forge's app.ini (as the profiles describe it).
pub fn is_app_ini(what: Option<&str>) -> bool {
    what.is_some_and(|w| w.contains("app.ini (SECRET_KEY"))
}

/// What breaks because of how an app.ini changed between `archived` and `live`: a
/// different `[oauth2] JWT_SECRET` or `[security] SECRET_KEY` (values compared, never
/// shown). `None` when those stayed the same (an edited setting breaks nothing kept).
pub fn app_ini_consequence(archived: &str, live: &str) -> Option<&'static str> {
    let (old, new) = (Ini::parse(archived), Ini::parse(live));
    let changed = |sec: &str, key: &str| {
        let v = |i: &Ini| i.get(sec, key).map(|v| v.trim().to_string());
        v(&old).is_some() && v(&old) != v(&new)
    };
    if changed("security", "SECRET_KEY") {
        return Some(SECRET_KEY);
    }
    if changed("oauth2", "JWT_SECRET") {
        let symmetric = old
            .non_empty("oauth2", "JWT_SIGNING_ALGORITHM")
            .is_some_and(super::gitea::is_symmetric);
        return Some(if symmetric {
            JWT_SECRET_TOKENS
        } else {
            JWT_SECRET_LINKS
        });
    }
    None
}

/// What breaks when the secret at `path` (described by its profile as `what`, if known)
/// changes or disappears; `None` for files whose change is harmless.
pub fn consequence(path: &str, what: Option<&str>) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.ends_with("/jwt/private.pem") || what.is_some_and(|w| w.contains("OAuth2")) {
        return Some("the OAuth2 signing key changed since this backup: tokens issued before it are no longer valid (Woodpecker, Drone and git credential helpers fail with \"unable to parse refresh token\" until every user logs in again)");
    }
    // A secret kept in a file app.ini names (`JWT_SECRET_URI`, `SECRET_KEY_URI`).
    if what.is_some_and(|w| w.contains("[oauth2] JWT_SECRET_URI")) {
        return Some(JWT_SECRET_TOKENS);
    }
    if what.is_some_and(|w| w.contains("[security] SECRET_KEY_URI")) {
        return Some(SECRET_KEY);
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
        assert!(consequence(
            "/etc/gitea/jwt_secret",
            Some("[oauth2] JWT_SECRET_URI secret file")
        )
        .unwrap()
        .contains("JWT_SECRET"));
    }

    #[test]
    fn app_ini_secrets_compared_by_value() {
        use super::app_ini_consequence;
        let old = "[oauth2]\nJWT_SIGNING_ALGORITHM = HS256\nJWT_SECRET = aaaa\n[security]\nSECRET_KEY = k\n";
        // Another setting edited: nothing that was signed breaks.
        let edited = format!("{old}[service]\nDISABLE_REGISTRATION = true\n");
        assert_eq!(app_ini_consequence(old, &edited), None);
        let rotated = old.replace("aaaa", "bbbb");
        assert!(app_ini_consequence(old, &rotated)
            .unwrap()
            .contains("unable to parse refresh token"));
        let rs = old.replace("HS256", "RS256");
        assert!(!app_ini_consequence(&rs, &rs.replace("aaaa", "bbbb"))
            .unwrap()
            .contains("refresh token"));
        assert!(app_ini_consequence(old, &old.replace("= k", "= other"))
            .unwrap()
            .contains("SECRET_KEY"));
        // Never the values themselves.
        assert!(!app_ini_consequence(old, &rotated).unwrap().contains("bbbb"));
    }
}
