//! A Jira Cloud site on 127.0.0.1 that answers the REST v3 calls Steward makes as Jira does,
//! checks them as Jira would (Basic auth of the bot's email and token, the documented JSON
//! bodies, ADF documents) and records every request. Any deviation is answered 400 with
//! Jira's error shape and kept in `violations`, which every test asserts empty.
//!
//! Its workflow: `To Do` offers Approve (21, to Approved), Reject (31, to Rejected) and Done
//! (41); Approved and Rejected offer Done; Done offers nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};

pub const EMAIL: &str = "steward-bot@acme.example";
pub const TOKEN: &str = "ATATT3xFfGF0-test-token";

/// One request as Jira received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// An issue as Jira keeps it.
#[derive(Debug, Clone)]
pub struct Issue {
    pub key: String,
    pub fields: Value,
    pub status: String,
    pub comments: Vec<Value>,
}

impl Issue {
    pub fn labels(&self) -> Vec<String> {
        self.fields["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect()
    }
    /// The text of every comment, in order.
    pub fn comment_texts(&self) -> Vec<String> {
        self.comments.iter().map(|c| text_of(&c["body"])).collect()
    }
}

/// A failure to answer the next matching request with.
#[derive(Debug, Clone)]
pub enum Fault {
    Status {
        method: &'static str,
        path_contains: &'static str,
        code: u16,
        retry_after: Option<u64>,
        body: Value,
    },
    Slow {
        method: &'static str,
        path_contains: &'static str,
        delay: Duration,
    },
}

#[derive(Default)]
pub struct State {
    pub issues: BTreeMap<String, Issue>,
    pub requests: Vec<Request>,
    pub faults: VecDeque<Fault>,
    pub violations: Vec<String>,
    next: u32,
    comment_ids: u32,
}

#[derive(Clone)]
pub struct FakeJira {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeJira {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let app = axum::Router::new().fallback(move |m: Method, u: Uri, h: HeaderMap, b: Bytes| {
            let s = s.clone();
            async move { handle(s, m, u, h, b).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
    pub fn issues(&self) -> Vec<Issue> {
        self.lock().issues.values().cloned().collect()
    }
    pub fn issue(&self, key: &str) -> Issue {
        self.lock().issues[key].clone()
    }
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }
    /// `METHOD path` of every request, in order.
    pub fn calls(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
    pub fn fail_next(&self, f: Fault) {
        self.lock().faults.push_back(f);
    }
    pub fn set_status(&self, key: &str, status: &str) {
        self.lock().issues.get_mut(key).unwrap().status = status.into();
    }
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }
}

fn jira_error(code: StatusCode, message: &str) -> Response {
    (
        code,
        Json(json!({"errorMessages": [message], "errors": {}})),
    )
        .into_response()
}

async fn handle(s: Arc<Mutex<State>>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    let body: Value = if b.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&b) {
            Ok(v) => v,
            Err(_) => return jira_error(StatusCode::BAD_REQUEST, "Invalid request payload."),
        }
    };
    let path = u.path().to_owned();
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fault = {
        let mut st = s.lock().unwrap();
        st.requests.push(Request {
            method: m.to_string(),
            path: path.clone(),
            authorization: auth.clone(),
            body: body.clone(),
        });
        let i = st.faults.iter().position(|f| {
            let (fm, fp) = match f {
                Fault::Status {
                    method,
                    path_contains,
                    ..
                }
                | Fault::Slow {
                    method,
                    path_contains,
                    ..
                } => (method, path_contains),
            };
            m.as_str() == *fm && path.contains(fp)
        });
        i.and_then(|i| st.faults.remove(i))
    };
    match fault {
        Some(Fault::Status {
            code,
            retry_after,
            body,
            ..
        }) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), Json(body)).into_response();
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            return r;
        }
        Some(Fault::Slow { delay, .. }) => tokio::time::sleep(delay).await,
        None => {}
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{TOKEN}"));
    if auth.as_deref() != Some(format!("Basic {basic}").as_str()) {
        return jira_error(
            StatusCode::UNAUTHORIZED,
            "Client must be authenticated to access this resource.",
        );
    }
    let mut st = s.lock().unwrap();
    match route(&mut st, &m, &path, u.query().unwrap_or_default(), &body) {
        Ok(r) => r,
        Err(violation) => {
            st.violations.push(format!("{m} {path}: {violation}"));
            jira_error(StatusCode::BAD_REQUEST, &violation)
        }
    }
}

