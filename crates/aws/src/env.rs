//! Typed configuration of the Lambdas, read from the environment once at cold start.
//!
//! Invariant: a function either starts with every setting it needs, parsed and checked, or
//! fails its init naming every missing or malformed variable at once — never half-configured.

use std::time::Duration;

use steward_core::types::{PrincipalId, Role};
use steward_core::Policy;

/// Why the environment is not a usable configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid Lambda configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// Everything the Steward functions read from their environment. Each function uses a subset;
/// `require` checks the ones it needs.
#[derive(Debug, Clone)]
pub struct AwsEnv {
    /// `STEWARD_TABLE`: the registry table.
    pub table: Option<String>,
    /// `STEWARD_AUDIT_BUCKET` (Object Lock) and `STEWARD_AUDIT_PREFIX` (default `audit/`).
    pub audit_bucket: Option<String>,
    pub audit_prefix: String,
    /// `STEWARD_AUDIT_RETENTION_DAYS` (default 2555, seven years).
    pub audit_retention: Duration,
    /// `STEWARD_EVIDENCE_BUCKET`: content-addressed evidence.
    pub evidence_bucket: Option<String>,
    /// `STEWARD_EVENT_BUS`: the EventBridge bus for governance events.
    pub event_bus: Option<String>,
    /// `STEWARD_APPROVAL_STATE_MACHINE_ARN`, `STEWARD_RETIREMENT_STATE_MACHINE_ARN`.
    pub approval_state_machine: Option<String>,
    pub retirement_state_machine: Option<String>,
    /// `STEWARD_SIGNING_KEY_ID`: the KMS asymmetric key that signs checkpoints.
    pub signing_key_id: Option<String>,
    /// `STEWARD_BOOTSTRAP_ADMINS`: comma-separated IAM ARNs seeded as admins.
    pub bootstrap_admins: Vec<PrincipalId>,
    /// `STEWARD_POLICY`: the policy as TOML (default: DESIGN.md's default policy).
    pub policy: Policy,
    /// `STEWARD_ROLE_CACHE_SECONDS` (default 5): how long a principal's roles are cached.
    pub role_cache: Duration,
    /// `STEWARD_ENDPOINT_URL` / `STEWARD_DYNAMODB_ENDPOINT_URL`: emulator endpoints (tests only).
    pub endpoint: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    /// `STEWARD_WEBHOOK_SECRETS_PREFIX`: the Parameter Store path under which webhook signing
    /// secrets live (default `/steward/{STEWARD_TABLE}`; the SAM template passes
    /// `/steward/${AWS::StackName}`, the path its IAM policy grants).
    pub webhook_secrets_prefix: String,
    /// `STEWARD_INTEGRATIONS_PARAMETER`: the Parameter Store parameter holding the
    /// integrations file (`crate::integrations`); unset or empty, none are configured.
    pub integrations_parameter: Option<String>,
    /// `STEWARD_OIDC_*`, `STEWARD_PUBLIC_URL`: people signing in through OpenID Connect
    /// (the `api` function; all empty when the stack has no `OidcIssuer`).
    pub oidc: OidcEnv,
}

