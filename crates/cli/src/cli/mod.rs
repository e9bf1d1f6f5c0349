//! The command line: every subcommand and its arguments (clap derive). Parsing only; what each
//! command does lives in `commands`, `serve`, `demo` and `verify`.
//!
//! Invariants: a bearer token is only ever read from `STEWARD_TOKEN`, never from a flag (flags
//! end up in shell history and process listings), and AWS credentials only from the AWS chain;
//! `--server`, `--aws` and `--region` mean the same before and after the subcommand (clap
//! merges the two places, a flag beating the environment beating the default); enumerated values (stages, environments,
//! roles, ...) are checked by clap against the core's own names, so a typo is a usage error
//! (exit 2) that lists the valid values.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::builder::{BoolishValueParser, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use steward_core::types::{Environment, RiskTier, Role, SignalKind, Stage};

use crate::client::DEFAULT_SERVER;

mod audit;
mod checks;
mod evidence;
mod inventory;
mod oidc_args;
mod serve;
mod serving;
mod webhooks;
pub use checks::CheckArgs;
pub use evidence::{EvidenceArgs, EvidenceCmd, EvidenceVerifyArgs};
pub use inventory::{InventoryArgs, InventoryFormat};
pub use oidc_args::{LoginArgs, OidcArgs};
pub use serve::{DemoArgs, ServeArgs};
pub use serving::{ServingCmd, ServingListArgs, ServingReportArgs};
pub use webhooks::{
    IntegrationsCmd, WebhookDeliveriesArgs, WebhookIdArgs, WebhookPutArgs, WebhooksCmd,
};

pub use audit::{AuditCmd, AuditEventsArgs, ConsistencyArgs, ProofArgs, VerifyArgs, SERVER_ENV};

/// Steward: model governance — registry, reviews, deployments and a tamper-evident audit log.
#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version,
    after_help = "Client commands talk to --server (or STEWARD_SERVER) with, in this order: the bearer token in STEWARD_TOKEN;\n\
                  AWS SigV4 with the standard AWS credential chain when --server is an execute-api URL or with --aws (STEWARD_AWS=true);\n\
                  the sign-in cached by `steward login` for that server. --server, --aws and --region may also precede the subcommand.\n\
                  First run: `steward demo`, or `steward serve` and take a token from steward-data/tokens.txt."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The connection flags given before the subcommand (`steward --aws --server URL models list`).
/// They share their ids with [`Conn`]'s, so clap hands the client commands one value for each;
/// hidden here because every client command lists them itself.
#[derive(Debug, Clone, Args)]
pub struct Global {
    #[arg(long, global = true, hide = true, value_name = "URL")]
    pub server: Option<String>,
    #[arg(long, global = true, hide = true, value_parser = BoolishValueParser::new())]
    pub aws: bool,
    #[arg(long, global = true, hide = true, value_name = "REGION")]
    pub region: Option<String>,
}

/// Where to reach the API and how to print its answers.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// The Steward API (credentials: STEWARD_TOKEN, SigV4 or `steward login`; see `steward --help`)
    #[arg(long, env = "STEWARD_SERVER", default_value = DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
    /// Output format: a readable table, or the API's JSON
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Sign requests with AWS SigV4 (API Gateway with IAM authorization) even when --server is
    /// not an execute-api URL, e.g. a custom domain; credentials come from the standard AWS
    /// chain (environment, AWS_PROFILE, SSO, assumed roles, ...)
    #[arg(long, env = "STEWARD_AWS", value_parser = BoolishValueParser::new())]
    pub aws: bool,
    /// The region to sign for with --aws [default: the AWS profile's]; an execute-api URL
    /// names its own
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

macro_rules! core_enum_parser {
    ($name:ident, $t:ty) => {
        fn $name() -> impl TypedValueParser<Value = $t> {
            PossibleValuesParser::new(<$t>::ALL.iter().map(|v| v.as_str()))
                .map(|s| <$t>::parse(&s).expect("clap only passes possible values"))
        }
    };
}
core_enum_parser!(environment, Environment);
core_enum_parser!(stage, Stage);
core_enum_parser!(tier, RiskTier);
core_enum_parser!(role, Role);
core_enum_parser!(signal_kind, SignalKind);

fn review_status() -> PossibleValuesParser {
    PossibleValuesParser::new(["pending", "approved", "rejected", "expired", "cancelled"])
}

