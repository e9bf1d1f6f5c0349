//! The request economy of the MLflow Model Registry's operations on DynamoDB Local: each
//! `Governance::mlflow_*` operation, on a warm store (principal cache and audit head), makes
//! at most as many DynamoDB requests as its Steward counterpart (`tests/dynamo.rs`,
//! `every_operation_makes_at_most_two_requests_and_none_is_a_scan`), and none is a `Scan`.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT`, and fails without it:
//! `bash scripts/emulators run -- cargo test -p steward-aws --test mlflow_requests`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;

use steward_aws::dynamo::{create_table, DynamoStore};
use steward_aws::RequestCounter;
use steward_core::audit::{CheckpointSigner, Ed25519Signer};
use steward_core::mlflow::MANIFEST_TAG;
use steward_core::ports::{Caller, InProcessWorkflows, Registry, SystemClock};
use steward_core::service::MlflowVersionInput;
use steward_core::{GovError, Governance, Policy};
use steward_local::UuidIds;
use steward_testkit::*;

type Counts = Vec<(String, BTreeMap<String, u64>)>;

/// A governance service on a fresh table whose DynamoDB client counts its requests.
struct Env {
    client: Client,
    counter: RequestCounter,
    table: String,
    store: Arc<DynamoStore>,
    gov: Governance,
    /// Operation → requests by DynamoDB operation, in the order measured.
    counts: Mutex<Counts>,
}

impl Env {
    async fn new() -> Env {
        let emulators = steward_testkit::emulators!();
        let conf = emulators.dynamodb_sdk().await;
        let counter = RequestCounter::default();
        let client = Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&conf)
                .interceptor(counter.clone())
                .build(),
        );
        let table = unique("steward-mlflow");
        create_table(&client, &table).await.unwrap();
        let signer = Ed25519Signer::from_seed(&[42; 32]);
        let store = DynamoStore::new(
            client.clone(),
            table.clone(),
            (signer.key_id(), signer.public_key()),
        );
        // Warm means warm for the whole test, however slow the machine.
        let store = Arc::new(store.with_principal_ttl(Duration::from_secs(600)));
        let gov = Governance::new(
            store.clone(),
            store.clone(),
            Arc::new(InProcessWorkflows),
            Arc::new(SystemClock),
            Arc::new(UuidIds),
            Policy::default(),
        );
        Env {
            client,
            counter,
            table,
            store,
            gov,
            counts: Mutex::default(),
        }
    }

    /// Runs `op` as a request would (authenticate through the principal cache, then the
    /// governance call) and records the DynamoDB requests it made.
    async fn measure<T>(&self, label: &str, who: &Caller, op: impl Future<Output = T>) -> T {
        self.counter.take();
        self.store.principal(&who.id).await.unwrap();
        let out = op.await;
        let counts = self.counter.take();
        self.counts.lock().unwrap().push((label.to_owned(), counts));
        out
    }

    /// The requests `label` made in all.
    fn total(&self, label: &str) -> u64 {
        let counts = self.counts.lock().unwrap();
        let found = counts.iter().find(|(l, _)| l == label);
        found.map_or_else(
            || panic!("{label} was not measured"),
            |(_, c)| c.values().sum(),
        )
    }
}

/// Operations that may make more than two requests: label, requests, why. Anything not
/// listed here must make at most two.
const OVER_TWO: &[(&str, u64, &str)] = &[(
    "mlflow_update_version",
    3,
    "BatchGetItem (version, model, MLflow record) and TransactWriteItems, then one Query of \
     the model's versions: `model-versions/update` answers with the version as \
     `model-versions/get` shows it, whose staging aliases name the newest version in staging, \
     so every version is read (the tag operations answer nothing and skip it)",
)];

