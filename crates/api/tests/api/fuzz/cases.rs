//! What the property test sends: valid request templates, the typed fields of their bodies,
//! and the mutations that make them invalid by construction (a wrong JSON type, a wrong
//! string where a format is fixed, a missing required field, an unknown field in a strict
//! object, deeper nesting, huge values, broken bytes, a wrong media type, a bad path segment,
//! query parameter or header).

use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Map, Value};
use steward_core::types::RiskTier;

use crate::common::{manifest, staging_evaluation};

/// How a body field is typed, which decides the values that are certainly wrong for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Free text.
    Text,
    /// A string from a fixed set (tier, target, decision, environment, kind).
    Enum,
    /// A model name.
    Name,
    Digest,
    Date,
    /// A non-negative integer.
    Uint,
    Float,
    TextList,
    /// A list of strings from a fixed set (roles).
    EnumList,
    /// A struct that refuses unknown fields.
    Obj,
    /// A list of structs.
    List,
    /// A map from names to numbers (metrics).
    Map,
}

/// A field of a template body, by JSON pointer; `required` fields may be dropped and nulled.
#[derive(Debug, Clone)]
pub struct Field {
    pub ptr: String,
    pub kind: Kind,
    pub required: bool,
}

/// A path segment of a template.
#[derive(Debug, Clone, Copy)]
pub enum Seg {
    Lit(&'static str),
    Name,
    Version,
    Review,
}

/// A valid request: who sends it where, its body, and its body's schema.
#[derive(Debug, Clone)]
pub struct Template {
    pub label: &'static str,
    pub method: reqwest::Method,
    pub who: &'static str,
    pub path: Vec<Seg>,
    pub body: Value,
    pub fields: Vec<Field>,
    /// The objects (by pointer) that refuse unknown fields.
    pub strict: Vec<String>,
    /// A header the route reads, with values that are certainly wrong for it.
    pub header: Option<&'static str>,
}

fn field(ptr: &str, kind: Kind) -> Field {
    Field {
        ptr: ptr.to_owned(),
        kind,
        required: true,
    }
}

fn optional(ptr: &str, kind: Kind) -> Field {
    Field {
        required: false,
        ..field(ptr, kind)
    }
}

/// The model card's fields and strict objects under `at` ("" for a card body, "/card" in a
/// manifest).
fn card_schema(at: &str, fields: &mut Vec<Field>, strict: &mut Vec<String>) {
    use Kind::*;
    for (ptr, kind) in [
        ("", Obj),
        ("/overview", Text),
        ("/intended_use", Obj),
        ("/intended_use/purpose", Text),
        ("/intended_use/users", TextList),
        ("/intended_use/out_of_scope", TextList),
        ("/training_data", Obj),
        ("/training_data/sources", TextList),
        ("/training_data/period", Obj),
        ("/training_data/period/from", Date),
        ("/training_data/period/to", Date),
        ("/evaluation", Obj),
        ("/evaluation/summary", Text),
        ("/evaluation/evaluations", TextList),
        ("/fairness", Obj),
        ("/fairness/groups", List),
        ("/fairness/groups/0/group", Text),
        ("/fairness/groups/0/metrics", Map),
        // The group's only metric: a group without metrics is no fairness analysis.
        ("/fairness/groups/0/metrics/auc", Float),
        ("/fairness/known_disparities", TextList),
        ("/limitations", TextList),
        ("/operational", Obj),
        ("/operational/compute", Text),
        ("/operational/latency_ms_p99", Float),
        ("/operational/monitoring", Obj),
        ("/operational/monitoring/quality/0/metric", Text),
        ("/operational/monitoring/quality/0/min", Float),
        ("/operational/monitoring/drift/0/metric", Text),
        ("/operational/monitoring/drift/0/max", Float),
        ("/rollback", Obj),
        ("/rollback/procedure", Text),
    ] {
        fields.push(field(&format!("{at}{ptr}"), kind));
    }
    fields.push(optional(&format!("{at}/rollback/last_tested"), Date));
    for ptr in [
        "",
        "/intended_use",
        "/training_data",
        "/training_data/period",
        "/evaluation",
        "/fairness",
        "/fairness/groups/0",
        "/operational",
        "/operational/monitoring",
        "/operational/monitoring/quality/0",
        "/operational/monitoring/drift/0",
        "/rollback",
    ] {
        strict.push(format!("{at}{ptr}"));
    }
}

fn registration() -> Template {
    use Kind::*;
    let mut fields: Vec<Field> = [
        ("", Obj),
        ("/owner", Obj),
        ("/owner/team", Text),
        ("/owner/contact", Text),
        ("/risk_tier", Enum),
        ("/description", Text),
        ("/artifact", Obj),
        ("/artifact/uri", Text),
        ("/artifact/sha256", Digest),
        ("/artifact/size_bytes", Uint),
        ("/lineage", Obj),
        ("/lineage/code", Obj),
        ("/lineage/code/repository", Text),
        ("/lineage/code/commit", Text),
        ("/lineage/training_data", List),
        ("/lineage/training_data/0/uri", Text),
        ("/lineage/training_data/0/sha256", Digest),
        ("/lineage/training_data/0/period", Obj),
        ("/lineage/training_data/0/period/from", Date),
        ("/lineage/training_data/0/period/to", Date),
        ("/evaluations", List),
        ("/evaluations/0/name", Text),
        ("/evaluations/0/dataset", Obj),
        ("/evaluations/0/dataset/uri", Text),
        ("/evaluations/0/dataset/sha256", Digest),
        ("/evaluations/0/metrics", Map),
        ("/evaluations/0/slices/0/group", Text),
        ("/evaluations/0/slices/0/metrics", Map),
    ]
    .into_iter()
    .map(|(p, k)| field(p, k))
    .collect();
    fields.extend([
        // Other metrics remain without it.
        optional("/evaluations/0/metrics/auc", Float),
        optional("/lineage/training_job", Text),
        optional("/lineage/parent_version", Uint),
        optional("/evaluations/0/slices", List),
    ]);
    let mut strict: Vec<String> = [
        "",
        "/owner",
        "/artifact",
        "/lineage",
        "/lineage/code",
        "/lineage/training_data/0",
        "/lineage/training_data/0/period",
        "/evaluations/0",
        "/evaluations/0/dataset",
        "/evaluations/0/slices/0",
    ]
    .map(str::to_owned)
    .to_vec();
    card_schema("/card", &mut fields, &mut strict);
    Template {
        label: "registration",
        method: reqwest::Method::POST,
        who: "dev",
        path: vec![Seg::Lit("v1/models"), Seg::Name, Seg::Lit("versions")],
        body: manifest(RiskTier::Low),
        fields,
        strict,
        header: Some("Idempotency-Key"),
    }
}

/// The version every template but registration acts on: `fuzz-model` v1.
fn on_version(suffix: &'static str) -> Vec<Seg> {
    vec![
        Seg::Lit("v1/models"),
        Seg::Name,
        Seg::Lit("versions"),
        Seg::Version,
        Seg::Lit(suffix),
    ]
}

/// A template whose body is a flat strict object.
fn flat(
    label: &'static str,
    who: &'static str,
    path: Vec<Seg>,
    body: Value,
    fields: Vec<Field>,
) -> Template {
    let mut fields = fields;
    fields.insert(0, field("", Kind::Obj));
    Template {
        label,
        method: reqwest::Method::POST,
        who,
        path,
        body,
        fields,
        strict: vec![String::new()],
        header: None,
    }
}

/// Every template. Each one, sent as it is, is a valid request (the property test's controls
/// check that) once the fixture's earlier controls ran.
pub fn templates() -> Vec<Template> {
    use Kind::*;
    let mut card_fields = Vec::new();
    let mut card_strict = Vec::new();
    card_schema("", &mut card_fields, &mut card_strict);
    let mut evaluation = flat(
        "evaluation",
        "dev",
        on_version("evaluations"),
        staging_evaluation(),
        vec![
            field("/name", Text),
            field("/dataset", Obj),
            field("/dataset/uri", Text),
            field("/dataset/sha256", Digest),
            field("/metrics", Map),
            // `accuracy` remains without it.
            optional("/metrics/auc", Float),
            optional("/environment", Enum),
        ],
    );
    evaluation.strict.push("/dataset".into());
    vec![
        registration(),
        Template {
            label: "card revision",
            method: reqwest::Method::PUT,
            who: "dev",
            path: on_version("card"),
            body: manifest(RiskTier::Low)["card"].clone(),
            fields: card_fields,
            strict: card_strict,
            header: Some("If-Match"),
        },
        evaluation,
        flat(
            "review decision",
            "tech",
            vec![Seg::Lit("v1/reviews"), Seg::Review, Seg::Lit("decision")],
            json!({"decision": "approve", "comment": "checked", "conditions": ["watch psi"]}),
            vec![
                field("/decision", Enum),
                optional("/comment", Text),
                optional("/conditions", TextList),
            ],
        ),
        flat(
            "deployment",
            "dev",
            on_version("deployments"),
            json!({"environment": "staging"}),
            vec![field("/environment", Enum), optional("/revision", Uint)],
        ),
        flat(
            "promotion",
            "dev",
            on_version("promotions"),
            json!({"target": "production"}),
            vec![field("/target", Enum), optional("/revision", Uint)],
        ),
        Template {
            method: reqwest::Method::PUT,
            ..flat(
                "roles",
                "admin",
                vec![Seg::Lit("v1/principals/dev2")],
                json!({"roles": ["developer"]}),
                vec![field("/roles", EnumList)],
            )
        },
        Template {
            header: Some("Idempotency-Key"),
            ..flat(
                "signal",
                "ops",
                vec![Seg::Lit("v1/signals")],
                json!({"model": "fuzz-model", "version": 1, "kind": "drift", "metric": "psi", "value": 0.1}),
                vec![
                    field("/model", Name),
                    field("/version", Uint),
                    field("/kind", Enum),
                    field("/metric", Text),
                    field("/value", Float),
                ],
            )
        },
    ]
}

/// Raw values of every JSON type, and wrong strings for each fixed format; a mutation picks
/// the ones that cannot be valid for the field's kind.
#[derive(Debug, Clone)]
pub struct Junk {
    pub pick: Index,
    pub b: bool,
    pub i: i64,
    pub f: f64,
    pub s: String,
    pub arr: Vec<Value>,
    pub obj: Map<String, Value>,
    pub bad_enum: String,
    pub bad_name: String,
    pub bad_digest: String,
    pub bad_date: String,
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Arr,
    Obj,
    BadStr,
    BadNum,
    BadElement,
}

impl Junk {
    /// A value that no field of `kind` accepts (`null` only for a required one).
    pub fn wrong_for(&self, kind: Kind, required: bool) -> Value {
        use Shape::*;
        let shapes: &[Shape] = match kind {
            Kind::Text => &[Null, Bool, Int, Float, Arr, Obj],
            Kind::Enum | Kind::Name | Kind::Digest | Kind::Date => {
                &[Null, Bool, Int, Float, Arr, Obj, BadStr, BadStr]
            }
            Kind::Uint => &[Null, Bool, Str, Arr, Obj, BadNum, BadNum],
            Kind::Float => &[Null, Bool, Str, Arr, Obj],
            Kind::TextList | Kind::EnumList => &[Null, Bool, Int, Float, Str, Obj, BadElement],
            Kind::Obj | Kind::Map => &[Null, Bool, Int, Float, Str, Arr],
            Kind::List => &[Null, Bool, Int, Float, Str, Obj],
        };
        let shapes: Vec<Shape> = shapes
            .iter()
            .copied()
            .filter(|s| required || !matches!(s, Null))
            .collect();
        match shapes[self.pick.index(shapes.len())] {
            Null => Value::Null,
            Bool => json!(self.b),
            Int => json!(self.i),
            Float => json!(self.f),
            Str => json!(self.s),
            Arr => Value::Array(self.arr.clone()),
            Obj => Value::Object(self.obj.clone()),
            BadStr => json!(self.bad_string(kind)),
            BadNum => match self.i.rem_euclid(3) {
                0 => json!(-1 - self.i.rem_euclid(1000)),
                1 => json!(self.i.rem_euclid(1000) as f64 + 0.5),
                _ => json!(1e20),
            },
            BadElement if kind == Kind::EnumList => json!(["developer", self.bad_enum]),
            BadElement => json!(["fine", self.i]),
        }
    }

