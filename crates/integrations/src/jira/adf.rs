//! What Steward writes into Jira, in the Atlassian Document Format (ADF) that REST v3 takes
//! for descriptions and comments: `{"type": "doc", "version": 1, "content": [...]}` of
//! `heading`, `paragraph` and `bulletList` nodes whose leaves are `text` nodes (never empty:
//! Jira refuses an empty text node), links as a `link` mark.
//!
//! Also the labels that find a review's issues again: `steward`, `steward-review-<id>`,
//! `steward-promotion-<id>`, ids made label-safe by [`label_safe`].

use serde_json::{json, Value};
use steward_core::records::{Promotion, Review};
use steward_core::service::VersionDetail;

/// The label every issue Steward opens carries.
pub const LABEL: &str = "steward";
/// Prefix of the label naming the review an issue is for.
pub const REVIEW_LABEL: &str = "steward-review-";
/// Prefix of the label naming the promotion an issue's review belongs to.
pub const PROMOTION_LABEL: &str = "steward-promotion-";

/// `id` as a Jira label: no spaces (a label cannot hold one), only `A-Z a-z 0-9 . _ -`, the
/// others replaced by `_`. Model names and version numbers pass unchanged, so a label still
/// names its version; the review is then matched by comparing labels, never by reversing.
pub fn label_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn review_label(review_id: &str) -> String {
    format!("{REVIEW_LABEL}{}", label_safe(review_id))
}

pub fn promotion_label(promotion_id: &str) -> String {
    format!("{PROMOTION_LABEL}{}", label_safe(promotion_id))
}

/// A text node; `None` for empty text, which ADF does not allow.
fn text(s: &str) -> Option<Value> {
    (!s.is_empty()).then(|| json!({"type": "text", "text": s}))
}

fn link(label: &str, href: &str) -> Value {
    json!({"type": "text", "text": label, "marks": [{"type": "link", "attrs": {"href": href}}]})
}

fn paragraph(nodes: Vec<Option<Value>>) -> Value {
    json!({"type": "paragraph", "content": nodes.into_iter().flatten().collect::<Vec<_>>()})
}

fn heading(level: u8, s: &str) -> Value {
    json!({"type": "heading", "attrs": {"level": level}, "content": [text(s)]})
}

fn bullets(items: Vec<String>) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|i| json!({"type": "listItem", "content": [paragraph(vec![text(i)])]}))
        .collect();
    json!({"type": "bulletList", "content": items})
}

/// A document of `content`.
pub fn doc(content: Vec<Value>) -> Value {
    json!({"type": "doc", "version": 1, "content": content})
}

/// A document of one paragraph, optionally ending with a link.
pub fn note(s: &str, link_to: Option<(&str, &str)>) -> Value {
    let mut nodes = vec![text(s)];
    if let Some((label, href)) = link_to {
        nodes.push(text(" "));
        nodes.push(Some(link(label, href)));
    }
    doc(vec![paragraph(nodes)])
}

/// The summary line (Jira allows 255 characters).
pub fn summary(review: &Review) -> String {
    let s = format!(
        "Steward review: {} v{} to {} ({} review)",
        review.name, review.version, review.target, review.stage
    );
    s.chars().take(255).collect()
}

/// The description: what is to be reviewed, the evidence the version carries, and
/// the links to the console.
pub fn description(
    review: &Review,
    promotion: &Promotion,
    detail: &VersionDetail,
    console: Option<&str>,
) -> Value {
    let v = &detail.version;
    let mut content = vec![
        heading(2, "Review"),
        bullets(vec![
            format!("Model: {} version {}", v.name, v.version),
            format!("Risk tier: {}", v.risk_tier),
            format!("Promotion: {} to {}", promotion.id, promotion.target),
            format!("Stage: {}", review.stage),
            format!(
                "Deadline: {}",
                review
                    .deadline
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            format!("Requested by: {}", promotion.requested_by),
            format!("Registered by: {}", v.registered_by),
        ]),
        heading(2, "Evidence"),
    ];
    let mut evidence = vec![
        format!(
            "Artifact: {} (SHA-256 {}, {} bytes)",
            v.artifact.uri,
            v.artifact.sha256.to_hex(),
            v.artifact.size_bytes
        ),
        format!(
            "Code: {} at {}",
            v.lineage.code.repository, v.lineage.code.commit
        ),
        format!(
            "Registration manifest SHA-256: {}",
            v.manifest_sha256.to_hex()
        ),
        format!("Model card revision: {}", v.card_revision),
    ];
    for t in &v.lineage.training_data {
        evidence.push(format!(
            "Training data: {} (SHA-256 {})",
            t.uri,
            t.sha256.to_hex()
        ));
    }
    for e in &v.evaluations {
        let metrics: Vec<String> = e
            .result
            .metrics
            .iter()
            .map(|(k, m)| format!("{k} = {m}"))
            .collect();
        let env = e
            .result
            .environment
            .map(|e| format!(", on {e} test data"))
            .unwrap_or_default();
        evidence.push(format!(
            "Evaluation {}: {} (dataset {}, SHA-256 {}{env})",
            e.result.name,
            if metrics.is_empty() {
                "no metrics".to_owned()
            } else {
                metrics.join(", ")
            },
            e.result.dataset.uri,
            e.result.dataset.sha256.to_hex(),
        ));
    }
    content.push(bullets(evidence));
    if let Some(base) = console {
        content.push(paragraph(vec![
            Some(link(
                "Decide in Steward",
                &format!("{base}/console/reviews/{}", review.id),
            )),
            text(" · "),
            Some(link(
                "Model card and version",
                &format!("{base}/console/models/{}/versions/{}", v.name, v.version),
            )),
        ]));
    }
    content.push(paragraph(vec![text(
        "Moving this issue through the approve or reject transition records the decision in \
         Steward as the Steward principal mapped to your Jira account; roles and separation of \
         duties apply.",
    )]));
    doc(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_names_and_versions_and_replace_what_a_label_cannot_hold() {
        assert_eq!(
            review_label("credit-risk.2.pr-ab12-technical"),
            "steward-review-credit-risk.2.pr-ab12-technical"
        );
        assert_eq!(label_safe("m.1.p r/x"), "m.1.p_r_x");
    }

    #[test]
    fn a_note_never_holds_an_empty_text_node() {
        let n = note("", Some(("open", "https://x")));
        let para = &n["content"][0]["content"];
        assert!(para
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["text"].as_str().unwrap().is_empty()));
    }
}
