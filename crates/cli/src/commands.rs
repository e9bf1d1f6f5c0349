//! The client subcommands: build the request from the arguments, call the API, print the answer
//! as a table or as the API's JSON.
//!
//! Exit codes: 0 success; 1 when the API refuses (code, message and each detail go to stderr),
//! the server cannot be reached, a gate says no, or verification fails; 2 for usage errors
//! (clap, and `audit verify --s3` in a build without the `aws` feature).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use serde_json::Value;
use steward_core::types::Decision;

use crate::cli::{
    AuditCmd, CardCmd, CheckArgs, Command, ConfirmRetirementArgs, Conn, ConnOnly, DeployArgs,
    EvaluateArgs, GateArgs, IdArgs, IncidentsArgs, InventoryArgs, InventoryFormat, LoginArgs,
    ModelsCmd, Output, PrincipalsCmd, ProductionArgs, PromoteArgs, PromotionsCmd, RegisterArgs,
    RetireArgs, RetirementsArgs, ReviewsCmd, RollbackArgs, SignalArgs, VerifyArgs, VersionArgs,
    VersionsCmd,
};
use crate::client::{Auth, Client, ClientError, ModelQuery, Sources};
use crate::login::{self, cache};
use crate::{principals_file, render, verify};

mod evidence;
mod webhooks;

/// The environment variable holding the caller's bearer token.
pub const TOKEN_ENV: &str = "STEWARD_TOKEN";

/// A client of `conn`'s server with the credential [`Auth::resolve`] picks.
fn client(conn: &Conn) -> anyhow::Result<Client> {
    let token = std::env::var(TOKEN_ENV).ok();
    // Without a configuration directory there is simply no cached sign-in to use.
    let config_dir = cache::config_dir().ok();
    let sources = Sources {
        token: token.as_deref(),
        aws: conn.aws,
        region: conn.region.as_deref(),
        config_dir: config_dir.as_deref(),
    };
    Client::with_auth(&conn.server, Auth::resolve(&conn.server, &sources)?)
}

/// Reads a JSON file (`-` is standard input).
pub fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Prints an API refusal (or a transport failure) to stderr.
pub fn print_client_error(e: &ClientError) {
    match e {
        ClientError::Api(api) => {
            eprintln!("error: {} ({} {})", api.message, api.status, api.code);
            for d in &api.details {
                eprintln!("  - {d}");
            }
            if api.status == 401 {
                eprintln!(
                    "hint: set {TOKEN_ENV} to your bearer token, sign in with `steward login`, or sign with AWS credentials (--aws)"
                );
            }
        }
        other => eprintln!("error: {other}"),
    }
}

fn print(conn: &Conn, value: &Value, table: impl FnOnce(&Value) -> String) {
    match conn.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        ),
        Output::Table => print!("{}", table(value)),
    }
}

