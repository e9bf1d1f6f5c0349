//! The integrations file: one TOML file per deployment (`steward serve --integrations FILE`),
//! one table per integration, secrets by reference.
//!
//! ```toml
//! console_url = "https://steward.example.com"   # links in tickets and messages
//!
//! [slack.governance]
//! url = { env = "SLACK_WEBHOOK_URL" }            # an incoming-webhook URL is a secret
//! events = ["ReviewRequested", "ReviewDecided"]  # default: reviews, decisions, incidents, rollbacks
//! ```
//!
//! Invariants: unknown keys are refused, every error names the key at fault (`slack.x.url`);
//! a [`Secret`] is resolved once, at load, from the environment (`{ env = "NAME" }`) or a file
//! (`{ file = "PATH" }`), and its value is never printed (its `Debug` is redacted, errors name
//! the reference, not the value). Plain strings are refused where a secret is expected, so a
//! token cannot end up in a file that is committed with the configuration.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// Why the integrations file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the integrations file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("integrations file: {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl ConfigError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationsConfig {
    /// The console's public base URL, for links (e.g. `https://steward.example.com`).
    pub console_url: Option<String>,
    #[serde(default)]
    pub slack: BTreeMap<String, SlackConfig>,
    #[serde(default)]
    pub jira: BTreeMap<String, crate::jira::JiraConfig>,
    #[serde(default)]
    pub github: BTreeMap<String, crate::github::GithubConfig>,
    #[serde(default)]
    pub servicenow: BTreeMap<String, crate::servicenow::ServiceNowConfig>,
}

/// `[slack.NAME]`: an incoming webhook (Slack, or anything that takes its JSON, e.g. Teams
/// workflows or Mattermost).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL (it embeds a token: a secret reference).
    pub url: SecretRef,
    /// Event types posted; default [`SLACK_DEFAULT_EVENTS`].
    pub events: Option<Vec<String>>,
}

/// What a Slack integration posts when `events` is left out.
pub const SLACK_DEFAULT_EVENTS: &[&str] = &[
    "ReviewRequested",
    "ReviewDecided",
    "PromotionApproved",
    "PromotionRejected",
    "IncidentOpened",
    "ModelRolledBack",
    "ShadowModelDetected",
];

/// Where a secret is: `{ env = "NAME" }`, `{ file = "PATH" }`, or, on AWS, `{ ssm = "NAME" }`
/// (a Parameter Store `SecureString`, read by the functions at cold start).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum SecretRef {
    Env(String),
    File(String),
    Ssm(String),
    /// A reference already read by whoever can read it (the AWS functions read `ssm` ones);
    /// never in a file.
    #[serde(skip)]
    Fetched(Secret),
}

