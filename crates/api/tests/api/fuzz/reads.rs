//! The reads the property test breaks: each endpoint with the query parameters of a valid
//! request, how each parameter is typed, and values certainly wrong for each type.

use proptest::prelude::*;
use proptest::sample::select;

use super::cases::bad_name;

/// The reads and their query parameters, with what makes each one invalid.
#[derive(Debug, Clone, Copy)]
pub enum Param {
    Int,
    HexCursor,
    Enum,
    Time,
    Name,
}

pub struct Endpoint {
    pub who: &'static str,
    pub path: &'static str,
    /// The parameters of the valid request.
    pub base: &'static [(&'static str, &'static str)],
    pub params: &'static [(&'static str, Param)],
}

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        who: "dev",
        path: "/v1/models",
        base: &[],
        params: &[
            ("limit", Param::Int),
            ("cursor", Param::HexCursor),
            ("stage", Param::Enum),
            ("tier", Param::Enum),
        ],
    },
    Endpoint {
        who: "tech",
        path: "/v1/reviews",
        base: &[],
        params: &[
            ("status", Param::Enum),
            ("limit", Param::Int),
            ("cursor", Param::HexCursor),
        ],
    },
    Endpoint {
        who: "aud",
        path: "/v1/audit",
        base: &[],
        params: &[
            ("after", Param::Int),
            ("cursor", Param::Int),
            ("limit", Param::Int),
            ("model", Param::Name),
        ],
    },
    Endpoint {
        who: "ops",
        path: "/v1/incidents",
        base: &[],
        params: &[
            ("model", Param::Name),
            ("limit", Param::Int),
            ("cursor", Param::HexCursor),
        ],
    },
    Endpoint {
        who: "dev",
        path: "/v1/models/fuzz-model/versions/1/gate",
        base: &[("environment", "staging")],
        params: &[("environment", Param::Enum)],
    },
    Endpoint {
        who: "dev",
        path: "/v1/models/fuzz-model/production",
        base: &[],
        params: &[("at", Param::Time)],
    },
    Endpoint {
        who: "aud",
        path: "/v1/audit/consistency",
        base: &[("first", "1")],
        params: &[("first", Param::Int), ("second", Param::Int)],
    },
];

pub fn bad_param(p: Param) -> BoxedStrategy<String> {
    match p {
        Param::Int => prop_oneof![
            "-[1-9][0-9]{0,4}",
            "[0-9]{1,3}\\.[0-9]{1,3}",
            "[a-z]{1,8}",
            "[1-9][0-9]{20,30}",
            "0x[0-9a-f]{1,4}",
            " [0-9]",
            "1e[0-9]",
            Just("%FF".to_owned()),
        ]
        .boxed(),
        Param::HexCursor => prop_oneof![
            "[g-z]{1,10}",
            "[0-9a-f]([0-9a-f]{2}){0,4}",
            select(vec!["ff", "c328", "%FF", "6g"]).prop_map(str::to_owned),
        ]
        .boxed(),
        Param::Enum => "not-[a-z]{0,8}|[A-Z]{1,3}[0-9]{1,3}".boxed(),
        Param::Time => prop_oneof![
            "[a-z]{1,10}",
            "20[0-9]{2}-1[3-9]-01T00:00:00Z",
            "[0-9]{1,10}",
        ]
        .boxed(),
        Param::Name => bad_name().boxed(),
    }
}