/// Runs one API call and prints its answer; an API error prints to stderr and exits 1.
async fn show(
    conn: &Conn,
    call: impl std::future::Future<Output = Result<Value, ClientError>>,
    table: impl FnOnce(&Value) -> String,
) -> ExitCode {
    match call.await {
        Ok(v) => {
            print(conn, &v, table);
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_client_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Runs a client subcommand (anything but `serve` and `demo`).
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(_) | Command::Demo(_) => unreachable!("handled by main"),
        Command::Register(a) => register(a).await,
        Command::Models(cmd) => models(cmd).await,
        Command::Versions(VersionsCmd::Get(a)) => version(a).await,
        Command::Card(cmd) => card(cmd).await,
        Command::Evaluate(a) => evaluate(a).await,
        Command::Check(a) => check(a).await,
        Command::Checks(a) => checks(a).await,
        Command::Gate(a) => gate(a).await,
        Command::Promote(a) => promote(a).await,
        Command::Promotions(PromotionsCmd::Get(a)) => promotion(a).await,
        Command::Reviews(cmd) => reviews(cmd).await,
        Command::Deploy(a) => deploy(a).await,
        Command::Rollback(a) => rollback(a).await,
        Command::Signal(a) => signal(a).await,
        Command::Incidents(a) => incidents(a).await,
        Command::PeriodicReviews(a) => periodic_reviews(a).await,
        Command::Inventory(a) => inventory(a).await,
        Command::Evidence(a) => evidence::run(a).await,
        Command::Serving(cmd) => serving(cmd).await,
        Command::Retire(a) => retire(a).await,
        Command::ConfirmRetirement(a) => confirm_retirement(a).await,
        Command::Retirements(a) => retirements(a).await,
        Command::Production(a) => production(a).await,
        Command::Audit(cmd) => audit(cmd).await,
        Command::Principals(cmd) => principals(cmd).await,
        Command::Webhooks(cmd) => webhooks::run(cmd).await,
        Command::Integrations(cmd) => webhooks::integrations(cmd).await,
        Command::Whoami(a) => whoami(a).await,
        Command::Login(a) => login(a).await,
        Command::Logout(a) => logout(a).await,
    }
}

/// `steward register`
async fn register(a: RegisterArgs) -> anyhow::Result<ExitCode> {
    let manifest = read_json(&a.manifest)?;
    let c = client(&a.conn)?;
    let call = c.register(&a.name, &manifest, a.idempotency_key.as_deref());
    Ok(show(&a.conn, call, render::version).await)
}

/// `steward models list|get`
async fn models(cmd: ModelsCmd) -> anyhow::Result<ExitCode> {
    Ok(match cmd {
        ModelsCmd::List(a) => {
            let q = ModelQuery {
                stage: a.stage.map(|s| s.as_str().to_owned()),
                owner: a.owner.clone(),
                tier: a.tier.map(|t| t.as_str().to_owned()),
                cursor: a.cursor.clone(),
                limit: a.limit,
            };
            show(&a.conn, client(&a.conn)?.models(&q), render::models).await
        }
        ModelsCmd::Get(a) => show(&a.conn, client(&a.conn)?.model(&a.name), render::model).await,
    })
}

/// `steward versions get`
async fn version(a: VersionArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    Ok(show(&a.conn, c.version(&a.name, a.version), render::version).await)
}

/// `steward card get|put|revisions`
async fn card(cmd: CardCmd) -> anyhow::Result<ExitCode> {
    Ok(match cmd {
        CardCmd::Get(a) => {
            let c = client(&a.conn)?;
            show(&a.conn, c.card(&a.name, a.version), render::card).await
        }
        CardCmd::Put(a) => {
            let card = read_json(&a.file)?;
            let c = client(&a.conn)?;
            let call = c.put_card(&a.name, a.version, &card, a.if_match);
            show(&a.conn, call, render::version).await
        }
        CardCmd::Revisions(a) => {
            let c = client(&a.conn)?;
            let call = c.card_revisions(&a.name, a.version);
            show(&a.conn, call, render::card_revisions).await
        }
    })
}

/// `steward evaluate`
async fn evaluate(a: EvaluateArgs) -> anyhow::Result<ExitCode> {
    let body = read_json(&a.file)?;
    let c = client(&a.conn)?;
    let call = c.add_evaluation(&a.name, a.version, &body);
    Ok(show(&a.conn, call, render::version).await)
}

/// `steward check`: the report's body from the flags; only what was given is sent.
async fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut body = serde_json::json!({"name": a.check, "status": a.status});
    if let Some(env) = a.environment {
        body["environment"] = serde_json::json!(env);
    }
    if !a.metrics.is_empty() {
        let metrics: serde_json::Map<String, Value> = a
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect();
        body["metrics"] = Value::Object(metrics);
    }
    if let (Some(uri), Some(sha256)) = (&a.evidence_uri, &a.evidence_sha256) {
        body["evidence"] = serde_json::json!({"uri": uri, "sha256": sha256});
    }
    if let Some(url) = &a.details_url {
        body["details_url"] = serde_json::json!(url);
    }
    let c = client(&a.conn)?;
    let call = c.report_check(&a.model, a.version, &body, a.idempotency_key.as_deref());
    Ok(show(&a.conn, call, render::check).await)
}

