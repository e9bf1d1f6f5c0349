//! `steward demo`: the whole governed life of a high-risk model, acted out by eight people and
//! a CI pipeline against a real server on 127.0.0.1, through the same HTTP client as the
//! subcommands; and a low-risk model that policy promotes to staging by itself.
//!
//! Invariants: the demo starts from an empty data directory; every step states what it expects
//! (a success, or a refusal with a given status and code) and the demo stops with an error at
//! the first step that behaves otherwise; tokens stay in memory (and in the data directory's
//! private `tokens.txt`), never on screen.//!
//! The demo is a sequence of chapters, one function each, in the order [`act`] calls them:
//! `registration`, `promotion` (staging, then production's four reviews), `monitoring` (drift,
//! version 2, automatic rollback, `production?at`, incidents), `retirement`, `automation` (a
//! low-risk model approved for staging by policy once CI reports its unit tests; the high-risk
//! model's reviews stay human), `evidence` (an auditor's signed documentation pack of v1) and
//! `audit` (principals, online and offline verification).
//! `script` holds the numbered steps and the expectations every chapter states; `manifests`
//! what is registered; `policy.toml` the demo's policy (the default, with the low tier's
//! technical review automated).

mod audit;
mod automation;
mod evidence;
mod manifests;
mod monitoring;
mod promotion;
mod registration;
mod retirement;
mod script;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use steward_core::types::Role;
use steward_local::Embedded;

use crate::cli::DemoArgs;
use crate::client::Client;
use crate::principals_file::{self, Credential};
use crate::{server, verify};
use monitoring::Timeline;
use script::{Cast, Script};

const MODEL: &str = "credit-risk";

/// The CI pipeline's principal: it reports check results, and may do nothing else.
const CI: &str = "ci-bot";

