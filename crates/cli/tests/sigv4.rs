//! The client's SigV4 signing (`steward::client::sigv4::sign_headers`, the function every
//! signed request goes through) against the AWS Signature Version 4 test suite: the requests,
//! credentials, time and reference signatures below are the suite's own (as shipped in the
//! `aws-sigv4` crate's `aws-signing-test-suite/v4`), service `service`, region `us-east-1`,
//! 2015-08-30T12:36:00Z.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use steward::client::sigv4::sign_headers;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// 2015-08-30T12:36:00Z
fn suite_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

struct Vector {
    name: &'static str,
    request: &'static str,
    session_token: Option<&'static str>,
    signature: &'static str,
}

struct Parsed {
    method: String,
    url: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A request of the suite (`METHOD TARGET HTTP/1.1`, `Name:value` lines, a blank line, the
/// body) as the client holds one: the host in the URL, the other headers in a map.
fn parse(request: &str) -> Parsed {
    let (head, body) = request.split_once("\n\n").unwrap_or((request, ""));
    let mut lines = head.lines();
    let first = lines.next().unwrap();
    let (method, rest) = first.split_once(' ').unwrap();
    let target = rest.strip_suffix(" HTTP/1.1").unwrap();
    let mut host = String::new();
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("host") {
            host = value.to_owned();
        } else {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
    }
    Parsed {
        method: method.to_owned(),
        url: format!("https://{host}{target}"),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn signed(v: &Vector, body: Option<&[u8]>) -> Vec<(HeaderName, HeaderValue)> {
    let p = parse(v.request);
    let credentials = Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        v.session_token.map(str::to_owned),
        None,
        "test-suite",
    );
    sign_headers(
        &p.method,
        &p.url,
        &p.headers,
        body.unwrap_or(&p.body),
        &credentials,
        "us-east-1",
        "service",
        suite_time(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", v.name))
}

fn header<'a>(added: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a HeaderValue> {
    added.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn signature_of(added: &[(HeaderName, HeaderValue)]) -> String {
    let auth = header(added, "authorization").unwrap().to_str().unwrap();
    auth.rsplit_once("Signature=").unwrap().1.to_owned()
}

#[test]
fn the_client_signs_every_reference_request_as_the_aws_test_suite_does() {
    for v in VECTORS {
        assert_eq!(signature_of(&signed(v, None)), v.signature, "{}", v.name);
    }
}

#[test]
fn get_vanilla_gets_the_reference_authorization_header_and_date() {
    let added = signed(&VECTORS[0], None);
    assert_eq!(
        header(&added, "authorization").unwrap(),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    assert_eq!(header(&added, "x-amz-date").unwrap(), "20150830T123600Z");
    assert!(header(&added, "x-amz-security-token").is_none());
}

#[test]
fn a_session_token_is_sent_signed_and_every_credential_header_is_sensitive() {
    let v = VECTORS
        .iter()
        .find(|v| v.name == "get-vanilla-with-session-token")
        .unwrap();
    let added = signed(v, None);
    let token = header(&added, "x-amz-security-token").unwrap();
    assert_eq!(token, v.session_token.unwrap());
    assert!(token.is_sensitive());
    let auth = header(&added, "authorization").unwrap();
    assert!(auth.is_sensitive());
    assert!(auth
        .to_str()
        .unwrap()
        .contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"));
    // Neither the secret key nor the token shows when the headers are debug-printed.
    let shown = format!("{added:?}");
    assert!(!shown.contains(SECRET_KEY) && !shown.contains(v.session_token.unwrap()));
}

#[test]
fn the_body_is_part_of_the_signature() {
    let v = VECTORS.iter().find(|v| v.name == "post-vanilla").unwrap();
    let empty = signature_of(&signed(v, None));
    let with_body = signature_of(&signed(v, Some(b"{\"reason\":\"x\"}")));
    let other_body = signature_of(&signed(v, Some(b"{\"reason\":\"y\"}")));
    assert_eq!(empty, v.signature);
    assert_ne!(with_body, empty);
    assert_ne!(with_body, other_body);
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        request: "GET / HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-vanilla-query",
        request: "GET / HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        request: "GET /?Param2=value2&Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Vector {
        name: "get-vanilla-query-unreserved",
        request: "GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    },
    Vector {
        name: "get-vanilla-empty-query-key",
        request: "GET /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    },
    Vector {
        name: "get-unreserved",
        request: "GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
    Vector {
        name: "get-slash-normalized",
        request: "GET // HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-slashes-normalized",
        request: "GET //example// HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    },
    Vector {
        name: "get-relative-normalized",
        request: "GET /example/.. HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-relative-relative-normalized",
        request: "GET /example1/example2/../.. HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-slash-dot-slash-normalized",
        request: "GET /./ HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-slash-pointless-dot-normalized",
        request: "GET /./example HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
    },
    Vector {
        name: "get-header-key-duplicate",
        request: "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value2\nMy-Header1:value2\nMy-Header1:value1\n",
        session_token: None,
        signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    },
    Vector {
        name: "get-header-value-order",
        request: "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value4\nMy-Header1:value1\nMy-Header1:value3\nMy-Header1:value2\n",
        session_token: None,
        signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    },
    Vector {
        name: "get-header-value-trim",
        request: "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1: value1\nMy-Header2: \"a   b   c\"\n",
        session_token: None,
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Vector {
        name: "get-vanilla-with-session-token",
        request: "GET / HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
        signature: "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    },
    Vector {
        name: "post-vanilla",
        request: "POST / HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    Vector {
        name: "post-vanilla-query",
        request: "POST /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    },
    Vector {
        name: "post-vanilla-empty-query-value",
        request: "POST /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    },
    Vector {
        name: "post-header-key-case",
        request: "POST / HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: None,
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    Vector {
        name: "post-header-key-sort",
        request: "POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value1\n",
        session_token: None,
        signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    },
    Vector {
        name: "post-header-value-case",
        request: "POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:VALUE1\n",
        session_token: None,
        signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    },
    Vector {
        name: "post-sts-header-before",
        request: "POST / HTTP/1.1\nHost:example.amazonaws.com\n",
        session_token: Some("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="),
        signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    },
];