/// `steward checks`
async fn checks(a: VersionArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    Ok(show(&a.conn, c.checks(&a.name, a.version), render::checks).await)
}

/// `steward gate`: like [`show`], but a closed gate exits 1 as well.
async fn gate(a: GateArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    Ok(match c.gate(&a.name, a.version, a.environment).await {
        Ok(v) => {
            print(&a.conn, &v, |v| {
                render::gate(v, &a.name, a.version, a.environment.as_str())
            });
            if v["allowed"].as_bool() == Some(true) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            print_client_error(&e);
            ExitCode::FAILURE
        }
    })
}

/// `steward promote`
async fn promote(a: PromoteArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    let call = c.promote(&a.name, a.version, a.target);
    Ok(show(&a.conn, call, render::promotion).await)
}

/// `steward promotions get`
async fn promotion(a: IdArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    Ok(show(&a.conn, c.promotion(&a.id), render::promotion).await)
}

/// `steward reviews list|decide`
async fn reviews(cmd: ReviewsCmd) -> anyhow::Result<ExitCode> {
    Ok(match cmd {
        ReviewsCmd::List(a) => {
            let c = client(&a.conn)?;
            let call = c.reviews(a.status.as_deref(), a.cursor.as_deref(), a.limit);
            show(&a.conn, call, render::reviews).await
        }
        ReviewsCmd::Decide(a) => {
            let decision = if a.approve {
                Decision::Approve
            } else {
                Decision::Reject
            };
            let c = client(&a.conn)?;
            let call = c.decide(&a.id, decision, a.comment.as_deref(), &a.conditions);
            show(&a.conn, call, render::promotion).await
        }
    })
}

/// `steward deploy`
async fn deploy(a: DeployArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    let call = c.deploy(&a.name, a.version, a.environment);
    Ok(show(&a.conn, call, render::version).await)
}

/// `steward rollback`
async fn rollback(a: RollbackArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    Ok(show(
        &a.conn,
        c.rollback(&a.name, &a.reason, a.from_version),
        render::model,
    )
    .await)
}

/// `steward signal`
async fn signal(a: SignalArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    let call = c.signal_with_key(
        &a.model,
        a.version,
        a.kind,
        &a.metric,
        a.value,
        a.idempotency_key.as_deref(),
    );
    Ok(show(&a.conn, call, render::signal).await)
}

/// `steward incidents`
async fn incidents(a: IncidentsArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    let call = c.incidents(a.model.as_deref(), a.cursor.as_deref(), a.limit);
    Ok(show(&a.conn, call, render::incidents).await)
}

/// `steward periodic-reviews`
async fn periodic_reviews(a: ConnOnly) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    Ok(show(&a.conn, c.periodic_reviews(), render::periodic_reviews).await)
}

/// `steward inventory [--format csv|json]`
async fn inventory(a: InventoryArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    let call = c.inventory();
    Ok(match a.format {
        None => show(&a.conn, call, render::inventory).await,
        Some(InventoryFormat::Json) => {
            let conn = Conn {
                output: Output::Json,
                ..a.conn.clone()
            };
            show(&conn, call, render::inventory).await
        }
        Some(InventoryFormat::Csv) => match call.await {
            Ok(v) => {
                print!("{}", render::inventory_csv(&v));
                ExitCode::SUCCESS
            }
            Err(e) => {
                print_client_error(&e);
                ExitCode::FAILURE
            }
        },
    })
}

