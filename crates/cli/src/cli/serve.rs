//! The flags of the commands that run Steward here rather than call a server: `steward serve`
//! and `steward demo`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::OidcArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (created if missing): database, signing key, principals
    #[arg(
        long,
        env = "STEWARD_DATA",
        default_value = "steward-data",
        value_name = "DIR"
    )]
    pub data: PathBuf,
    /// Address to listen on (port 0 picks a free port)
    #[arg(
        long,
        env = "STEWARD_ADDR",
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT"
    )]
    pub addr: SocketAddr,
    /// Principals file (TOML); default DIR/principals.toml, created with a starter set if missing
    #[arg(long, value_name = "FILE")]
    pub principals: Option<PathBuf>,
    /// Policy file (TOML); default: the built-in policy
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Seconds between workflow runner ticks (review deadlines)
    #[arg(long, default_value_t = 1, value_name = "SECONDS", hide = true)]
    pub runner_interval: u64,
    /// Wait before the first retry of a failed webhook delivery (doubling, with jitter, up to
    /// an hour; deliveries give up after 24 hours)
    #[arg(long, default_value_t = 5000, value_name = "MILLISECONDS", hide = true)]
    pub webhook_retry_first_ms: u64,
    /// Integrations file (TOML: Slack, Jira, ServiceNow, GitHub; secrets by reference); see
    /// docs/integrations.md
    #[arg(long, env = "STEWARD_INTEGRATIONS", value_name = "FILE")]
    pub integrations: Option<PathBuf>,
    #[command(flatten)]
    pub oidc: OidcArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's data directory here (must not exist or be empty) instead of a temporary one
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}