/// A resolved secret; prints as `Secret(redacted)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one call that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// A secret from its value: one a loader read itself (the AWS functions, from SSM), or a
    /// test's.
    pub fn literal(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl SecretRef {
    /// The value the reference names; `field` is the key, for errors.
    pub fn resolve(&self, field: &str) -> Result<Secret, ConfigError> {
        let value = match self {
            SecretRef::Env(name) => std::env::var(name).map_err(|_| {
                ConfigError::invalid(field, format!("the environment variable {name} is not set"))
            })?,
            SecretRef::File(path) => std::fs::read_to_string(path).map_err(|e| {
                ConfigError::invalid(field, format!("cannot read the secret file {path}: {e}"))
            })?,
            SecretRef::Ssm(name) => {
                return Err(ConfigError::invalid(
                    field,
                    format!(
                    "{{ ssm = {name:?} }} is read by the AWS functions only; use env or file here"
                ),
                ))
            }
            SecretRef::Fetched(s) => s.0.clone(),
        };
        let value = value.trim_end_matches(['\r', '\n']).to_owned();
        if value.is_empty() {
            return Err(ConfigError::invalid(field, "the secret is empty"));
        }
        Ok(Secret(value))
    }
}

impl IntegrationsConfig {
    /// Parses the file's text; errors name the key.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::new(text);
        let config: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::invalid(
                if path == "." { "(file)".into() } else { path },
                e.inner().message().to_owned(),
            )
        })?;
        config.check()?;
        Ok(config)
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(u) = &self.console_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(ConfigError::invalid("console_url", "an http(s):// URL"));
            }
        }
        for (name, c) in &self.slack {
            check_name("slack", name)?;
            if let Some(events) = &c.events {
                steward_core::webhooks::parse_event_types(events).map_err(|e| {
                    ConfigError::invalid(format!("slack.{name}.{}", e.field), e.message)
                })?;
            }
        }
        for (name, c) in &self.jira {
            check_name("jira", name)?;
            c.check(name)?;
        }
        for (name, c) in &self.github {
            c.check(name)?;
        }
        for (name, c) in &self.servicenow {
            check_name("servicenow", name)?;
            c.check(name)?;
        }
        if self.servicenow.len() > 1 {
            return Err(ConfigError::invalid(
                "servicenow",
                "one ServiceNow instance per deployment: its change requests gate production",
            ));
        }
        Ok(())
    }

    /// Every secret reference in the file with the key it is at (`jira.x.api_token`), for a
    /// loader that reads some kinds itself (the AWS functions replace `ssm` ones with
    /// [`SecretRef::Fetched`]).
    pub fn secret_refs_mut(&mut self) -> Vec<(String, &mut SecretRef)> {
        let mut refs: Vec<(String, &mut SecretRef)> = Vec::new();
        for (n, c) in &mut self.slack {
            refs.push((format!("slack.{n}.url"), &mut c.url));
        }
        for (n, c) in &mut self.jira {
            refs.push((format!("jira.{n}.api_token"), &mut c.api_token));
            if let Some(r) = &mut c.webhook_secret {
                refs.push((format!("jira.{n}.webhook_secret"), r));
            }
        }
        for (n, c) in &mut self.github {
            refs.push((format!("github.{n}.private_key"), &mut c.private_key));
            refs.push((format!("github.{n}.webhook_secret"), &mut c.webhook_secret));
        }
        for (n, c) in &mut self.servicenow {
            refs.extend(c.secret_refs_mut(n));
        }
        refs
    }

    /// Every integration's name, with its kind, in file order of kinds.
    pub fn names(&self) -> Vec<(&'static str, &str)> {
        let slack = self.slack.keys().map(|n| ("slack", n.as_str()));
        let jira = self.jira.keys().map(|n| ("jira", n.as_str()));
        let github = self.github.keys().map(|n| ("github", n.as_str()));
        let servicenow = self.servicenow.keys().map(|n| ("servicenow", n.as_str()));
        slack.chain(jira).chain(servicenow).chain(github).collect()
    }
}

/// Integration names are ids: `[a-z0-9][a-z0-9_-]*`.
pub fn check_name(kind: &str, name: &str) -> Result<(), ConfigError> {
    steward_core::webhooks::WebhookId::parse(name)
        .map(|_| ())
        .map_err(|e| ConfigError::invalid(format!("{kind}.{name}"), e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_an_unknown_key_or_a_plain_secret_is_refused_naming_the_key() {
        let err =
            IntegrationsConfig::from_toml("[slack.x]\nurl = \"https://hooks.slack.com/T/B/x\"\n")
                .unwrap_err();
        assert!(err.to_string().contains("slack.x.url"), "{err}");
        let err =
            IntegrationsConfig::from_toml("[slack.x]\nurl = { env = \"A\" }\nchannel = \"#x\"\n")
                .unwrap_err();
        assert!(err.to_string().contains("slack.x"), "{err}");
        let err = IntegrationsConfig::from_toml(
            "[slack.x]\nurl = { env = \"A\" }\nevents = [\"Nope\"]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("slack.x.events[0]"), "{err}");
        let err =
            IntegrationsConfig::from_toml("[slack.Bad]\nurl = { env = \"A\" }\n").unwrap_err();
        assert!(err.to_string().contains("slack.Bad"), "{err}");
    }

    #[test]
    fn secrets_resolve_from_the_environment_or_a_file_and_never_print() {
        let dir = tempfile_dir();
        let path = dir.join("token");
        std::fs::write(&path, "s3cr3t\n").unwrap();
        let s = SecretRef::File(path.display().to_string())
            .resolve("x")
            .unwrap();
        assert_eq!(s.expose(), "s3cr3t");
        assert_eq!(format!("{s:?}"), "Secret(redacted)");
        let err = SecretRef::Env("STEWARD_TEST_SURELY_UNSET_VAR".into())
            .resolve("slack.x.url")
            .unwrap_err();
        assert!(
            err.to_string().contains("slack.x.url")
                && err.to_string().contains("STEWARD_TEST_SURELY_UNSET_VAR")
        );
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("steward-int-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
