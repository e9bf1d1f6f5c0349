//! Property test of the HTTP surface: valid requests (registration, card revision, evaluation,
//! review decision, deployment, promotion, roles, signal, and the query strings of the reads)
//! mutated into invalid ones — wrong JSON types, deeper nesting, huge values, broken bytes,
//! missing required or unknown fields, bad path segments, query parameters and headers. Every
//! one is answered with a 4xx in the contract's error shape and writes nothing; the untouched
//! templates, sent last, are accepted, so the refusals are the mutations' doing.

mod cases;
mod reads;

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::{ensure, Context, Result};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reqwest::header::HeaderValue;
use serde_json::{json, Value};
use steward_core::types::RiskTier;

use crate::common::*;
use cases::*;
use reads::*;

/// Cases per run: a few seconds on the embedded backend.
const CASES: u32 = 300;

/// Byte-level damage to a valid JSON body.
#[derive(Debug, Clone)]
enum Damage {
    /// Bytes that are not UTF-8, inside the first key.
    InvalidUtf8(&'static [u8]),
    /// A raw control character inside the first key.
    ControlChar(u8),
    /// An escaped lone surrogate inside the first key.
    LoneSurrogate(&'static str),
    /// The whole body as UTF-16.
    Utf16 {
        big_endian: bool,
    },
    /// A strict prefix of the body.
    Truncated(Index),
    Trailing(String),
}

#[derive(Debug, Clone)]
enum Mutation {
    /// A field set to a value its kind never accepts.
    Retype(Index, Junk),
    /// A required field left out.
    Drop(Index),
    /// An unknown field in a strict object.
    Unknown(Index, String, Value),
    /// A field wrapped in an array or an object.
    Wrap(Index, bool),
    /// A field nested this many arrays deep (past serde_json's recursion limit at > 127).
    Nest(Index, usize),
    /// A field replaced by a huge string or array of the wrong type.
    Huge(Index, usize),
    Damage(Damage),
    /// A body that is not declared as JSON.
    MediaType(Option<&'static str>),
}

#[derive(Debug, Clone)]
enum Case {
    Body(Index, Mutation),
    /// A template's name, version or review id replaced by a bad one.
    Path(Index, Index, String, String, String),
    /// A template's header set to a value it refuses: bytes that are not visible ASCII, or
    /// (for `If-Match`) text that is no revision number.
    Header(Index, Vec<u8>, Option<String>),
    /// A read with one parameter set to a bad value.
    Query(usize, Index, String),
    /// A read without its required parameter.
    Missing(bool),
    /// Both `after` and `cursor` on the audit log, disagreeing.
    AfterAndCursor(u64, u64),
    Proof(String),
}

fn damage() -> impl Strategy<Value = Damage> {
    let invalid: Vec<&'static [u8]> = vec![
        &[0xFF],
        &[0x80],
        &[0xC3],
        &[0xC0, 0xAF],
        &[0xED, 0xA0, 0x80],
        &[0xF8, 0x88, 0x80, 0x80, 0x80],
    ];
    prop_oneof![
        select(invalid).prop_map(Damage::InvalidUtf8),
        (0u8..0x20).prop_map(Damage::ControlChar),
        select(vec!["\\ud800", "\\udfff", "\\ud83d\\u0041"]).prop_map(Damage::LoneSurrogate),
        any::<bool>().prop_map(|big_endian| Damage::Utf16 { big_endian }),
        any::<Index>().prop_map(Damage::Truncated),
        "[a-z{}\\[\\],:\"]{1,5}".prop_map(Damage::Trailing),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let media = select(vec![
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonp"),
        Some("application/xml"),
        Some("json"),
        Some(""),
    ]);
    prop_oneof![
        4 => (any::<Index>(), junk()).prop_map(|(f, j)| Mutation::Retype(f, j)),
        2 => any::<Index>().prop_map(Mutation::Drop),
        2 => (any::<Index>(), "x_[a-z]{1,8}", any_json())
            .prop_map(|(o, k, v)| Mutation::Unknown(o, k, v)),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(f, a)| Mutation::Wrap(f, a)),
        1 => (any::<Index>(), 2usize..300).prop_map(|(f, d)| Mutation::Nest(f, d)),
        1 => (any::<Index>(), 10_000usize..600_000).prop_map(|(f, n)| Mutation::Huge(f, n)),
        2 => damage().prop_map(Mutation::Damage),
        1 => media.prop_map(Mutation::MediaType),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let endpoint_param = (0..ENDPOINTS.len(), any::<Index>()).prop_flat_map(|(e, p)| {
        let params = ENDPOINTS[e].params;
        let (_, kind) = params[p.index(params.len())];
        (Just(e), Just(p), bad_param(kind))
    });
    let header = (
        prop::collection::vec(0x80u8..=0xFF, 1..6),
        prop::option::of("[a-z*]{1,6}|W/\"[a-z]{1,4}\"|\"-[0-9]{1,3}\""),
    );
    prop_oneof![
        12 => (any::<Index>(), mutation()).prop_map(|(t, m)| Case::Body(t, m)),
        3 => (any::<Index>(), any::<Index>(), bad_name(), bad_version(), "[a-z0-9-]{1,40}|%FF")
            .prop_map(|(t, s, n, v, r)| Case::Path(t, s, n, v, r)),
        1 => (any::<Index>(), header).prop_map(|(t, (obs, text))| Case::Header(t, obs, text)),
        4 => endpoint_param.prop_map(|(e, p, v)| Case::Query(e, p, v)),
        1 => any::<bool>().prop_map(Case::Missing),
        1 => (0u64..50, 51u64..100).prop_map(|(a, c)| Case::AfterAndCursor(a, c)),
        1 => prop_oneof!["[a-z]{1,6}", "-[0-9]{1,3}", "[1-9][0-9]{6,25}", Just("%FF".to_owned())]
            .prop_map(Case::Proof),
    ]
}

// ---------------------------------------------------------------------------------- requests

/// What the fixture created for templates to act on.
struct Fixture {
    review: String,
}

/// A request to send: method, path and query, caller, body bytes with their media type, and
/// an extra header.
struct Request {
    method: reqwest::Method,
    path: String,
    who: &'static str,
    body: Option<(Vec<u8>, Option<&'static str>)>,
    header: Option<(&'static str, Vec<u8>)>,
}

fn path_of(t: &Template, f: &Fixture, bad: Option<(usize, &str)>) -> String {
    let mut path = String::new();
    let mut placeholder = 0;
    for seg in &t.path {
        let good = match seg {
            Seg::Lit(s) => {
                path.push('/');
                path.push_str(s);
                continue;
            }
            Seg::Name => "fuzz-model",
            Seg::Version => "1",
            Seg::Review => &f.review,
        };
        path.push('/');
        match bad {
            Some((i, value)) if i == placeholder => path.push_str(value),
            _ => path.push_str(good),
        }
        placeholder += 1;
    }
    path
}

fn template_request(
    t: &Template,
    f: &Fixture,
    body: Vec<u8>,
    media: Option<&'static str>,
) -> Request {
    Request {
        method: t.method.clone(),
        path: path_of(t, f, None),
        who: t.who,
        body: Some((body, media)),
        header: None,
    }
}

/// Sets the field at `ptr`, adding it to its object when the template leaves it out (an
/// optional field).
fn set(body: &mut Value, ptr: &str, value: Value) {
    if let Some(slot) = body.pointer_mut(ptr) {
        *slot = value;
        return;
    }
    let (parent, key) = ptr.rsplit_once('/').unwrap();
    let object = body.pointer_mut(parent).and_then(Value::as_object_mut);
    object
        .unwrap_or_else(|| panic!("no object for {ptr:?} in the template"))
        .insert(key.to_owned(), value);
}

/// The field's value, or for an optional field the template leaves out a string (which no
/// optional field of the templates accepts once wrapped).
fn current(body: &Value, ptr: &str) -> Value {
    body.pointer(ptr).cloned().unwrap_or_else(|| json!("x"))
}

fn damaged(mut bytes: Vec<u8>, d: &Damage) -> Vec<u8> {
    // Every template body starts with `{"`: position 2 lies inside the first key.
    match d {
        Damage::InvalidUtf8(b) => drop(bytes.splice(2..2, b.iter().copied())),
        Damage::ControlChar(c) => bytes.insert(2, *c),
        Damage::LoneSurrogate(s) => drop(bytes.splice(2..2, s.bytes())),
        Damage::Utf16 { big_endian } => {
            let text = String::from_utf8(bytes).unwrap();
            return text
                .encode_utf16()
                .flat_map(|u| {
                    if *big_endian {
                        u.to_be_bytes()
                    } else {
                        u.to_le_bytes()
                    }
                })
                .collect();
        }
        Damage::Truncated(i) => bytes.truncate(i.index(bytes.len())),
        Damage::Trailing(s) => bytes.extend_from_slice(s.as_bytes()),
    }
    bytes
}

fn mutated_body(t: &Template, m: &Mutation) -> (Vec<u8>, Option<&'static str>) {
    let json = Some("application/json");
    let mut body = t.body.clone();
    let pick = |i: &Index, fields: &[&Field]| fields[i.index(fields.len())].clone();
    let all: Vec<&Field> = t.fields.iter().collect();
    match m {
        Mutation::Retype(i, junk) => {
            let f = pick(i, &all);
            set(&mut body, &f.ptr, junk.wrong_for(f.kind, f.required));
        }
        Mutation::Drop(i) => {
            let required: Vec<&Field> = all
                .iter()
                .copied()
                .filter(|f| f.required && !f.ptr.is_empty())
                .collect();
            let f = pick(i, &required);
            let (parent, key) = f.ptr.rsplit_once('/').unwrap();
            let removed = body
                .pointer_mut(parent)
                .and_then(|p| p.as_object_mut()?.remove(key));
            assert!(removed.is_some(), "no field {:?} to drop", f.ptr);
        }
        Mutation::Unknown(i, key, value) => {
            let ptr = &t.strict[i.index(t.strict.len())];
            let object = body.pointer_mut(ptr).and_then(Value::as_object_mut);
            object
                .expect("a strict object")
                .insert(key.clone(), value.clone());
        }
        Mutation::Wrap(i, in_array) => {
            let f = pick(i, &all);
            let v = current(&body, &f.ptr);
            set(
                &mut body,
                &f.ptr,
                if *in_array {
                    json!([v])
                } else {
                    json!({"x_wrapped": v})
                },
            );
        }
        Mutation::Nest(i, depth) => {
            let f = pick(i, &all);
            let mut v = current(&body, &f.ptr);
            for _ in 0..*depth {
                v = json!([v]);
            }
            set(&mut body, &f.ptr, v);
        }
        Mutation::Huge(i, n) => {
            let f = pick(i, &all);
            let huge = match f.kind {
                Kind::Text
                | Kind::TextList
                | Kind::EnumList
                | Kind::Obj
                | Kind::List
                | Kind::Map => {
                    json!(vec![7; *n])
                }
                _ => json!("a".repeat(*n)),
            };
            set(&mut body, &f.ptr, huge);
        }
        Mutation::Damage(d) => return (damaged(serde_json::to_vec(&body).unwrap(), d), json),
        Mutation::MediaType(media) => return (serde_json::to_vec(&body).unwrap(), *media),
    }
    (serde_json::to_vec(&body).unwrap(), json)
}

fn query(e: &Endpoint, set: Option<(&str, &str)>, without: Option<&str>) -> String {
    let mut pairs: Vec<(&str, &str)> = e.base.to_vec();
    if let Some((k, v)) = set {
        pairs.retain(|(name, _)| *name != k);
        pairs.push((k, v));
    }
    pairs.retain(|(name, _)| Some(*name) != without);
    let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}?{}", e.path, q.join("&"))
}

fn get(who: &'static str, path: String) -> Request {
    Request {
        method: reqwest::Method::GET,
        path,
        who,
        body: None,
        header: None,
    }
}

fn request(case: &Case, templates: &[Template], f: &Fixture) -> Request {
    let choose = |i: &Index, ts: Vec<&Template>| ts[i.index(ts.len())].clone();
    match case {
        Case::Body(t, m) => {
            let t = choose(t, templates.iter().collect());
            let (body, media) = mutated_body(&t, m);
            template_request(&t, f, body, media)
        }
        Case::Path(t, s, name, version, review) => {
            let with_params = templates
                .iter()
                .filter(|t| t.path.iter().any(|s| !matches!(s, Seg::Lit(_))))
                .collect();
            let t = choose(t, with_params);
            let placeholders: Vec<&str> = t
                .path
                .iter()
                .filter_map(|s| match s {
                    Seg::Lit(_) => None,
                    Seg::Name => Some(name.as_str()),
                    Seg::Version => Some(version.as_str()),
                    Seg::Review => Some(review.as_str()),
                })
                .collect();
            let i = s.index(placeholders.len());
            let mut r = template_request(
                &t,
                f,
                serde_json::to_vec(&t.body).unwrap(),
                Some("application/json"),
            );
            r.path = path_of(&t, f, Some((i, placeholders[i])));
            r
        }
        Case::Header(t, obs, text) => {
            let t = choose(t, templates.iter().filter(|t| t.header.is_some()).collect());
            let name = t.header.unwrap();
            // Any visible-ASCII text is a valid idempotency key.
            let value = match text {
                Some(text) if name == "If-Match" => text.clone().into_bytes(),
                _ => obs.clone(),
            };
            let mut r = template_request(
                &t,
                f,
                serde_json::to_vec(&t.body).unwrap(),
                Some("application/json"),
            );
            r.header = Some((name, value));
            r
        }
        Case::Query(e, p, value) => {
            let e = &ENDPOINTS[*e];
            let (name, _) = e.params[p.index(e.params.len())];
            get(e.who, query(e, Some((name, value)), None))
        }
        Case::Missing(gate) => {
            let e = &ENDPOINTS[if *gate { 4 } else { 6 }];
            get(e.who, query(e, None, Some(e.base[0].0)))
        }
        Case::AfterAndCursor(after, cursor) => {
            get("aud", format!("/v1/audit?after={after}&cursor={cursor}"))
        }
        Case::Proof(seq) => get("aud", format!("/v1/audit/proof/{seq}")),
    }
}

async fn send(app: &App, r: &Request) -> Result<Resp> {
    let mut b = app
        .client
        .request(r.method.clone(), app.url(&r.path))
        .bearer_auth(token(r.who));
    if let Some((bytes, media)) = &r.body {
        b = b.body(bytes.clone());
        if let Some(m) = media {
            b = b.header("content-type", *m);
        }
    }
    if let Some((name, value)) = &r.header {
        b = b.header(*name, HeaderValue::from_bytes(value)?);
    }
    let answer = b
        .send()
        .await
        .with_context(|| format!("{} {}", r.method, r.path))?;
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await?;
    let body = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{status} body is not JSON: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// One case: a 4xx in the error shape, and the registry as it was.
async fn refused(app: &App, r: &Request) -> Result<u16> {
    let before = app.snapshot().await?;
    let answer = send(app, r).await?;
    let what = format!("{} {} as {}", r.method, r.path, r.who);
    ensure!(
        (400..500).contains(&answer.status),
        "{what}: expected a 4xx, got {}: {}",
        answer.status,
        answer.body
    );
    assert_error_shape(&answer).with_context(|| what.clone())?;
    ensure!(
        app.snapshot().await? == before,
        "{what}: a refused request wrote"
    );
    Ok(answer.status)
}

async fn fixture(app: &App) -> Result<Fixture> {
    app.register("fuzz-model", RiskTier::Low).await?;
    let p = app.promote_as("dev", "fuzz-model", 1, "staging").await?;
    Ok(Fixture {
        review: review_id(&p, "technical")?.to_owned(),
    })
}

/// The untouched templates and reads, in an order where each is valid: every one is
/// accepted, and each write moves the audit log on.
async fn controls(app: &App, templates: &[Template], f: &Fixture) -> Result<()> {
    let expected = [
        ("registration", 201),
        ("card revision", 200),
        ("evaluation", 201),
        ("review decision", 200),
        ("deployment", 201),
        ("promotion", 202),
        ("roles", 200),
        ("signal", 200),
    ];
    ensure!(
        expected.len() == templates.len(),
        "a template without a control"
    );
    for (label, status) in expected {
        let t = templates.iter().find(|t| t.label == label).context(label)?;
        let before = app.audit_size().await?;
        let body = serde_json::to_vec(&t.body)?;
        let r = send(app, &template_request(t, f, body, Some("application/json"))).await?;
        ensure!(r.status == status, "{label}: {} {}", r.status, r.body);
        ensure!(
            app.audit_size().await? > before,
            "{label} wrote no audit event"
        );
    }
    for e in ENDPOINTS {
        let r = send(app, &get(e.who, query(e, None, None))).await?;
        ensure!(r.status == 200, "{}: {} {}", e.path, r.status, r.body);
    }
    Ok(())
}

#[test]
fn mutated_requests_are_refused_with_a_json_4xx_and_write_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(spawn_app()).unwrap();
    let f = rt.block_on(fixture(&app)).unwrap();
    let templates = templates();
    let config = Config {
        failure_persistence: None,
        ..Config::with_cases(CASES)
    };
    // A fixed seed, so a run is reproducible and CI does not flake; `FUZZ_SEED=<u64>` explores
    // other inputs locally.
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed.to_le_bytes().repeat(4));
    let mut runner = TestRunner::new_with_rng(config, rng);
    let statuses = Mutex::new(BTreeMap::<u16, usize>::new());
    let outcome = runner.run(&case(), |case| {
        let r = request(&case, &templates, &f);
        let status = rt
            .block_on(refused(&app, &r))
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        *statuses.lock().unwrap().entry(status).or_default() += 1;
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    eprintln!("refusals by status: {:?}", statuses.lock().unwrap());
    rt.block_on(controls(&app, &templates, &f)).unwrap();
}