fn rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}; use RFC 3339, e.g. 2026-11-27T10:00:00Z"))
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing buys nothing
pub enum Command {
    /// Serve the HTTP API on the embedded backend (SQLite and files in one data directory)
    Serve(ServeArgs),
    /// Run the whole lifecycle of a high-risk model against a throwaway server, step by step
    Demo(DemoArgs),
    /// Register a new version of a model from a manifest (creates the model on first use)
    Register(RegisterArgs),
    /// List and read models
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Read a model version with its card, reviews and stage
    #[command(subcommand)]
    Versions(VersionsCmd),
    /// Read and revise model cards
    #[command(subcommand)]
    Card(CardCmd),
    /// Record an evaluation result for a version (e.g. on staging test data)
    Evaluate(EvaluateArgs),
    /// For CI/CD: report a check result (unit tests, integration tests, a load test) for a version
    Check(CheckArgs),
    /// A version's latest check results, per check and environment
    Checks(VersionArgs),
    /// For CI/CD: may this version be deployed? Exits 1 when not, printing why
    Gate(GateArgs),
    /// Request promotion of a version to staging or production (starts its reviews)
    Promote(PromoteArgs),
    /// Read promotions
    #[command(subcommand)]
    Promotions(PromotionsCmd),
    /// List the reviews you may decide, and decide them
    #[command(subcommand)]
    Reviews(ReviewsCmd),
    /// Deploy an approved version to staging or production
    Deploy(DeployArgs),
    /// Put the previous production version back into production
    Rollback(RollbackArgs),
    /// Report a monitoring signal (drift or quality) for a version
    Signal(SignalArgs),
    /// List incidents opened by monitoring signals
    Incidents(IncidentsArgs),
    /// List production versions by the date their periodic review falls due
    PeriodicReviews(ConnOnly),
    /// The AI inventory: every model with its owner, tier, stage, production version, last and
    /// next review, open incidents and card completeness (`--format csv` for auditors)
    Inventory(InventoryArgs),
    /// What serves, everywhere: serving platforms report their endpoints; Steward says which
    /// are governed, unapproved, unregistered or stale
    #[command(subcommand)]
    Serving(ServingCmd),
    /// A version's signed documentation pack (EU AI Act Annex IV) for auditors, and
    /// `evidence verify` to check one offline
    Evidence(EvidenceArgs),
    /// Retire a version, recording why and what replaces it
    Retire(RetireArgs),
    /// Confirm or refuse a retirement waiting for its workflow (AWS deployments)
    ConfirmRetirement(ConfirmRetirementArgs),
    /// List pending retirement requests, oldest first (default: awaiting confirmation)
    Retirements(RetirementsArgs),
    /// Which version serves (or served) production
    Production(ProductionArgs),
    /// Read and verify the tamper-evident audit log
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Manage principals: the API's role assignments and the local principals file
    #[command(subcommand)]
    Principals(PrincipalsCmd),
    /// Manage webhook subscriptions (Standard Webhooks deliveries of governance events)
    #[command(subcommand)]
    Webhooks(WebhooksCmd),
    /// The integrations file: check it, or send a test delivery to one integration
    #[command(subcommand)]
    Integrations(IntegrationsCmd),
    /// Who the server takes you for: principal, roles, how you authenticated, and grants
    Whoami(ConnOnly),
    /// Sign in to --server with OpenID Connect in a browser; the ID token is cached for it
    Login(LoginArgs),
    /// Forget the sign-in `steward login` cached for --server
    Logout(ConnOnly),
}

