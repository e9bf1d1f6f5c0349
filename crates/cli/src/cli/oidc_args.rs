//! OpenID Connect flags: `steward serve`'s provider (people sign in with the organisation's
//! provider beside the principals file's bearer tokens) and `steward login`'s.
//!
//! Invariant: the console's client secret is read from the environment
//! (`STEWARD_OIDC_CLIENT_SECRET`) only, never from a flag, so it does not show in `ps`.

use clap::Args;

use super::Conn;

#[derive(Debug, Clone, Default, Args)]
pub struct OidcArgs {
    /// OpenID Connect issuer URL (tokens' `iss`); enables sign-in for people
    #[arg(long, env = "STEWARD_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// Accepted token audience (the console's and the CLI's client ids); repeat for several
    #[arg(
        long,
        env = "STEWARD_OIDC_AUDIENCES",
        value_delimiter = ',',
        value_name = "AUD"
    )]
    pub oidc_audience: Vec<String>,
    /// Accepted signature algorithms (default RS256,PS256,ES256,EdDSA; HMAC is refused)
    #[arg(
        long,
        env = "STEWARD_OIDC_ALGORITHMS",
        value_delimiter = ',',
        value_name = "ALG"
    )]
    pub oidc_algorithms: Vec<String>,
    /// The console's client id at the provider (default: the first audience); its secret, for
    /// a confidential client, comes from STEWARD_OIDC_CLIENT_SECRET
    #[arg(long, env = "STEWARD_OIDC_CONSOLE_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// The public client id `steward login` uses (published at GET /v1/auth/oidc)
    #[arg(long, env = "STEWARD_OIDC_CLI_CLIENT_ID", value_name = "ID")]
    pub oidc_cli_client_id: Option<String>,
    /// The claim that lists a person's groups (e.g. groups, cognito:groups)
    #[arg(long, env = "STEWARD_OIDC_GROUPS_CLAIM", value_name = "CLAIM")]
    pub oidc_groups_claim: Option<String>,
    /// A group whose members hold a role, as GROUP=ROLE; repeat for several
    #[arg(
        long,
        env = "STEWARD_OIDC_GROUP_ROLES",
        value_delimiter = ',',
        value_name = "GROUP=ROLE"
    )]
    pub oidc_group_role: Vec<String>,
    /// Scopes to ask the provider for (default openid,email,profile; add `groups` where the
    /// provider needs it to put groups in the ID token)
    #[arg(
        long,
        env = "STEWARD_OIDC_SCOPES",
        value_delimiter = ',',
        value_name = "SCOPE"
    )]
    pub oidc_scopes: Vec<String>,
    /// What the console's button says: "Sign in with NAME" (default: the issuer's host)
    #[arg(long, env = "STEWARD_OIDC_PROVIDER_NAME", value_name = "NAME")]
    pub oidc_provider_name: Option<String>,
    /// The URL people reach Steward at, for the console's redirect URI
    /// (default: the request's host)
    #[arg(long, env = "STEWARD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The OpenID Connect issuer [default: the one the server names at GET /v1/auth/oidc]
    #[arg(long, value_name = "URL", requires = "client_id")]
    pub issuer: Option<String>,
    /// The client id registered at the issuer for the CLI (a public, native client)
    #[arg(long, value_name = "ID", requires = "issuer")]
    pub client_id: Option<String>,
    /// A scope to ask for (repeatable) [default: the server's, else openid]
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Only print the sign-in URL; do not try to open a browser
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for the browser to come back
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// A fixed loopback port for the redirect (`http://localhost:PORT/callback`), for providers
    /// that compare redirect URIs exactly (Cognito); default: any free port on 127.0.0.1
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    pub port: u16,
    #[command(flatten)]
    pub conn: Conn,
}
