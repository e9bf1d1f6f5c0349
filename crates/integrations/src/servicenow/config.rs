//! `[servicenow.NAME]`: the keys of a ServiceNow integration and what is checked at load.

use serde::Deserialize;

use crate::config::{ConfigError, SecretRef};

/// `[servicenow.NAME]`: a ServiceNow instance whose change requests gate production.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNowConfig {
    /// `https://INSTANCE.service-now.com` (no path).
    pub instance_url: String,
    /// Basic auth: the integration user ...
    pub user: Option<String>,
    /// ... and its password (a secret reference).
    pub password: Option<SecretRef>,
    /// Or an OAuth access token, sent as `Authorization: Bearer` (a secret reference).
    pub token: Option<SecretRef>,
    /// The change's `assignment_group` (a sys_id, or a name ServiceNow resolves).
    pub assignment_group: Option<String>,
    /// The change's `category`.
    pub category: Option<String>,
    /// The `state` values that count as approved (with `approval = approved`); default
    /// [`super::DEFAULT_APPROVED_STATES`].
    pub approved_states: Option<Vec<i64>>,
}

impl ServiceNowConfig {
    /// Its secret references with their keys (see `IntegrationsConfig::secret_refs_mut`).
    pub fn secret_refs_mut(&mut self, name: &str) -> Vec<(String, &mut SecretRef)> {
        let mut refs = Vec::new();
        if let Some(r) = &mut self.password {
            refs.push((format!("servicenow.{name}.password"), r));
        }
        if let Some(r) = &mut self.token {
            refs.push((format!("servicenow.{name}.token"), r));
        }
        refs
    }

    /// What can be checked without resolving secrets; errors name the key.
    pub fn check(&self, name: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("servicenow.{name}.{k}");
        let url = self.instance_url.trim_end_matches('/');
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| url.starts_with(p));
        let Some(rest) = url.strip_prefix("https://").or_else(|| {
            loopback
                .then(|| url.split_once("://").map(|p| p.1))
                .flatten()
        }) else {
            return Err(ConfigError::invalid(
                key("instance_url"),
                "an https:// URL such as https://acme.service-now.com",
            ));
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(ConfigError::invalid(
                key("instance_url"),
                "the instance's base URL only, e.g. https://acme.service-now.com (no path, query or credentials)",
            ));
        }
        let invalid = |k: &str, m: &str| Err(ConfigError::invalid(key(k), m));
        match (
            self.user.as_deref().map(str::trim),
            &self.password,
            &self.token,
        ) {
            (Some(u), Some(_), None) if !u.is_empty() => {}
            (None, None, Some(_)) => {}
            (_, _, Some(_)) => {
                return invalid(
                    "token",
                    "either user and password (Basic auth) or token (OAuth), not both",
                )
            }
            (Some(_), None, None) => return invalid("password", "required with user"),
            (None, Some(_), None) => return invalid("user", "required with password"),
            (Some(_), Some(_), None) => return invalid("user", "must not be empty"),
            (None, None, None) => {
                return Err(ConfigError::invalid(
                    format!("servicenow.{name}"),
                    "needs user and password (Basic auth) or token (OAuth)",
                ))
            }
        }
        if self.approved_states.as_ref().is_some_and(|s| s.is_empty()) {
            return Err(ConfigError::invalid(
                key("approved_states"),
                "at least one state (default [-2, -1]: Scheduled, Implement)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<crate::IntegrationsConfig, ConfigError> {
        crate::IntegrationsConfig::from_toml(&format!(
            "[servicenow.itsm]\ninstance_url = \"https://acme.service-now.com\"\n{extra}"
        ))
    }

    #[test]
    fn a_servicenow_table_needs_one_way_to_sign_in_and_an_instance_url_without_a_path() {
        assert!(config("user = \"u\"\npassword = { env = \"P\" }\n").is_ok());
        assert!(config("token = { env = \"T\" }\n").is_ok());
        for (extra, key) in [
            ("", "servicenow.itsm"),
            ("user = \"u\"\n", "servicenow.itsm.password"),
            ("password = { env = \"P\" }\n", "servicenow.itsm.user"),
            (
                "user = \"u\"\npassword = { env = \"P\" }\ntoken = { env = \"T\" }\n",
                "servicenow.itsm.token",
            ),
            (
                "password = \"plain\"\nuser = \"u\"\n",
                "servicenow.itsm.password",
            ),
            (
                "token = { env = \"T\" }\napproved_states = []\n",
                "servicenow.itsm.approved_states",
            ),
        ] {
            let err = config(extra).unwrap_err().to_string();
            assert!(err.contains(key), "{extra:?}: {err}");
        }
        let err = crate::IntegrationsConfig::from_toml(
            "[servicenow.x]\ninstance_url = \"https://acme.service-now.com/api\"\ntoken = { env = \"T\" }\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("servicenow.x.instance_url"),
            "{err}"
        );
        let err = crate::IntegrationsConfig::from_toml(
            "[servicenow.x]\ninstance_url = \"http://acme.service-now.com\"\ntoken = { env = \"T\" }\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("servicenow.x.instance_url"),
            "{err}"
        );
    }
}