/// `steward serving report|list`
async fn serving(cmd: crate::cli::ServingCmd) -> anyhow::Result<ExitCode> {
    use crate::cli::ServingCmd;
    match cmd {
        ServingCmd::Report(a) => {
            let mut artifact = serde_json::json!({"uri": a.artifact_uri});
            if let Some(sha) = &a.artifact_sha256 {
                artifact["sha256"] = serde_json::json!(sha);
            }
            let mut body = serde_json::json!({
                "platform": a.platform, "environment": a.environment, "endpoint": a.endpoint,
                "artifact": artifact,
                "observed_at": a.observed_at.unwrap_or_else(chrono::Utc::now),
            });
            if let Some(m) = &a.model {
                body["model"] = serde_json::json!(m);
            }
            if let Some(v) = a.version {
                body["version"] = serde_json::json!(v);
            }
            if a.stopped {
                body["stopped"] = serde_json::json!(true);
            }
            let c = client(&a.conn)?;
            Ok(show(&a.conn, c.report_serving(&body), render::serving_record).await)
        }
        ServingCmd::List(a) => {
            let c = client(&a.conn)?;
            let call = c.serving(a.outcome.as_deref(), a.cursor.as_deref(), a.limit);
            Ok(show(&a.conn, call, render::serving).await)
        }
    }
}

/// `steward retirements`
async fn retirements(a: RetirementsArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    let call = c.retirements(a.status.as_deref(), a.cursor.as_deref(), a.limit);
    Ok(show(&a.conn, call, render::retirements).await)
}

/// `steward retire`
async fn retire(a: RetireArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    let call = c.retire(&a.name, a.version, &a.reason, a.replacement);
    Ok(show(&a.conn, call, render::version).await)
}

/// `steward confirm-retirement`
async fn confirm_retirement(a: ConfirmRetirementArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    let call = c.confirm_retirement(&a.name, a.version, a.approve, a.comment.as_deref());
    Ok(show(&a.conn, call, render::version).await)
}

/// `steward production`
async fn production(a: ProductionArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    Ok(show(&a.conn, c.production(&a.name, a.at), render::production).await)
}

/// `steward audit events|checkpoint|proof|consistency` (`verify` is [`audit_verify`]).
async fn audit(cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    Ok(match cmd {
        AuditCmd::Events(a) => {
            let c = client(&a.conn)?;
            let call = c.audit_events(a.model.as_deref(), a.after, a.limit);
            show(&a.conn, call, render::audit_events).await
        }
        AuditCmd::Checkpoint(a) => {
            let c = client(&a.conn)?;
            show(&a.conn, c.audit_checkpoint(), render::checkpoint).await
        }
        AuditCmd::Proof(a) => {
            show(&a.conn, client(&a.conn)?.audit_proof(a.seq), render::proof).await
        }
        AuditCmd::Consistency(a) => {
            let c = client(&a.conn)?;
            let call = c.audit_consistency(a.first, a.second);
            show(&a.conn, call, render::consistency).await
        }
        AuditCmd::Verify(a) => audit_verify(a).await?,
    })
}

/// `steward audit verify`: offline from a data directory or S3, or through the API.
async fn audit_verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    if cfg!(not(feature = "aws")) && a.s3.is_some() {
        eprintln!("error: {NO_AWS}");
        return Ok(ExitCode::from(2));
    }
    let pinned = match (&a.public_key, &a.public_key_file) {
        (Some(hex_key), _) => Some(verify::parse_public_key(hex_key).context("--public-key")?),
        (None, Some(path)) => Some(verify::read_public_key_file(path)?),
        (None, None) => None,
    };
    // clap keeps --s3, --data and --server apart; --s3 without AWS support is refused above.
    let (result, whence) = match (&a.s3, &a.data) {
        #[cfg(feature = "aws")]
        (Some(location), _) => {
            let key = pinned.expect("clap requires a key with --s3");
            match verify_s3(location, &key, &a).await {
                Some(outcome) => outcome,
                None => return Ok(ExitCode::from(2)),
            }
        }
        (_, Some(dir)) => (
            verify::offline(dir, pinned),
            format!("offline, from {}", dir.display()),
        ),
        _ => {
            let c = client(&a.conn())?;
            (
                verify::online(&c, pinned, usize::from(a.concurrency)).await,
                format!("through {}", c.server()),
            )
        }
    };
    Ok(match result {
        Ok(report) => {
            match a.output {
                Output::Json => println!("{:#}", report.to_json()),
                Output::Table => print!("{}", report.render(&whence)),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("audit verification FAILED ({whence}): {e:#}");
            ExitCode::FAILURE
        }
    })
}