/// The `model-versions/create` input the MLflow client sends for a registration whose
/// manifest is in the `steward.manifest` tag (so no artifact file is read).
fn version_input() -> MlflowVersionInput {
    let m = manifest();
    let source = m["artifact"]["uri"].as_str().unwrap_or_default().to_owned();
    MlflowVersionInput {
        source,
        run_id: "run-1".into(),
        description: "trained through MLflow".into(),
        tags: vec![(MANIFEST_TAG.into(), m.to_string())],
        ..MlflowVersionInput::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mlflow_operation_makes_at_most_two_requests_and_none_is_a_scan() {
    let env = Env::new().await;
    let d = dev();
    // Every principal seeded and cached, the head read: a running Lambda is this warm.
    for c in everyone() {
        env.gov
            .seed_principal(&c.id, c.roles.clone(), "bootstrap")
            .await
            .unwrap();
        env.store.principal(&c.id).await.unwrap();
    }
    env.gov
        .register(&d, "warmup", manifest(), None)
        .await
        .unwrap();
    // A Steward model with two versions, as pipelines register them.
    let m = "credit-risk";
    for _ in 0..2 {
        env.gov.register(&d, m, manifest(), None).await.unwrap();
    }

    let gov = &env.gov;
    // Registered models: a Steward model's MLflow record, and a model MLflow alone knows.
    env.measure(
        "mlflow_create_model",
        &d,
        gov.mlflow_create_model(&d, "churn", "churn, through MLflow", &[]),
    )
    .await
    .unwrap();
    env.measure("mlflow_model (get)", &d, gov.mlflow_model(m))
        .await
        .unwrap();
    env.measure(
        "mlflow_update_model",
        &d,
        gov.mlflow_update_model(&d, m, "credit risk, described in MLflow"),
    )
    .await
    .unwrap();
    env.measure(
        "mlflow_set_model_tag",
        &d,
        gov.mlflow_set_model_tag(&d, m, "team", "risk"),
    )
    .await
    .unwrap();
    env.measure(
        "mlflow_delete_model_tag",
        &d,
        gov.mlflow_delete_model_tag(&d, m, "team"),
    )
    .await
    .unwrap();
    env.measure(
        "mlflow_set_alias (free alias)",
        &d,
        gov.mlflow_set_alias(&d, m, "challenger", vn(2)),
    )
    .await
    .unwrap();
    let (_, v) = env
        .measure(
            "mlflow_version_by_alias",
            &d,
            gov.mlflow_version_by_alias(m, "challenger"),
        )
        .await
        .unwrap();
    assert_eq!(v, vn(2));
    env.measure(
        "mlflow_delete_alias",
        &d,
        gov.mlflow_delete_alias(&d, m, "challenger"),
    )
    .await
    .unwrap();

    // Model versions.
    env.measure("mlflow_version", &d, gov.mlflow_version(m, vn(1)))
        .await
        .unwrap();
    env.measure(
        "mlflow_update_version",
        &d,
        gov.mlflow_update_version(&d, m, vn(1), "the first, described"),
    )
    .await
    .unwrap();
    env.measure(
        "mlflow_set_version_tag",
        &d,
        gov.mlflow_set_version_tag(&d, m, vn(1), "validated", "yes"),
    )
    .await
    .unwrap();
    env.measure(
        "mlflow_delete_version_tag",
        &d,
        gov.mlflow_delete_version_tag(&d, m, vn(1), "validated"),
    )
    .await
    .unwrap();
    // A registration through MLflow, beside a plain one on the same model.
    env.measure(
        "register (Steward, next version)",
        &d,
        gov.register(&d, m, manifest(), None),
    )
    .await
    .unwrap();
    let (_, created) = env
        .measure(
            "mlflow_create_version (registration)",
            &d,
            gov.mlflow_create_version(&d, m, version_input()),
        )
        .await
        .unwrap();
    assert_eq!(created.version, vn(4));

    // Renamed and deleted: a model with no Steward versions.
    env.measure(
        "mlflow_rename_model (no versions)",
        &d,
        gov.mlflow_rename_model(&d, "churn", "churn-v2"),
    )
    .await
    .unwrap();
    env.measure(
        "mlflow_delete_model (no versions)",
        &d,
        gov.mlflow_delete_model(&d, "churn-v2"),
    )
    .await
    .unwrap();
    // And one whose every version is retired.
    gov.register(&d, "retired", manifest(), None).await.unwrap();
    gov.retire(&rel(), "retired", vn(1), "superseded", None)
        .await
        .unwrap();
    env.measure(
        "mlflow_delete_model (versions retired)",
        &d,
        gov.mlflow_delete_model(&d, "retired"),
    )
    .await
    .unwrap();

    // What the changes check without reading the versions (the model record says), refused
    // as a read of the versions would refuse it.
    let err = gov
        .mlflow_set_alias(&d, m, "challenger", vn(9))
        .await
        .unwrap_err();
    assert!(matches!(err, GovError::NotFound(_)), "{err}");
    let err = gov.mlflow_delete_model(&d, m).await.unwrap_err();
    assert!(
        err.to_string().contains("not retired (1, 2, 3, 4)"),
        "{err}"
    );

    // The list search reads: every model, every MLflow record. Both lists are paged by the
    // store (`list_models` 500 a page, `registered_models` every page of its query), so the
    // count grows with the registry, one request per page; a handful of models is one page
    // of each.
    for n in ["a", "b", "c"] {
        gov.mlflow_create_model(&d, &format!("mlflow-only-{n}"), "", &[])
            .await
            .unwrap();
    }
    let listed = env
        .measure(
            "mlflow_models (list: 5 of 8 records)",
            &d,
            gov.mlflow_models(),
        )
        .await
        .unwrap();
    // warmup, credit-risk and the three MLflow-only ones; the tombstones are left out.
    assert_eq!(listed.len(), 5, "{listed:?}");

    report(&env.counts.lock().unwrap());
    assert_eq!(
        env.total("mlflow_models (list: 5 of 8 records)"),
        2,
        "one page of models, one of MLflow records"
    );
    assert!(
        env.total("mlflow_create_version (registration)")
            <= env.total("register (Steward, next version)"),
        "a registration through MLflow costs what a Steward registration does"
    );
    let _ = env
        .client
        .delete_table()
        .table_name(&env.table)
        .send()
        .await;
}

/// Prints the table of counts and checks the budget (two, or what `OVER_TWO` says) and that
/// no operation scanned.
fn report(counts: &Counts) {
    println!("\nDynamoDB requests per MLflow operation (warm: principal cache and audit head)");
    println!(
        "{:<40} {:>8}  by DynamoDB operation",
        "operation", "requests"
    );
    println!("{}", "-".repeat(96));
    let mut failures = Vec::new();
    for (label, by) in counts {
        let total: u64 = by.values().sum();
        let by_op = by
            .iter()
            .map(|(op, n)| format!("{}×{n}", op.trim_start_matches("DynamoDB.")))
            .collect::<Vec<_>>()
            .join(", ");
        println!("{label:<40} {total:>8}  {by_op}");
        let allowed = OVER_TWO
            .iter()
            .find(|(op, _, _)| label == op)
            .map_or(2, |(_, n, _)| *n);
        if total > allowed {
            failures.push(format!("{label}: {total} requests ({by_op})"));
        }
        assert!(
            !by.keys().any(|op| op.ends_with(".Scan")),
            "{label} issued a Scan"
        );
    }
    for (op, n, why) in OVER_TWO {
        println!("note: {op} makes {n}: {why}");
    }
    assert!(failures.is_empty(), "over budget: {failures:#?}");
}
