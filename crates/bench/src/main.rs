//! Benchmarks behind docs/PERFORMANCE.md: the embedded server under a load generator on
//! 127.0.0.1, and the audit log's append, verify and proof rates.
//!
//! Every run is bounded in requests and time and talks to loopback only. Figures are printed as
//! Markdown rows so they can be pasted into the doc with the command that produced them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use steward_api::{router, AppState, BearerTokens};
use steward_core::audit::checkpoint::sign_checkpoint;
use steward_core::audit::verify::{verify_log, StoredEvent};
use steward_core::audit::{AuditDraft, Ed25519Signer, MerkleTree};
use steward_core::ids::VersionNumber;
use steward_core::ports::{Caller, Commit, Registry};
use steward_core::types::{Environment, PrincipalId, Role, Sha256};
use steward_core::Policy;
use steward_local::Embedded;

#[derive(Parser)]
#[command(about = "Steward benchmarks (see docs/PERFORMANCE.md)")]
struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Embedded server over HTTP on 127.0.0.1: register, get, list, decision.
    Server {
        /// Registrations to time.
        #[arg(long, default_value_t = 5000)]
        registrations: usize,
        /// Reads per read benchmark.
        #[arg(long, default_value_t = 20000)]
        reads: usize,
        /// Concurrent client connections.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Versions stored before the read benchmarks (seeded in-process, not timed).
        #[arg(long, default_value_t = 100_000)]
        stored_versions: usize,
    },
    /// The web console's pages (model list, model page, review page): render latency at one
    /// connection and page weight, over N stored versions.
    Console {
        #[arg(long, default_value_t = 100_000)]
        stored_versions: usize,
        /// Requests per page kind.
        #[arg(long, default_value_t = 2000)]
        reads: usize,
    },
    /// Audit log: append rate through the store, verification and proof generation over N events.
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 20000)]
        appends: u64,
    },
}

const MANIFEST: &str = include_str!("../../../examples/credit-risk-v1.json");

fn token_hash(t: &str) -> Sha256 {
    Sha256::digest(t.as_bytes())
}

struct Server {
    base: String,
    emb: Arc<Embedded>,
    _dir: tempfile::TempDir,
}

async fn start_server() -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let emb = Arc::new(Embedded::open(dir.path(), Policy::default()).await?);
    let people = [
        ("dev", vec![Role::Developer]),
        ("tech", vec![Role::TechnicalReviewer]),
        ("rel", vec![Role::ReleaseManager]),
    ];
    let mut tokens = Vec::new();
    for (name, roles) in people {
        let id = PrincipalId::parse(name)?;
        emb.gov.seed_principal(&id, roles, "file").await?;
        tokens.push((id, token_hash(&format!("token-{name}"))));
    }
    let app = router(AppState {
        gov: emb.gov.clone(),
        auth: Arc::new(BearerTokens::new(tokens)),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Server {
        base,
        emb,
        _dir: dir,
    })
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()?)
}

/// Runs `total` requests from `concurrency` workers; `make(i)` builds request `i`, which must
/// answer `expect`. Returns (requests per second, latency histogram in microseconds).
async fn load<F>(
    total: usize,
    concurrency: usize,
    expect: u16,
    make: F,
) -> Result<(f64, Histogram<u64>)>
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let make = make.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(hist);
                }
                let t = Instant::now();
                let resp = make(i).send().await?;
                let status = resp.status().as_u16();
                let body = resp.bytes().await?;
                ensure!(
                    status == expect,
                    "request {i}: {status} {}",
                    String::from_utf8_lossy(&body)
                );
                hist.record(t.elapsed().as_micros() as u64)?;
            }
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for w in workers {
        hist.add(w.await??)?;
    }
    Ok((total as f64 / started.elapsed().as_secs_f64(), hist))
}