/// The `api` function's OpenID Connect settings, as the SAM template passes them (empty
/// strings when the stack has none). Parsed here so a malformed one fails the cold start;
/// `steward_api` verifies tokens with them.
///
/// Invariant: with an issuer there is at least one audience, so a token the issuer minted
/// for some other client of it is never accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcEnv {
    /// `STEWARD_OIDC_ISSUER`: the issuer URL (`https://...`); `None`: no OpenID Connect.
    pub issuer: Option<String>,
    /// `STEWARD_OIDC_AUDIENCES`: comma-separated accepted `aud` values (the client ids).
    pub audiences: Vec<String>,
    /// `STEWARD_OIDC_CONSOLE_CLIENT_ID`: the console's (confidential) client.
    pub console_client_id: Option<String>,
    /// `STEWARD_OIDC_CLI_CLIENT_ID`: `steward login`'s (public) client.
    pub cli_client_id: Option<String>,
    /// `STEWARD_OIDC_CLIENT_SECRET_PARAMETER`: the SSM `SecureString` holding the console's
    /// client secret (read by [`crate::ssm::oidc_client_secret`]).
    pub client_secret_parameter: Option<String>,
    /// `STEWARD_OIDC_GROUPS_CLAIM`: the claim listing the person's groups (`cognito:groups`).
    pub groups_claim: Option<String>,
    /// `STEWARD_OIDC_GROUP_ROLES`: `group=role,...`; a group may appear more than once.
    pub group_roles: Vec<(String, Role)>,
    /// `STEWARD_OIDC_PROVIDER_NAME`: shown on the console's sign-in button.
    pub provider_name: Option<String>,
    /// `STEWARD_PUBLIC_URL`: the URL people reach the API at (redirect URIs derive from it).
    pub public_url: Option<String>,
    /// `STEWARD_OIDC_SCOPES`: comma-separated scopes to ask for (default openid,email,profile).
    pub scopes: Vec<String>,
    /// `STEWARD_OIDC_ALGORITHMS`: comma-separated accepted signature algorithms (default
    /// RS256,PS256,ES256,EdDSA; HMAC is refused when the verifier is built).
    pub algorithms: Vec<String>,
}