    fn bad_string(&self, kind: Kind) -> &str {
        match kind {
            Kind::Name => &self.bad_name,
            Kind::Digest => &self.bad_digest,
            Kind::Date => &self.bad_date,
            _ => &self.bad_enum,
        }
    }
}

/// Any JSON value, a few levels deep.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-1e9..1e9f64).prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Model names the registry refuses: an upper-case letter, a leading hyphen, 64+ characters,
/// a character outside `[a-z0-9-]`, or percent-encoded bytes (valid UTF-8 or not).
pub fn bad_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{0,5}[A-Z][a-z0-9]{0,5}",
        "-[a-z0-9]{1,8}",
        "[a-z][a-z0-9]{63,100}",
        "[a-z]{1,4}[_~!$*@][a-z]{1,4}",
        select(vec![
            "%C3%A9t%C3%A9",
            "%FF%FE",
            "a%2Fb",
            "%00",
            "fuzz%20model"
        ])
        .prop_map(str::to_owned),
    ]
}

/// Version segments that are not an existing version: not a number, negative, fractional,
/// beyond `u32`, or a number no version has.
pub fn bad_version() -> impl Strategy<Value = String> {
    prop_oneof![
        "-[1-9][0-9]{0,3}",
        "[0-9]{1,3}\\.[0-9]{1,2}",
        "[a-z]{1,6}",
        "[1-9][0-9]{10,25}",
        (2u32..).prop_map(|v| v.to_string()),
        select(vec!["0", "4294967296", "%FF", "1%00", "0x1", "1e0"]).prop_map(str::to_owned),
    ]
}

fn bad_digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{0,63}",
        "[0-9a-f]{65,80}",
        "[0-9a-f]{0,30}[g-z][0-9a-f]{33}",
    ]
}

fn bad_date() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,10}",
        "20[0-9]{2}-1[3-9]-0[1-9]",
        "20[0-9]{2}/0[1-9]/1[0-9]",
        "20[0-9]{2}-02-3[01]",
    ]
}

pub fn junk() -> impl Strategy<Value = Junk> {
    (
        (any::<Index>(), any::<bool>(), any::<i64>(), -1e9..1e9f64),
        "[ -~]{0,16}",
        prop::collection::vec(any_json(), 0..4),
        prop::collection::btree_map("[a-z]{1,6}", any_json(), 0..4),
        "not-[a-z]{0,8}|[A-Z]{1,8}",
        bad_name(),
        bad_digest(),
        bad_date(),
    )
        .prop_map(
            |((pick, b, i, f), s, arr, obj, bad_enum, bad_name, bad_digest, bad_date)| Junk {
                pick,
                b,
                i,
                f,
                s,
                arr,
                obj: obj.into_iter().collect(),
                bad_enum,
                bad_name,
                bad_digest,
                bad_date,
            },
        )
}