/// `steward principals list|set|add`
async fn principals(cmd: PrincipalsCmd) -> anyhow::Result<ExitCode> {
    Ok(match cmd {
        PrincipalsCmd::List(a) => {
            show(&a.conn, client(&a.conn)?.principals(), render::principals).await
        }
        PrincipalsCmd::Set(a) => {
            let c = client(&a.conn)?;
            show(&a.conn, c.set_roles(&a.id, &a.roles), render::principal).await
        }
        PrincipalsCmd::Add(a) => {
            let token =
                principals_file::add(&a.file, &a.name, &a.roles).map_err(|e| anyhow!("{e:#}"))?;
            // The token alone on stdout, so `TOKEN=$(steward principals add ...)` works; it is
            // kept nowhere else.
            println!("{token}");
            let roles: Vec<&str> = a.roles.iter().map(|r| r.as_str()).collect();
            eprintln!(
                "added {} ({}) to {}; the token above is shown only this once. Restart `steward serve` to load it.",
                a.name,
                roles.join(", "),
                a.file.display()
            );
            ExitCode::SUCCESS
        }
    })
}

/// `steward whoami`
async fn whoami(a: ConnOnly) -> anyhow::Result<ExitCode> {
    let c = client(&a.conn)?;
    Ok(show(&a.conn, c.whoami(), render::whoami).await)
}

/// `steward login`: signs in, caches the ID token, and says who the server takes you for.
async fn login(a: LoginArgs) -> anyhow::Result<ExitCode> {
    let dir = cache::config_dir()?;
    let opts = login::Options {
        provider: a.issuer.clone().zip(a.client_id.clone()),
        scopes: a.scopes.clone(),
        open_browser: !a.no_browser,
        timeout: std::time::Duration::from_secs(a.timeout.max(1)),
        port: a.port,
    };
    let server = &a.conn.server;
    let (token, claims, path) = login::sign_in(server, &opts, &dir).await?;
    tracing::info!(cache = %path.display(), "sign-in cached");
    let c = Client::with_auth(server, Auth::bearer(&token.id_token)?)?;
    match c.whoami().await {
        Ok(v) => {
            let roles: Vec<&str> = v["roles"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let roles = if roles.is_empty() {
                "none".to_owned()
            } else {
                roles.join(", ")
            };
            let principal = v["principal"].as_str().unwrap_or("?");
            println!("signed in to {server} as {principal} (roles: {roles})");
        }
        Err(e) => {
            // The token is cached either way: the server may simply not say who it sees yet.
            println!("signed in to {server} as {}", claims.principal());
            eprintln!("note: the server did not confirm the sign-in: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `steward logout`
async fn logout(a: ConnOnly) -> anyhow::Result<ExitCode> {
    let server = &a.conn.server;
    if cache::delete(&cache::config_dir()?, server)? {
        println!("signed out of {server}");
    } else {
        println!("not signed in to {server}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit verify --s3`: the outcome and where the log was read, or `None` after printing a
/// usage error (a malformed location).
#[cfg(feature = "aws")]
async fn verify_s3(
    location: &str,
    key: &steward_core::audit::PublicKey,
    a: &VerifyArgs,
) -> Option<(anyhow::Result<verify::Report>, String)> {
    let (bucket, prefix) = match steward_aws::s3::parse_s3_location(location) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: --s3: {e}");
            return None;
        }
    };
    let whence = format!("offline, from s3://{bucket}/{prefix}");
    let endpoint = a.endpoint_url.as_deref();
    let result = verify::s3(&bucket, &prefix, key, endpoint, a.region.as_deref()).await;
    Some((result, whence))
}

/// What `audit verify --s3` says (exit 2) in a build without the `aws` feature.
pub const NO_AWS: &str =
    "this steward was built without AWS support: cargo build -p steward --features aws";