fn list(v: Option<String>) -> Vec<String> {
    v.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl OidcEnv {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Self {
        // The template sets every variable, to "" when the stack has no OpenID Connect.
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut group_roles = Vec::new();
        for pair in list(get("STEWARD_OIDC_GROUP_ROLES")) {
            match pair.split_once('=') {
                Some((group, role)) if !group.trim().is_empty() => {
                    match role.trim().parse::<Role>() {
                        Ok(r) => group_roles.push((group.trim().to_owned(), r)),
                        Err(_) => errors.push(format!(
                            "STEWARD_OIDC_GROUP_ROLES: {:?} in {pair:?} is not a role",
                            role.trim()
                        )),
                    }
                }
                _ => errors.push(format!(
                    "STEWARD_OIDC_GROUP_ROLES: {pair:?} is not GROUP=ROLE"
                )),
            }
        }
        let oidc = OidcEnv {
            issuer: get("STEWARD_OIDC_ISSUER"),
            audiences: list(get("STEWARD_OIDC_AUDIENCES")),
            console_client_id: get("STEWARD_OIDC_CONSOLE_CLIENT_ID"),
            cli_client_id: get("STEWARD_OIDC_CLI_CLIENT_ID"),
            client_secret_parameter: get("STEWARD_OIDC_CLIENT_SECRET_PARAMETER"),
            groups_claim: get("STEWARD_OIDC_GROUPS_CLAIM"),
            group_roles,
            provider_name: get("STEWARD_OIDC_PROVIDER_NAME"),
            public_url: get("STEWARD_PUBLIC_URL"),
            scopes: list(get("STEWARD_OIDC_SCOPES")),
            algorithms: list(get("STEWARD_OIDC_ALGORITHMS")),
        };
        match &oidc.issuer {
            Some(issuer) => {
                if !issuer.starts_with("https://") {
                    errors.push(format!(
                        "STEWARD_OIDC_ISSUER={issuer:?} is not an https:// URL"
                    ));
                }
                if oidc.audiences.is_empty() {
                    errors.push(
                        "STEWARD_OIDC_AUDIENCES is not set: with an issuer, name the client ids \
                         whose tokens are accepted"
                            .to_owned(),
                    );
                }
            }
            None if oidc.console_client_id.is_some()
                || oidc.cli_client_id.is_some()
                || !oidc.audiences.is_empty() =>
            {
                errors.push("STEWARD_OIDC_* client settings without STEWARD_OIDC_ISSUER".into());
            }
            None => {}
        }
        oidc
    }
}

/// One segment of a Parameter Store path.
fn ssm_path_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl AwsEnv {
    /// Whether the clients talk to emulators (an endpoint is set): static credentials and
    /// path-style S3 addressing then.
    pub fn emulated(&self) -> bool {
        self.endpoint.is_some() || self.dynamodb_endpoint.is_some()
    }

    /// Reads and parses the environment; malformed values are errors, missing ones `None`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(var)
    }

    /// Same as [`AwsEnv::from_env`] over any lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let days = match get("STEWARD_AUDIT_RETENTION_DAYS") {
            None => 2555,
            Some(v) => v.parse::<u64>().ok().filter(|d| *d > 0).unwrap_or_else(|| {
                errors.push(format!(
                    "STEWARD_AUDIT_RETENTION_DAYS={v:?} is not a positive number of days"
                ));
                1
            }),
        };
        let role_cache = match get("STEWARD_ROLE_CACHE_SECONDS") {
            None => 5,
            Some(v) => v.parse::<u64>().unwrap_or_else(|_| {
                errors.push(format!(
                    "STEWARD_ROLE_CACHE_SECONDS={v:?} is not a number of seconds"
                ));
                0
            }),
        };
        let mut bootstrap_admins = Vec::new();
        for arn in get("STEWARD_BOOTSTRAP_ADMINS")
            .unwrap_or_default()
            .split(',')
        {
            let arn = arn.trim();
            if arn.is_empty() {
                continue;
            }
            match PrincipalId::parse(arn) {
                Ok(p) if arn.starts_with("arn:") => bootstrap_admins.push(p),
                _ => errors.push(format!(
                    "STEWARD_BOOTSTRAP_ADMINS: {arn:?} is not an IAM ARN"
                )),
            }
        }
        let policy = match get("STEWARD_POLICY") {
            None => Policy::default(),
            Some(text) => Policy::from_toml(&text).unwrap_or_else(|e| {
                errors.push(format!("STEWARD_POLICY: {e}"));
                Policy::default()
            }),
        };
        let oidc = OidcEnv::from_lookup(&get, &mut errors);
        let table = get("STEWARD_TABLE");
        let webhook_secrets_prefix = match get("STEWARD_WEBHOOK_SECRETS_PREFIX") {
            Some(p) if p.starts_with('/') && p.trim_matches('/').split('/').all(ssm_path_part) => {
                p.trim_end_matches('/').to_owned()
            }
            Some(p) => {
                errors.push(format!(
                    "STEWARD_WEBHOOK_SECRETS_PREFIX={p:?} is not a Parameter Store path \
                     (/a/b: letters, digits, '.', '-', '_')"
                ));
                String::new()
            }
            None => format!("/steward/{}", table.as_deref().unwrap_or("steward")),
        };
        let integrations_parameter = match get(crate::integrations::PARAMETER_VAR)
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
        {
            Some(p) if p.starts_with('/') && p.trim_matches('/').split('/').all(ssm_path_part) => {
                Some(p.trim_end_matches('/').to_owned())
            }
            Some(p) => {
                errors.push(format!(
                    "{}={p:?} is not a Parameter Store path (/a/b: letters, digits, '.', '-', '_')",
                    crate::integrations::PARAMETER_VAR
                ));
                None
            }
            None => None,
        };
        let env = AwsEnv {
            table,
            audit_bucket: get("STEWARD_AUDIT_BUCKET"),
            audit_prefix: get("STEWARD_AUDIT_PREFIX").unwrap_or_else(|| "audit/".to_owned()),
            audit_retention: Duration::from_secs(days * 86_400),
            evidence_bucket: get("STEWARD_EVIDENCE_BUCKET"),
            event_bus: get("STEWARD_EVENT_BUS"),
            approval_state_machine: get("STEWARD_APPROVAL_STATE_MACHINE_ARN"),
            retirement_state_machine: get("STEWARD_RETIREMENT_STATE_MACHINE_ARN"),
            signing_key_id: get("STEWARD_SIGNING_KEY_ID"),
            bootstrap_admins,
            policy,
            role_cache: Duration::from_secs(role_cache),
            endpoint: get("STEWARD_ENDPOINT_URL"),
            dynamodb_endpoint: get("STEWARD_DYNAMODB_ENDPOINT_URL"),
            webhook_secrets_prefix,
            integrations_parameter,
            oidc,
        };
        if errors.is_empty() {
            Ok(env)
        } else {
            Err(ConfigError(errors))
        }
    }

    /// Fails unless every named setting is present, naming all that are missing.
    pub fn require(&self, names: &[&str]) -> Result<(), ConfigError> {
        let missing: Vec<String> = names
            .iter()
            .filter(|n| match **n {
                "STEWARD_TABLE" => self.table.is_none(),
                "STEWARD_AUDIT_BUCKET" => self.audit_bucket.is_none(),
                "STEWARD_EVIDENCE_BUCKET" => self.evidence_bucket.is_none(),
                "STEWARD_EVENT_BUS" => self.event_bus.is_none(),
                "STEWARD_APPROVAL_STATE_MACHINE_ARN" => self.approval_state_machine.is_none(),
                "STEWARD_RETIREMENT_STATE_MACHINE_ARN" => self.retirement_state_machine.is_none(),
                "STEWARD_SIGNING_KEY_ID" => self.signing_key_id.is_none(),
                _ => false,
            })
            .map(|n| format!("{n} is not set"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(missing))
        }
    }

    /// Every variable this module reads (the template test checks the SAM template sets them).
    pub const VARIABLES: &'static [&'static str] = &[
        "STEWARD_TABLE",
        "STEWARD_AUDIT_BUCKET",
        "STEWARD_AUDIT_PREFIX",
        "STEWARD_AUDIT_RETENTION_DAYS",
        "STEWARD_EVIDENCE_BUCKET",
        "STEWARD_EVENT_BUS",
        "STEWARD_APPROVAL_STATE_MACHINE_ARN",
        "STEWARD_RETIREMENT_STATE_MACHINE_ARN",
        "STEWARD_SIGNING_KEY_ID",
        "STEWARD_BOOTSTRAP_ADMINS",
        "STEWARD_POLICY",
        "STEWARD_ROLE_CACHE_SECONDS",
        "STEWARD_ENDPOINT_URL",
        "STEWARD_DYNAMODB_ENDPOINT_URL",
        "STEWARD_WEBHOOK_SECRETS_PREFIX",
        "STEWARD_INTEGRATIONS_PARAMETER",
        // Read by steward-sagemaker's functions (crates/sagemaker/src/lib.rs).
        "STEWARD_SAGEMAKER_PRINCIPAL",
        "STEWARD_SAGEMAKER_MANIFEST_BUCKET",
        "STEWARD_SAGEMAKER_REVERT_APPROVALS",
        "STEWARD_SAGEMAKER_TAG_FINDINGS",
        // The api function's OpenID Connect settings (OidcEnv).
        "STEWARD_OIDC_ISSUER",
        "STEWARD_OIDC_AUDIENCES",
        "STEWARD_OIDC_CONSOLE_CLIENT_ID",
        "STEWARD_OIDC_CLI_CLIENT_ID",
        "STEWARD_OIDC_CLIENT_SECRET_PARAMETER",
        "STEWARD_OIDC_GROUPS_CLAIM",
        "STEWARD_OIDC_GROUP_ROLES",
        "STEWARD_OIDC_PROVIDER_NAME",
        "STEWARD_OIDC_SCOPES",
        "STEWARD_OIDC_ALGORITHMS",
        "STEWARD_PUBLIC_URL",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_apply_when_optional_settings_are_absent() {
        let e = AwsEnv::from_lookup(env(&[("STEWARD_TABLE", "t")])).unwrap();
        assert_eq!(e.table.as_deref(), Some("t"));
        assert_eq!(e.audit_prefix, "audit/");
        assert_eq!(e.audit_retention, Duration::from_secs(2555 * 86_400));
        assert_eq!(e.role_cache, Duration::from_secs(5));
        assert_eq!(e.webhook_secrets_prefix, "/steward/t");
        e.require(&["STEWARD_TABLE"]).unwrap();
    }

    #[test]
    fn the_webhook_secrets_prefix_is_a_parameter_store_path() {
        let e = AwsEnv::from_lookup(env(&[(
            "STEWARD_WEBHOOK_SECRETS_PREFIX",
            "/steward/prod-eu/",
        )]))
        .unwrap();
        assert_eq!(e.webhook_secrets_prefix, "/steward/prod-eu");
        for bad in ["steward/prod", "/steward//prod", "/steward/pr od", "/"] {
            let err =
                AwsEnv::from_lookup(env(&[("STEWARD_WEBHOOK_SECRETS_PREFIX", bad)])).unwrap_err();
            assert!(
                err.to_string().contains("STEWARD_WEBHOOK_SECRETS_PREFIX"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn every_malformed_or_missing_setting_is_named_at_once() {
        let err = AwsEnv::from_lookup(env(&[
            ("STEWARD_AUDIT_RETENTION_DAYS", "seven years"),
            ("STEWARD_BOOTSTRAP_ADMINS", "arn:aws:iam::1:role/a, alice"),
            ("STEWARD_POLICY", "[tiers.low]\nreviews = 3"),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        let e = AwsEnv::from_lookup(env(&[])).unwrap();
        let err = e
            .require(&["STEWARD_TABLE", "STEWARD_EVENT_BUS"])
            .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn oidc_settings_are_absent_by_default_and_parsed_when_set() {
        let e = AwsEnv::from_lookup(env(&[])).unwrap();
        assert_eq!(e.oidc, OidcEnv::default());
        // The template passes empty strings when the stack has no issuer.
        let e = AwsEnv::from_lookup(env(&[
            ("STEWARD_OIDC_ISSUER", ""),
            ("STEWARD_OIDC_AUDIENCES", ""),
            ("STEWARD_PUBLIC_URL", ""),
        ]))
        .unwrap();
        assert_eq!(e.oidc, OidcEnv::default());
        let e = AwsEnv::from_lookup(env(&[
            (
                "STEWARD_OIDC_ISSUER",
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
            ),
            ("STEWARD_OIDC_AUDIENCES", "console-id, cli-id"),
            ("STEWARD_OIDC_CONSOLE_CLIENT_ID", "console-id"),
            ("STEWARD_OIDC_GROUPS_CLAIM", "cognito:groups"),
            (
                "STEWARD_OIDC_GROUP_ROLES",
                "ml-reviewers=technical-reviewer,ml-admins=admin",
            ),
        ]))
        .unwrap();
        assert_eq!(e.oidc.audiences, ["console-id", "cli-id"]);
        assert_eq!(
            e.oidc.group_roles,
            [
                ("ml-reviewers".to_owned(), Role::TechnicalReviewer),
                ("ml-admins".to_owned(), Role::Admin)
            ]
        );
    }

    #[test]
    fn an_issuer_without_audiences_or_a_malformed_group_mapping_fails_the_cold_start() {
        let err = AwsEnv::from_lookup(env(&[
            ("STEWARD_OIDC_ISSUER", "http://idp.example"),
            ("STEWARD_OIDC_GROUP_ROLES", "ml-admins=root,reviewers"),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 4, "{err}");
        let err = AwsEnv::from_lookup(env(&[("STEWARD_OIDC_CLI_CLIENT_ID", "cli")])).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
    }

    #[test]
    fn bootstrap_admins_are_parsed_as_principals() {
        let e = AwsEnv::from_lookup(env(&[(
            "STEWARD_BOOTSTRAP_ADMINS",
            "arn:aws:iam::123456789012:role/platform-admin,arn:aws:iam::123456789012:user/ops",
        )]))
        .unwrap();
        assert_eq!(e.bootstrap_admins.len(), 2);
    }
}