#[derive(Debug, Args)]
pub struct ConnOnly {
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Model name ([a-z0-9][a-z0-9-]{0,62})
    pub name: String,
    /// Registration manifest (JSON); `-` reads standard input
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Makes retries safe: the same key and body return the version the first call created
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCmd {
    /// List models
    List(ModelsListArgs),
    /// A model and its versions
    Get(NameArgs),
}

#[derive(Debug, Args)]
pub struct ModelsListArgs {
    /// Models with a version in this stage
    #[arg(long, value_parser = stage())]
    pub stage: Option<Stage>,
    /// Models of this owning team
    #[arg(long, value_name = "TEAM")]
    pub owner: Option<String>,
    /// Models of this risk tier
    #[arg(long, value_parser = tier())]
    pub tier: Option<RiskTier>,
    /// Continue from a previous page
    #[arg(long)]
    pub cursor: Option<String>,
    /// Page size
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// Model name
    pub name: String,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Model name
    pub name: String,
    /// Version number
    pub version: u32,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum VersionsCmd {
    /// One version, with card, reviews and stage
    Get(VersionArgs),
}

#[derive(Debug, Subcommand)]
pub enum CardCmd {
    /// The current model card of a version
    Get(VersionArgs),
    /// Record a new card revision from a file (JSON of the card)
    Put(CardPutArgs),
    /// Every revision of a version's card
    Revisions(VersionArgs),
}

#[derive(Debug, Args)]
pub struct CardPutArgs {
    pub name: String,
    pub version: u32,
    /// The card (JSON); `-` reads standard input
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Refuse (409) unless the version is still at this revision
    #[arg(long, value_name = "REVISION")]
    pub if_match: Option<u64>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    pub name: String,
    pub version: u32,
    /// The evaluation result (JSON: name, dataset{uri,sha256}, metrics, slices, environment)
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    pub name: String,
    pub version: u32,
    #[arg(long, short = 'e', value_parser = environment())]
    pub environment: Environment,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    pub name: String,
    pub version: u32,
    #[arg(long, short = 't', value_parser = environment())]
    pub target: Environment,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum PromotionsCmd {
    /// A promotion and the state of its reviews
    Get(IdArgs),
}

#[derive(Debug, Args)]
pub struct IdArgs {
    pub id: String,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum ReviewsCmd {
    /// Reviews you may decide (default: pending)
    List(ReviewsListArgs),
    /// Approve or reject a review
    Decide(DecideArgs),
}

#[derive(Debug, Args)]
pub struct ReviewsListArgs {
    #[arg(long, value_parser = review_status())]
    pub status: Option<String>,
    #[arg(long)]
    pub cursor: Option<String>,
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct RetirementsArgs {
    #[arg(long, value_parser = PossibleValuesParser::new(["awaiting_confirmation", "confirmed"]))]
    pub status: Option<String>,
    #[arg(long)]
    pub cursor: Option<String>,
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("decision").required(true).args(["approve", "reject"]))]
pub struct DecideArgs {
    /// Review id (`<promotion id>-<stage>`)
    pub id: String,
    #[arg(long)]
    pub approve: bool,
    #[arg(long)]
    pub reject: bool,
    /// Why (required for a rejection)
    #[arg(long)]
    pub comment: Option<String>,
    /// A condition attached to the approval (repeatable)
    #[arg(long = "condition", value_name = "TEXT")]
    pub conditions: Vec<String>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    pub name: String,
    pub version: u32,
    #[arg(long, short = 'e', value_parser = environment())]
    pub environment: Environment,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub name: String,
    #[arg(long)]
    pub reason: String,
    /// Roll back only while this version serves production (refused otherwise).
    #[arg(long)]
    pub from_version: Option<u32>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub version: u32,
    #[arg(long, value_parser = signal_kind())]
    pub kind: SignalKind,
    #[arg(long)]
    pub metric: String,
    #[arg(long, allow_negative_numbers = true)]
    pub value: f64,
    /// Makes a redelivery safe: the same key and signal return the first outcome and open no
    /// second incident
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct IncidentsArgs {
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub cursor: Option<String>,
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("decision").required(true).args(["approve", "reject"]))]
pub struct ConfirmRetirementArgs {
    pub name: String,
    pub version: u32,
    #[arg(long)]
    pub approve: bool,
    #[arg(long)]
    pub reject: bool,
    /// Why (required for a refusal)
    #[arg(long)]
    pub comment: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    pub name: String,
    pub version: u32,
    #[arg(long)]
    pub reason: String,
    /// The version that replaces it (required when it serves production)
    #[arg(long, value_name = "VERSION")]
    pub replacement: Option<u32>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct ProductionArgs {
    pub name: String,
    /// A past time (RFC 3339); default: now
    #[arg(long, value_parser = rfc3339)]
    pub at: Option<DateTime<Utc>>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum PrincipalsCmd {
    /// Principals and their roles (admin)
    List(ConnOnly),
    /// Set a principal's roles (admin; audited)
    Set(PrincipalsSetArgs),
    /// Add a principal to a local principals file with a new random token (printed once)
    Add(PrincipalsAddArgs),
}

#[derive(Debug, Args)]
pub struct PrincipalsSetArgs {
    /// Principal id (a local name or an IAM ARN)
    pub id: String,
    /// A role (repeatable, or comma-separated)
    #[arg(long = "role", value_name = "ROLE", required = true, value_delimiter = ',', value_parser = role())]
    pub roles: Vec<Role>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct PrincipalsAddArgs {
    /// The principal's name
    pub name: String,
    /// A role (repeatable, or comma-separated)
    #[arg(long = "role", value_name = "ROLE", required = true, value_delimiter = ',', value_parser = role())]
    pub roles: Vec<Role>,
    /// The principals file to append to (created if missing)
    #[arg(
        long,
        default_value = "steward-data/principals.toml",
        value_name = "FILE"
    )]
    pub file: PathBuf,
}

#[cfg(test)]
mod tests;
