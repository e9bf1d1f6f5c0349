//! OpenID Connect settings as operators give them — `steward serve` flags or the API
//! function's `STEWARD_OIDC_*` environment — turned into a checked [`OidcConfig`].
//!
//! Invariant: a deployment either has no OIDC (no issuer) or a complete, valid configuration;
//! a half-given one (an issuer without an audience, an unknown role, an HMAC algorithm) stops
//! start-up with the setting named, rather than running with sign-in silently off.

use super::oidc::{ConsoleClient, OidcConfig, OidcError};

/// The raw settings (every list already split on commas).
#[derive(Debug, Clone, Default)]
pub struct OidcSettings {
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    pub console_client_id: Option<String>,
    pub console_client_secret: Option<String>,
    pub cli_client_id: Option<String>,
    pub groups_claim: Option<String>,
    pub group_roles: Vec<String>,
    pub provider_name: Option<String>,
    pub public_url: Option<String>,
    /// Scopes to ask for (default `openid email profile`); some providers put groups in their
    /// ID tokens only for a `groups` scope.
    pub scopes: Vec<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn list(v: Option<String>) -> Vec<String> {
    v.unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

impl OidcSettings {
    /// The settings in the environment (`STEWARD_OIDC_ISSUER`, `STEWARD_OIDC_AUDIENCES`, ...,
    /// `STEWARD_OIDC_CLIENT_SECRET`, `STEWARD_PUBLIC_URL`); empty values count as unset, as a
    /// template's `!If` leaves them.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        Self {
            issuer: var("STEWARD_OIDC_ISSUER"),
            audiences: list(var("STEWARD_OIDC_AUDIENCES")),
            algorithms: list(var("STEWARD_OIDC_ALGORITHMS")),
            console_client_id: var("STEWARD_OIDC_CONSOLE_CLIENT_ID"),
            console_client_secret: var("STEWARD_OIDC_CLIENT_SECRET"),
            cli_client_id: var("STEWARD_OIDC_CLI_CLIENT_ID"),
            groups_claim: var("STEWARD_OIDC_GROUPS_CLAIM"),
            group_roles: list(var("STEWARD_OIDC_GROUP_ROLES")),
            provider_name: var("STEWARD_OIDC_PROVIDER_NAME"),
            public_url: var("STEWARD_PUBLIC_URL"),
            scopes: list(var("STEWARD_OIDC_SCOPES")),
        }
    }

    /// The checked configuration; `None` when no issuer is set.
    pub fn build(self) -> Result<Option<OidcConfig>, OidcError> {
        let Some(issuer) = non_empty(self.issuer) else {
            if !self.audiences.is_empty() || non_empty(self.console_client_id).is_some() {
                return Err(OidcError::Config(
                    "OIDC audiences or clients are set but no issuer (--oidc-issuer)".into(),
                ));
            }
            return Ok(None);
        };
        let mut audiences = self.audiences;
        let cli = non_empty(self.cli_client_id);
        let console = non_empty(self.console_client_id);
        // A client Steward serves must be an accepted audience of its own ID tokens.
        for client in cli.iter().chain(console.iter()) {
            if !audiences.contains(client) {
                audiences.push(client.clone());
            }
        }
        let mut config = OidcConfig::new(&issuer, audiences)?
            .with_algorithms(&self.algorithms)?
            .with_group_roles(non_empty(self.groups_claim), &self.group_roles)?;
        config.console = Some(ConsoleClient {
            client_id: console.unwrap_or_else(|| config.audiences[0].clone()),
            client_secret: non_empty(self.console_client_secret),
        });
        config.cli_client_id = cli;
        if !self.scopes.is_empty() {
            if !self.scopes.iter().any(|s| s == "openid") {
                return Err(OidcError::Config(
                    "the scopes must include openid (--oidc-scopes)".into(),
                ));
            }
            config.scopes = self.scopes;
        }
        if let Some(name) = non_empty(self.provider_name) {
            config.provider_name = name;
        }
        if let Some(url) = non_empty(self.public_url) {
            url::Url::parse(&url)
                .map_err(|e| OidcError::Config(format!("public URL {url:?}: {e}")))?;
            config.public_url = Some(url.trim_end_matches('/').to_owned());
        }
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_issuer_is_no_oidc_but_a_half_configuration_is_an_error() {
        assert!(OidcSettings::default().build().unwrap().is_none());
        let half = OidcSettings {
            audiences: vec!["steward".into()],
            ..Default::default()
        };
        assert!(half.build().is_err());
    }

    #[test]
    fn the_console_and_cli_clients_are_accepted_audiences() {
        let c = OidcSettings {
            issuer: Some("https://idp.example.com".into()),
            console_client_id: Some("console".into()),
            cli_client_id: Some("cli".into()),
            console_client_secret: Some("s3cret".into()),
            public_url: Some("https://steward.example.com/".into()),
            ..Default::default()
        }
        .build()
        .unwrap()
        .unwrap();
        assert_eq!(c.audiences, ["cli", "console"]);
        assert_eq!(c.console.as_ref().unwrap().client_id, "console");
        assert_eq!(c.public_url.as_deref(), Some("https://steward.example.com"));
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the secret never shows"
        );
    }
}