fn route(
    st: &mut State,
    m: &Method,
    path: &str,
    query: &str,
    body: &Value,
) -> Result<Response, String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (m.as_str(), parts.as_slice()) {
        ("POST", ["rest", "api", "3", "search", "jql"]) => search(st, body),
        ("POST", ["rest", "api", "3", "issue"]) => create(st, body),
        ("GET", ["rest", "api", "3", "issue", key, "comment"]) => {
            let issue = st.issues.get(*key).ok_or("Issue does not exist")?;
            let n = issue.comments.len();
            // As Jira: comment properties only when asked for with expand=properties.
            let mut comments = issue.comments.clone();
            if !query.split('&').any(|q| q == "expand=properties") {
                for c in &mut comments {
                    c.as_object_mut().unwrap().remove("properties");
                }
            }
            Ok(
                Json(json!({"startAt": 0, "maxResults": 100, "total": n, "comments": comments}))
                    .into_response(),
            )
        }
        ("POST", ["rest", "api", "3", "issue", key, "comment"]) => {
            check_adf(&body["body"])?;
            let props = body["properties"].as_array().cloned().unwrap_or_default();
            if props
                .iter()
                .any(|p| !p["key"].is_string() || !p["value"].is_object())
            {
                return Err("a comment property is {key, value}".into());
            }
            st.comment_ids += 1;
            let id = (10000 + st.comment_ids).to_string();
            let issue = st.issues.get_mut(*key).ok_or("Issue does not exist")?;
            let c = json!({"id": id, "body": body["body"], "properties": props,
                "author": {"emailAddress": EMAIL}, "created": "2026-12-01T09:00:00.000+0000"});
            issue.comments.push(c.clone());
            Ok((StatusCode::CREATED, Json(c)).into_response())
        }
        ("GET", ["rest", "api", "3", "issue", key, "transitions"]) => {
            let issue = st.issues.get(*key).ok_or("Issue does not exist")?;
            let offered: Vec<Value> = offered(&issue.status)
                .into_iter()
                .map(|(id, name, to)| json!({"id": id, "name": name, "to": {"name": to}}))
                .collect();
            Ok(Json(json!({"expand": "transitions", "transitions": offered})).into_response())
        }
        ("POST", ["rest", "api", "3", "issue", key, "transitions"]) => {
            let id = body["transition"]["id"]
                .as_str()
                .ok_or("transition.id is required")?;
            let issue = st.issues.get_mut(*key).ok_or("Issue does not exist")?;
            let (_, _, to) = offered(&issue.status)
                .into_iter()
                .find(|(i, _, _)| *i == id)
                .ok_or("Transition id is not valid for this issue")?;
            issue.status = to.into();
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(format!("no such resource {path}")),
    }
}

fn offered(status: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    match status {
        "To Do" => vec![
            ("21", "Approve", "Approved"),
            ("31", "Reject", "Rejected"),
            ("41", "Done", "Done"),
        ],
        "Approved" | "Rejected" => vec![("41", "Done", "Done")],
        _ => vec![],
    }
}