/// Who is who in the demo, and why they hold their roles.
const CAST: &[(&str, &[Role], &str)] = &[
    (
        "ada",
        &[Role::Admin],
        "manages principals and policy; decides no reviews",
    ),
    (
        "dana",
        &[Role::Developer, Role::TechnicalReviewer],
        "data scientist; also reviews other teams' models",
    ),
    (
        "tom",
        &[Role::TechnicalReviewer, Role::BusinessReviewer],
        "ML lead",
    ),
    ("bea", &[Role::BusinessReviewer], "head of underwriting"),
    (
        "carl",
        &[Role::ComplianceReviewer],
        "model risk and compliance",
    ),
    ("rita", &[Role::ReleaseManager], "release manager"),
    (
        "otto",
        &[Role::Operator],
        "on-call operator; monitoring signals",
    ),
    ("audrey", &[Role::Auditor], "internal audit"),
    (CI, &[Role::Ci], "the CI pipeline; reports check results"),
];

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The data directory: `--keep DIR` (empty or new) or a temporary directory.
fn data_dir(keep: Option<&Path>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match keep {
        Some(dir) => {
            if dir.exists()
                && std::fs::read_dir(dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .next()
                    .is_some()
            {
                bail!(
                    "--keep {}: the directory is not empty; the demo needs a fresh one",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok((dir.to_owned(), None))
        }
        None => {
            let tmp = tempfile::Builder::new().prefix("steward-demo-").tempdir()?;
            Ok((tmp.path().to_owned(), Some(tmp)))
        }
    }
}

/// The opening lines: where the server and the data are, and who is who.
fn introduce(url: &str, dir: &Path, temporary: bool) {
    println!(
        "Steward demo: the governed life of a high-risk credit model (and of a low-risk one that \
         policy promotes), through the HTTP API"
    );
    println!(
        "server {url}, data in {}{}",
        dir.display(),
        if temporary { " (temporary)" } else { "" }
    );
    println!("\nWho is who (each holds a bearer token; tokens are never shown):");
    let width = CAST.iter().map(|(n, ..)| n.len()).max().unwrap_or(0);
    let rwidth = CAST
        .iter()
        .map(|(_, r, _)| roles_text(r).len())
        .max()
        .unwrap_or(0);
    for (name, roles, about) in CAST {
        println!("  {name:<width$}  {:<rwidth$}  {about}", roles_text(roles));
    }
}

/// `steward demo`
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (dir, tmp) = data_dir(args.keep.as_deref())?;

    // The cast: a principals file and private tokens file, exactly as `steward serve` reads them.
    let creds: Vec<Credential> = CAST
        .iter()
        .map(|(name, roles, _)| Credential::new(name, roles))
        .collect::<anyhow::Result<_>>()?;
    let principals_path = dir.join(principals_file::PRINCIPALS_FILE);
    principals_file::write_with_tokens(
        &principals_path,
        &dir.join(principals_file::TOKENS_FILE),
        &creds,
    )?;
    let entries = steward_local::load_principals(&principals_path)?;

    let embedded = Embedded::open(&dir, automation::policy()?).await?;
    embedded.seed_principals(&entries).await?;
    let running =
        server::start(&embedded, server::tokens(&entries), "127.0.0.1:0".parse()?).await?;
    let url = running.url();
    let clients = creds
        .iter()
        .map(|c| {
            let name = CAST
                .iter()
                .find(|(n, ..)| *n == c.name.as_ref())
                .map(|(n, ..)| *n);
            Ok((
                name.expect("every credential is in the cast"),
                Client::new(&url, Some(&c.token))?,
            ))
        })
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let cast = Cast { clients };

    introduce(&url, &dir, tmp.is_some());

    let mut script = Script { n: 0 };
    let outcome = act(&cast, &mut script).await;
    let stopped = running.stop().await;
    drop(embedded);
    let (online, pack) = outcome?;
    stopped?;
    let pack_path = dir.join(format!("{MODEL}-v1-evidence.zip"));
    std::fs::write(&pack_path, &pack)
        .with_context(|| format!("writing {}", pack_path.display()))?;

    audit::offline_verification(&mut script, &dir, &online)?;

    println!(
        "\nDemo complete in {:.1}s: every step behaved as the governance rules require.",
        started.elapsed().as_secs_f64()
    );
    // The console serves what the demo just did (`/console/`, sign in with a token).
    let keep = match &tmp {
        Some(_) => "steward demo --keep DIR".to_owned(),
        None => dir.display().to_string(),
    };
    println!(
        "The web console: steward serve --data {keep} --addr 127.0.0.1:8080, then open \
         http://127.0.0.1:8080/console/ and sign in with a token from tokens.txt there."
    );
    match tmp {
        Some(tmp) => drop(tmp),
        None => {
            println!("The data directory is kept in {}:", dir.display());
            println!(
                "  steward serve --data {}        (tokens in tokens.txt there)",
                dir.display()
            );
            println!("  steward audit verify --data {}", dir.display());
            let key = steward_core::audit::CheckpointSigner::public_key(
                &steward_local::signing_key(&dir)?,
            );
            println!(
                "  steward evidence verify {} --public-key {}",
                pack_path.display(),
                hex::encode(key)
            );
        }
    }
    Ok(())
}

/// Every chapter but the last, through the API; returns the online verification report and
/// credit-risk v1's evidence pack.
async fn act(cast: &Cast, sc: &mut Script) -> anyhow::Result<(verify::Report, Vec<u8>)> {
    let v1_manifest = manifests::manifest_v1()?;
    registration::refused_without_rollback(cast, sc, &v1_manifest).await?;
    registration::first_version(cast, sc, &v1_manifest).await?;
    promotion::staging(cast, sc).await?;
    promotion::production_reviews(cast, sc).await?;
    let v1_live = promotion::production_deployment(cast, sc).await?;
    monitoring::drift(cast, sc).await?;
    let v2_live = monitoring::version_two(cast, sc, &v1_manifest).await?;
    let rolled_back = monitoring::automatic_rollback(cast, sc).await?;
    let timeline = Timeline {
        v1_live,
        v2_live,
        rolled_back,
    };
    monitoring::production_history(cast, sc, &timeline).await?;
    retirement::retirement(cast, sc).await?;
    monitoring::incidents(cast, sc).await?;
    automation::policy_decides(cast, sc, &v1_manifest).await?;
    automation::high_risk_stays_human(cast, sc).await?;
    audit::principals(cast, sc).await?;
    let pack = evidence::pack(cast, sc).await?;
    Ok((audit::online_verification(cast, sc).await?, pack))
}
