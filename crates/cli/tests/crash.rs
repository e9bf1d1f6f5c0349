//! Crash safety of `steward serve`: the server is killed with SIGKILL in the middle of a
//! concurrent load and restarted on the same data directory, several times. Every write it
//! acknowledged with a 2xx must still be there, with its audit event; version numbers stay
//! 1..n per model; the audit log stays 1..N; and `steward audit verify --data` passes, both on
//! the crashed directory and after the restart.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{add_principals, steward, Server, MANIFEST};
use predicates::str::contains;
use serde_json::{json, Value};
use tokio::sync::watch;

/// The models under load: a name, its risk tier, and how many workers drive it at once (more
/// than one, so registrations race for the next version number).
const MODELS: &[(&str, &str)] = &[
    ("crash-alpha", "low"),
    ("crash-beta", "low"),
    ("crash-gamma", "medium"),
];
const WORKERS_PER_MODEL: usize = 2;

/// A write the server answered with a 2xx.
#[derive(Debug, Clone)]
enum Ack {
    Registered {
        name: String,
        version: u64,
    },
    Promoted {
        name: String,
        version: u64,
        id: String,
        target: String,
    },
    Decided {
        promotion: String,
        review: String,
    },
    Evaluated {
        name: String,
        version: u64,
    },
    Deployed {
        name: String,
        version: u64,
        env: String,
    },
}

/// What one round of load saw.
#[derive(Default)]
struct Tally {
    acks: Mutex<Vec<Ack>>,
    /// Answers of 500 and above: always a defect, load or not.
    server_errors: Mutex<Vec<String>>,
    /// Refusals (4xx) by status: races between the workers of one model make some 409s.
    refusals: Mutex<BTreeMap<u16, usize>>,
    in_flight: AtomicUsize,
}

/// One round of load against one server: the workers run until the server is gone.
struct Load {
    base: String,
    client: reqwest::Client,
    tokens: Arc<BTreeMap<String, String>>,
    tally: Tally,
    acked: watch::Sender<usize>,
}

impl Load {
    fn start(base: &str, tokens: Arc<BTreeMap<String, String>>) -> Round {
        let (acked, count) = watch::channel(0);
        let load = Arc::new(Load {
            base: base.to_owned(),
            client: client(),
            tokens,
            tally: Tally::default(),
            acked,
        });
        let mut workers = Vec::new();
        for (name, tier) in MODELS {
            for _ in 0..WORKERS_PER_MODEL {
                let load = load.clone();
                workers.push(tokio::spawn(async move { load.drive(name, tier).await }));
            }
        }
        Round {
            load,
            count,
            workers,
        }
    }

    fn ack(&self, ack: Ack) {
        let mut acks = self.tally.acks.lock().unwrap();
        acks.push(ack);
        self.acked.send_replace(acks.len());
    }

    /// Sends a write as `who`: the body of a 2xx, `None` for a refusal, an error when the
    /// server is gone.
    async fn post(&self, who: &str, path: &str, body: &Value) -> Result<Option<Value>, String> {
        self.tally.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = async {
            let r = self
                .client
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.tokens[who])
                .json(body)
                .send()
                .await?;
            let status = r.status().as_u16();
            let bytes = r.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        self.tally.in_flight.fetch_sub(1, Ordering::SeqCst);
        let (status, bytes) = answer.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&bytes);
        match status {
            200..=299 => Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("POST {path}: {status} with a body that is not JSON ({e}): {text}")
            }))),
            500.. => {
                let mut errors = self.tally.server_errors.lock().unwrap();
                errors.push(format!("POST {path} as {who}: {status} {text}"));
                Ok(None)
            }
            _ => {
                *self
                    .tally
                    .refusals
                    .lock()
                    .unwrap()
                    .entry(status)
                    .or_default() += 1;
                Ok(None)
            }
        }
    }

    /// Drives versions of `name` through their lifecycle, one after another, until the
    /// server stops answering.
    async fn drive(&self, name: &str, tier: &str) {
        while self.lifecycle(name, tier).await.is_ok() {}
    }

    /// Register → staging (promotion, technical review, deployment, staging evaluation) →
    /// production (promotion, every review, deployment). A refusal ends the version's run
    /// early; the caller starts the next version.
    async fn lifecycle(&self, name: &str, tier: &str) -> Result<(), String> {
        let mut manifest: Value = serde_json::from_str(MANIFEST).unwrap();
        manifest["risk_tier"] = json!(tier);
        let Some(v) = self
            .post("dev", &format!("/v1/models/{name}/versions"), &manifest)
            .await?
        else {
            return Ok(());
        };
        let version = v["version"].as_u64().expect("a version number");
        self.ack(Ack::Registered {
            name: name.to_owned(),
            version,
        });
        let at = format!("/v1/models/{name}/versions/{version}");
        if !self.promote(name, version, "staging").await? {
            return Ok(());
        }
        if !self.deploy("dev", name, version, "staging").await? {
            return Ok(());
        }
        let evaluation = steward_testkit::staging_evaluation(version as u32);
        if self
            .post("dev", &format!("{at}/evaluations"), &evaluation)
            .await?
            .is_none()
        {
            return Ok(());
        }
        self.ack(Ack::Evaluated {
            name: name.to_owned(),
            version,
        });
        if !self.promote(name, version, "production").await? {
            return Ok(());
        }
        self.deploy("release", name, version, "production").await?;
        Ok(())
    }

    /// Requests a promotion and has every review approved by its reviewer; whether the
    /// promotion ended approved.
    async fn promote(&self, name: &str, version: u64, target: &str) -> Result<bool, String> {
        let path = format!("/v1/models/{name}/versions/{version}/promotions");
        let Some(p) = self.post("dev", &path, &json!({"target": target})).await? else {
            return Ok(false);
        };
        let id = p["id"].as_str().expect("a promotion id").to_owned();
        self.ack(Ack::Promoted {
            name: name.to_owned(),
            version,
            id: id.clone(),
            target: target.to_owned(),
        });
        let mut last = p.clone();
        for review in p["reviews"].as_array().expect("reviews") {
            let review_id = review["id"].as_str().expect("a review id");
            let who = match review["stage"].as_str().expect("a stage") {
                "technical" => "tech",
                "business" => "biz",
                "compliance" => "comp",
                _ => "release",
            };
            let decision =
                json!({"decision": "approve", "comment": "looks right", "conditions": []});
            let path = format!("/v1/reviews/{review_id}/decision");
            let Some(answer) = self.post(who, &path, &decision).await? else {
                return Ok(false);
            };
            self.ack(Ack::Decided {
                promotion: id.clone(),
                review: review_id.to_owned(),
            });
            last = answer;
        }
        Ok(last["status"] == "approved")
    }

    async fn deploy(&self, who: &str, name: &str, version: u64, env: &str) -> Result<bool, String> {
        let path = format!("/v1/models/{name}/versions/{version}/deployments");
        if self
            .post(who, &path, &json!({"environment": env}))
            .await?
            .is_none()
        {
            return Ok(false);
        }
        self.ack(Ack::Deployed {
            name: name.to_owned(),
            version,
            env: env.to_owned(),
        });
        Ok(true)
    }
}

