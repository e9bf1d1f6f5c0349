//! `steward webhooks ...`: admin-managed webhook subscriptions.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Conn, ConnOnly};

#[derive(Debug, Subcommand)]
pub enum WebhooksCmd {
    /// Webhook subscriptions (admin or auditor)
    List(ConnOnly),
    /// One subscription (admin or auditor)
    Get(WebhookIdArgs),
    /// Create or update a subscription (admin; audited). The secret never goes on the command
    /// line: --generate-secret prints a new one once, or --secret-file reads one
    Put(WebhookPutArgs),
    /// Delete a subscription (admin; audited)
    Delete(WebhookIdArgs),
    /// A subscription's recent deliveries, newest first: status, attempts, last response
    Deliveries(WebhookDeliveriesArgs),
}

#[derive(Debug, Args)]
pub struct WebhookIdArgs {
    /// The subscription's id
    pub id: String,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct WebhookPutArgs {
    /// The subscription's id (a-z, 0-9, '-', '_')
    pub id: String,
    /// Where deliveries go (https://; http:// only to localhost); required on create
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// An event type to deliver (repeatable, or comma-separated); none: every event
    #[arg(long = "event", value_name = "DETAIL-TYPE", value_delimiter = ',')]
    pub events: Vec<String>,
    /// Make a new random secret, send it, and print it once on stdout (for the receiver)
    #[arg(long, conflicts_with = "secret_file")]
    pub generate_secret: bool,
    /// Read the secret (whsec_...) from this file ('-': standard input)
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct WebhookDeliveriesArgs {
    /// The subscription's id
    pub id: String,
    /// How many (at most 100)
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum IntegrationsCmd {
    /// Check an integrations file and list what it configures (secrets are resolved, never shown)
    Check(IntegrationsFileArgs),
    /// Send a test delivery to integration NAME from here, with the file's configuration, and
    /// print the receiver's answer
    Test(IntegrationsTestArgs),
}

#[derive(Debug, Args)]
pub struct IntegrationsFileArgs {
    /// The integrations file (TOML)
    #[arg(long, env = "STEWARD_INTEGRATIONS", value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct IntegrationsTestArgs {
    /// The integration's name (its table name, e.g. `governance` for [slack.governance])
    pub name: String,
    #[command(flatten)]
    pub file: IntegrationsFileArgs,
}
