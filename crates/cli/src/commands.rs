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
    AuditCmd, CardCmd, Command, Conn, ModelsCmd, Output, PrincipalsCmd, PromotionsCmd, ReviewsCmd,
    VersionsCmd,
};
use crate::client::{Client, ClientError, ModelQuery};
use crate::{principals_file, render, verify};

/// The environment variable holding the caller's bearer token.
pub const TOKEN_ENV: &str = "STEWARD_TOKEN";

fn client(conn: &Conn) -> anyhow::Result<Client> {
    let token = std::env::var(TOKEN_ENV).ok();
    Client::new(&conn.server, token.as_deref())
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
                eprintln!("hint: set {TOKEN_ENV} to your bearer token");
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
    Ok(match command {
        Command::Serve(_) | Command::Demo(_) => unreachable!("handled by main"),
        Command::Register(a) => {
            let manifest = read_json(&a.manifest)?;
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.register(&a.name, &manifest, a.idempotency_key.as_deref()),
                render::version,
            )
            .await
        }
        Command::Models(ModelsCmd::List(a)) => {
            let q = ModelQuery {
                stage: a.stage.map(|s| s.as_str().to_owned()),
                owner: a.owner.clone(),
                tier: a.tier.map(|t| t.as_str().to_owned()),
                cursor: a.cursor.clone(),
                limit: a.limit,
            };
            show(&a.conn, client(&a.conn)?.models(&q), render::models).await
        }
        Command::Models(ModelsCmd::Get(a)) => {
            show(&a.conn, client(&a.conn)?.model(&a.name), render::model).await
        }
        Command::Versions(VersionsCmd::Get(a)) => {
            show(
                &a.conn,
                client(&a.conn)?.version(&a.name, a.version),
                render::version,
            )
            .await
        }
        Command::Card(CardCmd::Get(a)) => {
            show(
                &a.conn,
                client(&a.conn)?.card(&a.name, a.version),
                render::card,
            )
            .await
        }
        Command::Card(CardCmd::Put(a)) => {
            let card = read_json(&a.file)?;
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.put_card(&a.name, a.version, &card, a.if_match),
                render::version,
            )
            .await
        }
        Command::Card(CardCmd::Revisions(a)) => {
            show(
                &a.conn,
                client(&a.conn)?.card_revisions(&a.name, a.version),
                render::card_revisions,
            )
            .await
        }
        Command::Evaluate(a) => {
            let body = read_json(&a.file)?;
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.add_evaluation(&a.name, a.version, &body),
                render::version,
            )
            .await
        }
        Command::Gate(a) => {
            let c = client(&a.conn)?;
            match c.gate(&a.name, a.version, a.environment).await {
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
            }
        }
        Command::Promote(a) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.promote(&a.name, a.version, a.target),
                render::promotion,
            )
            .await
        }
        Command::Promotions(PromotionsCmd::Get(a)) => {
            show(
                &a.conn,
                client(&a.conn)?.promotion(&a.id),
                render::promotion,
            )
            .await
        }
        Command::Reviews(ReviewsCmd::List(a)) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.reviews(a.status.as_deref(), a.cursor.as_deref(), a.limit),
                render::reviews,
            )
            .await
        }
        Command::Reviews(ReviewsCmd::Decide(a)) => {
            let decision = if a.approve {
                Decision::Approve
            } else {
                Decision::Reject
            };
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.decide(&a.id, decision, a.comment.as_deref(), &a.conditions),
                render::promotion,
            )
            .await
        }
        Command::Deploy(a) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.deploy(&a.name, a.version, a.environment),
                render::version,
            )
            .await
        }
        Command::Rollback(a) => {
            show(
                &a.conn,
                client(&a.conn)?.rollback(&a.name, &a.reason),
                render::model,
            )
            .await
        }
        Command::Signal(a) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.signal_with_key(
                    &a.model,
                    a.version,
                    a.kind,
                    &a.metric,
                    a.value,
                    a.idempotency_key.as_deref(),
                ),
                render::signal,
            )
            .await
        }
        Command::Incidents(a) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.incidents(a.model.as_deref(), a.cursor.as_deref(), a.limit),
                render::incidents,
            )
            .await
        }
        Command::PeriodicReviews(a) => {
            show(
                &a.conn,
                client(&a.conn)?.periodic_reviews(),
                render::periodic_reviews,
            )
            .await
        }
        Command::Retire(a) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.retire(&a.name, a.version, &a.reason, a.replacement),
                render::version,
            )
            .await
        }
        Command::ConfirmRetirement(a) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.confirm_retirement(&a.name, a.version, a.approve, a.comment.as_deref()),
                render::version,
            )
            .await
        }
        Command::Production(a) => {
            show(
                &a.conn,
                client(&a.conn)?.production(&a.name, a.at),
                render::production,
            )
            .await
        }
        Command::Audit(AuditCmd::Events(a)) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.audit_events(a.model.as_deref(), a.after, a.limit),
                render::audit_events,
            )
            .await
        }
        Command::Audit(AuditCmd::Checkpoint(a)) => {
            show(
                &a.conn,
                client(&a.conn)?.audit_checkpoint(),
                render::checkpoint,
            )
            .await
        }
        Command::Audit(AuditCmd::Proof(a)) => {
            show(&a.conn, client(&a.conn)?.audit_proof(a.seq), render::proof).await
        }
        Command::Audit(AuditCmd::Consistency(a)) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.audit_consistency(a.first, a.second),
                render::consistency,
            )
            .await
        }
        Command::Audit(AuditCmd::Verify(a)) => {
            if cfg!(not(feature = "aws")) && a.s3.is_some() {
                eprintln!("error: {NO_AWS}");
                return Ok(ExitCode::from(2));
            }
            let pinned = match (&a.public_key, &a.public_key_file) {
                (Some(hex_key), _) => {
                    Some(verify::parse_public_key(hex_key).context("--public-key")?)
                }
                (None, Some(path)) => Some(verify::read_public_key_file(path)?),
                (None, None) => None,
            };
            // clap keeps --s3, --data and --server apart; --s3 without AWS support is refused
            // above.
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
            match result {
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
            }
        }
        Command::Principals(PrincipalsCmd::List(a)) => {
            show(&a.conn, client(&a.conn)?.principals(), render::principals).await
        }
        Command::Principals(PrincipalsCmd::Set(a)) => {
            show(
                &a.conn,
                client(&a.conn)?.set_roles(&a.id, &a.roles),
                render::principal,
            )
            .await
        }
        Command::Principals(PrincipalsCmd::Add(a)) => {
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

/// `audit verify --s3`: the outcome and where the log was read, or `None` after printing a
/// usage error (a malformed location).
#[cfg(feature = "aws")]
async fn verify_s3(
    location: &str,
    key: &steward_core::audit::PublicKey,
    a: &crate::cli::VerifyArgs,
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