/// A round of load in progress.
struct Round {
    load: Arc<Load>,
    count: watch::Receiver<usize>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Round {
    /// Waits until `n` writes were acknowledged in this round.
    async fn acknowledged(&mut self, n: usize) {
        let reached = self.count.wait_for(|acked| *acked >= n);
        if tokio::time::timeout(Duration::from_secs(120), reached)
            .await
            .is_err()
        {
            panic!(
                "only {} of {n} writes acknowledged in 120 s; refusals {:?}, server errors {:?}",
                *self.count.borrow(),
                self.load.tally.refusals.lock().unwrap(),
                self.load.tally.server_errors.lock().unwrap(),
            );
        }
    }

    /// Once the server is gone: waits for every worker to notice, and returns what the
    /// server acknowledged. No answer of the round may have been a 5xx.
    async fn finish(self) -> Vec<Ack> {
        for w in self.workers {
            tokio::time::timeout(Duration::from_secs(60), w)
                .await
                .expect("a worker still runs a minute after the kill")
                .expect("a worker panicked");
        }
        let tally = &self.load.tally;
        let errors = tally.server_errors.lock().unwrap();
        assert!(errors.is_empty(), "5xx answers under load: {errors:#?}");
        eprintln!("refusals under load: {:?}", tally.refusals.lock().unwrap());
        let acks = tally.acks.lock().unwrap().clone();
        acks
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Starts `steward serve` on the data directory and polls `/healthz` until it answers.
async fn start(data: &Path, extra: &[&str]) -> Server {
    let server = Server::start(data, extra);
    let client = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = client.get(format!("{}/healthz", server.url)).send().await;
        if health.is_ok_and(|r| r.status() == 200) {
            return server;
        }
        assert!(Instant::now() < deadline, "not healthy within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(client: &reqwest::Client, token: &str, url: String) -> Value {
    let r = client.get(&url).bearer_auth(token).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// Every audit event, in order, following `next_cursor`.
async fn audit_events(server: &Server, token: &str) -> Vec<Value> {
    let client = client();
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let url = format!("{}/v1/audit?after={after}&limit=1000", server.url);
        let page = get(&client, token, url).await;
        events.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => after = c.parse().unwrap(),
            None => return events,
        }
    }
}

/// The audit events with `action` on `name`/`version` whose `details` contain `detail`.
fn count(events: &[Value], action: &str, name: &str, version: u64, detail: (&str, &str)) -> usize {
    events
        .iter()
        .filter(|e| e["action"] == action && e["name"] == name && e["version"] == version)
        .filter(|e| detail.0.is_empty() || e["details"][detail.0] == detail.1)
        .count()
}

/// What a restarted server must show: every acknowledged write with exactly one audit event,
/// versions 1..n per model each registered once, and an audit log numbered 1..N that its
/// checkpoint covers.
async fn check_after_restart(server: &Server, tokens: &BTreeMap<String, String>, acks: &[Ack]) {
    let client = client();
    let (dev, audit) = (&tokens["dev"], &tokens["audit"]);
    let events = audit_events(server, audit).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "audit sequence has a gap or a duplicate");
    let checkpoint = get(
        &client,
        audit,
        format!("{}/v1/audit/checkpoint", server.url),
    )
    .await;
    assert_eq!(
        checkpoint["size"],
        seqs.len(),
        "the checkpoint covers the log"
    );

    for (name, _) in MODELS {
        let model = get(&client, dev, format!("{}/v1/models/{name}", server.url)).await;
        let numbers: Vec<u64> = model["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
        assert_eq!(numbers, expected, "{name}: version numbers have a gap");
        assert_eq!(model["latest_version"], numbers.len(), "{name}");
        for v in numbers {
            let registered = count(&events, "version.registered", name, v, ("", ""));
            assert_eq!(registered, 1, "{name} v{v}: registration audit events");
        }
    }

    let version_url = |name: &str, v: u64| format!("{}/v1/models/{name}/versions/{v}", server.url);
    let mut promotions = BTreeSet::new();
    for ack in acks {
        match ack {
            Ack::Registered { name, version } => {
                let v = get(&client, dev, version_url(name, *version)).await;
                assert_eq!(v["registered_by"], "dev", "{ack:?}");
            }
            Ack::Promoted {
                name,
                version,
                id,
                target,
            } => {
                let url = format!("{}/v1/promotions/{id}", server.url);
                let p = get(&client, dev, url).await;
                assert_eq!((&p["name"], &p["version"]), (&json!(name), &json!(version)));
                assert_eq!(p["target"], *target, "{ack:?}");
                let requested = count(
                    &events,
                    "promotion.requested",
                    name,
                    *version,
                    ("promotion_id", id),
                );
                assert_eq!(requested, 1, "{ack:?}");
                promotions.insert(id.clone());
            }
            Ack::Decided { promotion, review } => {
                let url = format!("{}/v1/promotions/{promotion}", server.url);
                let p = get(&client, dev, url).await;
                let r = p["reviews"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["id"] == *review);
                assert_eq!(
                    r.map(|r| &r["status"]),
                    Some(&json!("approved")),
                    "{ack:?}: {p}"
                );
                let decided = events
                    .iter()
                    .filter(|e| {
                        e["action"] == "review.decided" && e["details"]["review_id"] == *review
                    })
                    .count();
                assert_eq!(decided, 1, "{ack:?}");
                assert!(
                    promotions.contains(promotion),
                    "decided before requested: {ack:?}"
                );
            }
            Ack::Evaluated { name, version } => {
                let v = get(&client, dev, version_url(name, *version)).await;
                let names: Vec<&Value> = v["evaluations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| &e["name"])
                    .collect();
                let wanted = json!(format!("staging-shadow-v{version}"));
                assert!(names.contains(&&wanted), "{ack:?}: {names:?}");
                assert_eq!(
                    count(&events, "evaluation.recorded", name, *version, ("", "")),
                    1,
                    "{ack:?}"
                );
            }
            Ack::Deployed { name, version, env } => {
                let v = get(&client, dev, version_url(name, *version)).await;
                let deployed = v["deployments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["environment"] == *env);
                assert!(deployed, "{ack:?}: {v}");
                let events = count(
                    &events,
                    "version.deployed",
                    name,
                    *version,
                    ("environment", env),
                );
                assert_eq!(events, 1, "{ack:?}");
            }
        }
    }
}

/// `steward audit verify --data DIR` exits 0.
fn verify_offline(data: &Path) {
    steward()
        .args(["audit", "verify", "--data"])
        .arg(data)
        .assert()
        .success()
        .stdout(contains("verified"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_write_survives_a_sigkill_mid_load_with_gapless_versions_and_a_verifiable_log(
) {
    use std::os::unix::process::ExitStatusExt;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let principals = tmp.path().join("principals.toml");
    let tokens = Arc::new(add_principals(&principals));
    let args = ["--principals", principals.to_str().unwrap()];
    let mut acks = Vec::new();
    let mut server = start(&data, &args).await;
    // Three kill points: early (first registrations and promotions), mid-lifecycle, and late
    // (production promotions and deployments under way on every model).
    for (round, kill_after) in [12, 40, 90].into_iter().enumerate() {
        let mut load = Load::start(&server.url, tokens.clone());
        load.acknowledged(kill_after).await;
        let in_flight = load.load.tally.in_flight.load(Ordering::SeqCst);
        let status = server.kill();
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
        let round_acks = load.finish().await;
        eprintln!(
            "round {round}: killed after {} acknowledged writes with {in_flight} requests in flight",
            round_acks.len()
        );
        acks.extend(round_acks);

        // The crashed directory verifies as it is, before anything reopens it.
        verify_offline(&data);
        server = start(&data, &args).await;
        check_after_restart(&server, &tokens, &acks).await;
    }
    let registered = acks
        .iter()
        .filter(|a| matches!(a, Ack::Registered { .. }))
        .count();
    eprintln!(
        "{} acknowledged writes, {registered} registrations",
        acks.len()
    );
    server.stop_gracefully();
    verify_offline(&data);
}
