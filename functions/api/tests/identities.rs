//! Identities on AWS, through the API function's request path (API Gateway IAM request context →
//! caller-ARN step → router over DynamoDB Local): roles granted to an IAM role apply to every
//! session of it, while the audit log and separation of duties see each session's identity, so
//! the same person through two sessions is one person and two people sharing a role are two.
//!
//! Needs the emulators (`bash scripts/emulators run -- cargo test -p steward-fn-api --test
//! identities`); fails without them.

mod common;

use std::sync::Arc;

use serde_json::{json, Value};
use steward_api::IamCallerArn;
use steward_core::ports::AuditLog;
use steward_core::types::{Environment, RiskTier, Role};
use steward_testkit::{dev, manifest_at, staging_evaluation, tech};

use common::{Lambda, Signer};

const ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admin";
/// The role reviewers share, granted the reviewer roles once.
const REVIEW_ROLE: &str = "arn:aws:iam::123456789012:role/AWSReservedSSO_MlReview_0a1b2c";
/// Alice's IAM Identity Center sessions of that role: the session name is her user name.
const ALICE: &str =
    "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_MlReview_0a1b2c/alice@example.com";
const BOB: &str =
    "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_MlReview_0a1b2c/bob@example.com";

fn review_ids(promotion: &Value) -> Vec<(String, String)> {
    promotion["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["stage"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn one_person_in_two_sessions_of_a_role_is_one_reviewer_and_two_people_sharing_it_are_two() {
    let lambda = Lambda::start("identities", ADMIN, Arc::new(IamCallerArn)).await;
    let gov = &lambda.backend.gov;
    lambda
        .backend
        .seed_bootstrap_admins(&lambda.env.bootstrap_admins)
        .await
        .unwrap();
    let admin = Signer {
        arn: ADMIN,
        access_key: "ASIAADMIN",
    };
    // The admin grants the reviewer roles to the shared role, not to any session.
    let (status, body) = lambda
        .call(
            "PUT",
            &format!("/v1/principals/{REVIEW_ROLE}"),
            Some(admin),
            Some(json!({"roles": ["technical-reviewer", "business-reviewer"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A high-tier version on staging, asking for production (set up in-process).
    let (v, _) = gov
        .register(&dev(), "credit-risk", manifest_at(RiskTier::High), None)
        .await
        .unwrap();
    let staging = gov
        .request_promotion(&dev(), "credit-risk", v.version, Environment::Staging, None)
        .await
        .unwrap();
    gov.decide(&tech(), &staging.reviews[0].id, steward_testkit::approve())
        .await
        .unwrap();
    gov.deploy(&dev(), "credit-risk", v.version, Environment::Staging, None)
        .await
        .unwrap();
    gov.add_evaluation(&dev(), "credit-risk", v.version, staging_evaluation(1))
        .await
        .unwrap();
    let production = gov
        .request_promotion(
            &dev(),
            "credit-risk",
            v.version,
            Environment::Production,
            None,
        )
        .await
        .unwrap();
    let reviews = review_ids(&serde_json::to_value(&production).unwrap());
    let stage = |name: &str| reviews.iter().find(|(s, _)| s == name).unwrap().1.clone();

    // whoami: the session acts; the role's grants give it its roles.
    let alice_1 = Signer {
        arn: ALICE,
        access_key: "ASIAALICE1",
    };
    let (status, me) = lambda.call("GET", "/v1/whoami", Some(alice_1), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["principal"], ALICE);
    assert_eq!(me["authentication"], "iam");
    assert_eq!(me["grants"], json!([REVIEW_ROLE]));
    assert_eq!(
        me["roles"],
        json!([Role::TechnicalReviewer, Role::BusinessReviewer])
    );

    let decide = |signer, review: String| {
        let lambda = &lambda;
        async move {
            lambda
                .call(
                    "POST",
                    &format!("/v1/reviews/{review}/decision"),
                    Some(signer),
                    Some(json!({"decision": "approve", "comment": "ok"})),
                )
                .await
        }
    };
    let (status, body) = decide(alice_1, stage("technical")).await;
    assert_eq!(status, 200, "{body}");
    // Alice again, in another session of the same role (new credentials, same person).
    let alice_2 = Signer {
        arn: ALICE,
        access_key: "ASIAALICE2",
    };
    let (status, body) = decide(alice_2, stage("business")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "separation_of_duties", "{body}");
    // Bob shares the role: he is another person, so he may decide the next stage.
    let bob = Signer {
        arn: BOB,
        access_key: "ASIABOB",
    };
    let (status, body) = decide(bob, stage("business")).await;
    assert_eq!(status, 200, "{body}");

    // The audit log names each session and how it authenticated.
    let events = lambda.backend.store.events(None, 1, 100).await.unwrap();
    let decided: Vec<(&str, &Value)> = events
        .iter()
        .filter(|e| e.action == "review.decided")
        .map(|e| (e.actor.as_str(), &e.details["authentication"]))
        .collect();
    assert_eq!(
        decided[decided.len() - 2..],
        [(ALICE, &json!("iam")), (BOB, &json!("iam"))]
    );
}