fn search(st: &State, body: &Value) -> Result<Response, String> {
    let jql = body["jql"].as_str().ok_or("jql is required")?;
    if body.get("startAt").is_some() {
        return Err(
            "Invalid request payload: startAt is not accepted; page with nextPageToken".into(),
        );
    }
    let label = jql
        .split("labels = \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .ok_or("this fake understands `labels = \"...\"` only")?;
    if !jql.contains("project = \"GOV\"") {
        return Err(format!("the search is not bounded to the project: {jql}"));
    }
    let issues: Vec<Value> = st
        .issues
        .values()
        .filter(|i| i.labels().iter().any(|l| l == label))
        .map(|i| {
            json!({"id": i.key.trim_start_matches("GOV-"), "key": i.key,
            "fields": {"labels": i.labels(), "status": {"name": i.status}}})
        })
        .collect();
    Ok(Json(json!({"issues": issues, "isLast": true})).into_response())
}

fn create(st: &mut State, body: &Value) -> Result<Response, String> {
    let f = &body["fields"];
    if f["project"]["key"] != "GOV" {
        return Err("fields.project.key: project is required".into());
    }
    if f["issuetype"]["name"] != "Task" {
        return Err("fields.issuetype: Specify a valid issue type".into());
    }
    let summary = f["summary"].as_str().ok_or("fields.summary is required")?;
    if summary.is_empty() || summary.len() > 255 {
        return Err("fields.summary: 1 to 255 characters".into());
    }
    check_adf(&f["description"])?;
    let labels = f["labels"].as_array().ok_or("fields.labels is an array")?;
    if labels
        .iter()
        .any(|l| l.as_str().is_none_or(|l| l.is_empty() || l.contains(' ')))
    {
        return Err("fields.labels: a label cannot contain spaces".into());
    }
    st.next += 1;
    let id = (10000 + st.next).to_string();
    let key = format!("GOV-{}", st.next);
    st.issues.insert(
        key.clone(),
        Issue {
            key: key.clone(),
            fields: f.clone(),
            status: "To Do".into(),
            comments: vec![],
        },
    );
    let this = format!("https://acme.atlassian.net/rest/api/3/issue/{id}");
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "key": key, "self": this})),
    )
        .into_response())
}

/// An ADF document as Jira accepts it: `doc` version 1 of known nodes, no empty text.
pub fn check_adf(v: &Value) -> Result<(), String> {
    if v["type"] != "doc" || v["version"] != 1 {
        return Err("ADF: the root is {type: doc, version: 1}".into());
    }
    v["content"]
        .as_array()
        .ok_or("ADF: doc.content is an array")?
        .iter()
        .try_for_each(node)
}

fn node(v: &Value) -> Result<(), String> {
    let kids = || v["content"].as_array().cloned().unwrap_or_default();
    match v["type"].as_str().unwrap_or_default() {
        "text" => {
            let t = v["text"].as_str().ok_or("ADF: text.text is a string")?;
            if t.is_empty() {
                return Err("ADF: a text node cannot be empty".into());
            }
            for m in v["marks"].as_array().into_iter().flatten() {
                if m["type"] != "link" || !m["attrs"]["href"].is_string() {
                    return Err("ADF: a link mark has attrs.href".into());
                }
            }
            Ok(())
        }
        "paragraph" | "listItem" => kids().iter().try_for_each(node),
        "heading" => {
            let l = v["attrs"]["level"].as_u64().unwrap_or(0);
            if !(1..=6).contains(&l) {
                return Err("ADF: heading.attrs.level is 1-6".into());
            }
            kids().iter().try_for_each(node)
        }
        "bulletList" => {
            if kids().iter().any(|k| k["type"] != "listItem") {
                return Err("ADF: a bulletList holds listItems".into());
            }
            kids().iter().try_for_each(node)
        }
        other => Err(format!("ADF: unexpected node {other}")),
    }
}

/// The text of an ADF document, its text nodes joined.
pub fn text_of(v: &Value) -> String {
    let mut out = String::new();
    if let Some(t) = v["text"].as_str() {
        out.push_str(t);
    }
    for c in v["content"].as_array().into_iter().flatten() {
        out.push_str(&text_of(c));
    }
    out
}

/// Every link in an ADF document.
pub fn links_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["marks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["attrs"]["href"].as_str().map(str::to_owned))
        .collect();
    for c in v["content"].as_array().into_iter().flatten() {
        out.extend(links_of(c));
    }
    out
}