fn row(what: &str, rate: f64, h: &Histogram<u64>) {
    println!(
        "| {what} | {:.0}/s | {:.2} ms | {:.2} ms | {:.2} ms |",
        rate,
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

async fn server_bench(
    registrations: usize,
    reads: usize,
    concurrency: usize,
    stored: usize,
) -> Result<()> {
    let s = start_server().await?;
    let http = client()?;
    let manifest: Value = serde_json::from_str(MANIFEST)?;
    println!("| operation | throughput | p50 | p99 | max |");
    println!("|---|---|---|---|---|");

    // Registrations: each a new model, so every request creates a model and a version.
    let (base, c, m) = (s.base.clone(), http.clone(), manifest.clone());
    let (rate, h) = load(registrations, concurrency, 201, move |i| {
        c.post(format!("{base}/v1/models/bench-{i}/versions"))
            .bearer_auth("token-dev")
            .json(&m)
    })
    .await?;
    row(
        &format!("register (new model), {concurrency} connections"),
        rate,
        &h,
    );

    // Decisions: open staging promotions (untimed), then time the technical approvals.
    let dev = Caller {
        id: PrincipalId::parse("dev")?,
        roles: vec![Role::Developer],
        auth: steward_core::types::AuthMethod::Token,
    };
    let decisions = registrations.min(2000);
    let mut review_ids = Vec::with_capacity(decisions);
    for i in 0..decisions {
        let p = s
            .emb
            .gov
            .request_promotion(
                &dev,
                &format!("bench-{i}"),
                VersionNumber::FIRST,
                Environment::Staging,
                None,
            )
            .await?;
        review_ids.push(p.reviews[0].id.clone());
    }
    let ids = Arc::new(review_ids);
    let (base, c) = (s.base.clone(), http.clone());
    let (rate, h) = load(decisions, concurrency, 200, move |i| {
        c.post(format!("{base}/v1/reviews/{}/decision", ids[i]))
            .bearer_auth("token-tech")
            .json(&json!({"decision": "approve", "comment": "benchmark"}))
    })
    .await?;
    row("review decision (approve)", rate, &h);

    // Seed up to `stored` versions in-process (untimed) for the read benchmarks.
    let seed_start = Instant::now();
    let per_model = 10;
    let mut have = registrations;
    let mut model = 0;
    while have < stored {
        for _ in 0..per_model {
            s.emb
                .gov
                .register(&dev, &format!("seed-{model}"), manifest.clone(), None)
                .await?;
            have += 1;
        }
        model += 1;
    }
    eprintln!(
        "seeded {have} versions in {:.1}s",
        seed_start.elapsed().as_secs_f64()
    );
    let models = model.max(1);

    let (base, c) = (s.base.clone(), http.clone());
    let (rate, h) = load(reads, concurrency, 200, move |i| {
        let m = (i * 7919) % models;
        let v = 1 + (i % per_model);
        c.get(format!("{base}/v1/models/seed-{m}/versions/{v}"))
            .bearer_auth("token-dev")
    })
    .await?;
    row(&format!("get version ({have} versions stored)"), rate, &h);

    let (base, c) = (s.base.clone(), http.clone());
    let (rate, h) = load(reads, concurrency, 200, move |i| {
        let m = (i * 104_729) % models;
        c.get(format!(
            "{base}/v1/models?limit=50&cursor={}",
            hex_cursor(&format!("seed-{m}"))
        ))
        .bearer_auth("token-dev")
    })
    .await?;
    row(
        &format!("list models, 50 per page ({have} versions stored)"),
        rate,
        &h,
    );

    let (base, c) = (s.base.clone(), http.clone());
    let (rate, h) = load(reads, concurrency, 200, move |_| {
        c.get(format!(
            "{base}/v1/models?tier=high&stage=development&limit=50"
        ))
        .bearer_auth("token-dev")
    })
    .await?;
    row(
        &format!("list models filtered by tier and stage ({have} versions stored)"),
        rate,
        &h,
    );
    Ok(())
}

/// Seeds `stored` versions in-process (10 per model, untimed); returns the number of models.
async fn seed(s: &Server, stored: usize, manifest: &Value) -> Result<usize> {
    let dev = Caller {
        id: PrincipalId::parse("dev")?,
        roles: vec![Role::Developer],
        auth: steward_core::types::AuthMethod::Token,
    };
    let started = Instant::now();
    let mut models = 0;
    let mut have = 0;
    while have < stored {
        for _ in 0..10 {
            s.emb
                .gov
                .register(&dev, &format!("seed-{models}"), manifest.clone(), None)
                .await?;
            have += 1;
        }
        models += 1;
    }
    eprintln!(
        "seeded {have} versions in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(models)
}

/// The path of request `i` of one page kind.
type PagePath = Arc<dyn Fn(usize) -> String + Send + Sync>;

async fn console_bench(stored: usize, reads: usize) -> Result<()> {
    let s = start_server().await?;
    let manifest: Value = serde_json::from_str(MANIFEST)?;
    let models = seed(&s, stored, &manifest).await?;
    // Open staging promotions of some versions, for review pages (untimed).
    let dev = Caller {
        id: PrincipalId::parse("dev")?,
        roles: vec![Role::Developer],
        auth: steward_core::types::AuthMethod::Token,
    };
    let mut reviews = Vec::new();
    for m in 0..models.min(200) {
        let p = s
            .emb
            .gov
            .request_promotion(
                &dev,
                &format!("seed-{m}"),
                VersionNumber::new(10)?,
                Environment::Staging,
                None,
            )
            .await?;
        reviews.push(p.reviews[0].id.clone());
    }
    // Sign in as the technical reviewer: the session cookie the pages need.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = http
        .post(format!("{}/console/login", s.base))
        .form(&[("token", "token-tech")])
        .send()
        .await?;
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .context("a session cookie")?
        .to_owned();
    let pages: Vec<(&str, PagePath)> = vec![
        (
            "model list, 50 per page, random cursor",
            Arc::new(move |i| {
                format!(
                    "/console/models?cursor={}",
                    hex_cursor(&format!("seed-{}", (i * 104_729) % models))
                )
            }),
        ),
        (
            "model page (10 versions, production timeline)",
            Arc::new(move |i| format!("/console/models/seed-{}", (i * 7919) % models)),
        ),
        ("review page (card, evaluations, reviews, decision form)", {
            let reviews = Arc::new(reviews);
            Arc::new(move |i| format!("/console/reviews/{}", reviews[i % reviews.len()]))
        }),
    ];
    println!("| page ({stored} versions stored) | p50 | p99 | max | weight |");
    println!("|---|---|---|---|---|");
    for (what, path) in pages {
        let weight = http
            .get(format!("{}{}", s.base, path(0)))
            .header("cookie", &cookie)
            .send()
            .await?
            .bytes()
            .await?
            .len();
        let (base, c, cookie, path) = (s.base.clone(), http.clone(), cookie.clone(), path.clone());
        let (_, h) = load(reads, 1, 200, move |i| {
            c.get(format!("{base}{}", path(i)))
                .header("cookie", &cookie)
        })
        .await?;
        println!(
            "| {what} | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} KB |",
            h.value_at_quantile(0.50) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
            weight as f64 / 1024.0
        );
    }
    Ok(())
}

/// The store's cursor encoding (hex of the last key), so list pages start mid-table.
fn hex_cursor(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

async fn audit_bench(events: u64, appends: u64) -> Result<()> {
    println!("| measurement | figure |");
    println!("|---|---|");

    // Append: audit-only commits through the SQLite store (each signs a checkpoint).
    let dir = tempfile::tempdir()?;
    let emb = Embedded::open(dir.path(), Policy::default()).await?;
    let started = Instant::now();
    for i in 0..appends {
        let commit = Commit {
            audit: vec![AuditDraft {
                time: chrono::Utc::now(),
                actor: "bench".into(),
                action: "bench.appended".into(),
                name: Some("bench".into()),
                version: Some(VersionNumber::FIRST),
                details: json!({"i": i}),
            }],
            ..Commit::default()
        };
        emb.store.commit(commit).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| append (one event per SQLite commit, checkpoint signed each time) | {:.0} events/s |",
        appends as f64 / secs
    );
    let started = Instant::now();
    steward_local::verify_data_dir(dir.path(), None).context("verify")?;
    println!(
        "| offline verify of that store ({} events, read from SQLite) | {:.2} s |",
        appends + 1,
        started.elapsed().as_secs_f64()
    );

    // Verify: an in-memory log of `events` realistic events with one signed checkpoint.
    let signer = Ed25519Signer::from_seed(&[7u8; 32]);
    let mut rows = Vec::with_capacity(events as usize);
    let mut tree = MerkleTree::new();
    let t0 = chrono::Utc::now();
    for seq in 1..=events {
        let e = AuditDraft {
            time: t0,
            actor: "arn:aws:iam::123456789012:role/ml-developer".into(),
            action: "review.decided".into(),
            name: Some(format!("model-{}", seq % 1000)),
            version: Some(VersionNumber::new((seq % 50) as u32 + 1)?),
            details: json!({"review_id": format!("pr-{seq:032x}-technical"), "decision": "approve", "stage": "technical", "conditions": []}),
        }
        .at(seq);
        let bytes = e.canonical_bytes();
        let leaf = steward_core::audit::leaf_hash(&bytes);
        tree.push(leaf);
        rows.push(StoredEvent {
            seq,
            bytes,
            leaf_hash: Some(leaf),
        });
    }
    let cp = sign_checkpoint(
        &signer,
        tree.len(),
        tree.root(),
        steward_core::audit::format_time(t0),
    );
    let avg = rows.iter().map(|r| r.bytes.len()).sum::<usize>() as f64 / rows.len() as f64;
    let started = Instant::now();
    let report = verify_log(&rows, std::slice::from_ref(&cp), &signer.verifying_key())?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(report.size == events);
    println!(
        "| verify {events} events (avg {avg:.0} bytes) from memory | {:.2} s = {:.2} M events/s |",
        secs,
        events as f64 / secs / 1e6
    );

    // Proofs against the full tree.
    let n = 10_000u64;
    let started = Instant::now();
    let mut hashes = 0;
    for i in 0..n {
        let idx = (i * 104_729) % events;
        hashes += tree.inclusion_proof(idx, events)?.len();
    }
    let per = started.elapsed().as_secs_f64() / n as f64;
    println!(
        "| inclusion proof at {events} events | {:.1} µs each, {} hashes |",
        per * 1e6,
        hashes as u64 / n
    );
    let started = Instant::now();
    for i in 1..=n {
        tree.consistency_proof((i * 7919) % events + 1, events)?;
    }
    println!(
        "| consistency proof at {events} events | {:.1} µs each |",
        started.elapsed().as_secs_f64() / n as f64 * 1e6
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Args::parse().bench {
        Bench::Server {
            registrations,
            reads,
            concurrency,
            stored_versions,
        } => server_bench(registrations, reads, concurrency, stored_versions).await,
        Bench::Console {
            stored_versions,
            reads,
        } => console_bench(stored_versions, reads).await,
        Bench::Audit { events, appends } => audit_bench(events, appends).await,
    }
}
