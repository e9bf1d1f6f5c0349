//! Domain values parsed once into types that cannot hold invalid values.
//!
//! Invariants: a `ModelName` matches `[a-z0-9][a-z0-9-]{0,62}`; a `Sha256` is exactly 32 bytes
//! (printed as 64 lowercase hex digits); a `PrincipalId` is non-empty, at most 256 characters
//! and has no control characters. None of them has a public constructor other than `parse`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::FieldError;

macro_rules! string_newtype_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_ref())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_ref())
            }
        }
    };
}

/// A model's unique name: `[a-z0-9][a-z0-9-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelName(String);

impl ModelName {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let b = s.as_bytes();
        let ok_first = b
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_rest = b.len() <= 63
            && b[1.min(b.len())..]
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
        if ok_first && ok_rest {
            Ok(Self(s.to_owned()))
        } else {
            Err(FieldError::new(
                "name",
                format!("{s:?} is not a model name: use 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"),
            ))
        }
    }
}
impl AsRef<str> for ModelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
string_newtype_serde!(ModelName);

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// Parses 64 hex digits (either case); the value is kept as bytes and printed lowercase.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let mut out = [0u8; 32];
        if s.len() != 64 || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(FieldError::new(
                "sha256",
                format!("{s:?} is not a SHA-256 digest: expected 64 hexadecimal digits"),
            ));
        }
        Ok(Self(out))
    }
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
    /// The SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(data).into())
    }
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}
impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}
impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}
impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Sha256::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// An authenticated principal: a local principal name or, on AWS, an IAM ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrincipalId(String);

impl PrincipalId {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
            return Err(FieldError::new(
                "principal",
                "a principal id is 1-256 characters without control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
    /// The identity the in-process workflow runner acts under (`system:workflow`).
    pub fn system(component: &str) -> Self {
        Self(format!("system:{component}"))
    }
    /// The identity policy decides automatic reviews under (`policy`).
    pub fn policy() -> Self {
        Self("policy".to_owned())
    }
    pub fn is_policy(&self) -> bool {
        self.0 == "policy"
    }
    /// Ids Steward acts under itself (`policy`, `system:*`): no principal may be granted
    /// roles under one, so nobody can act as policy or the workflow runner.
    pub fn is_reserved(&self) -> bool {
        self.is_policy() || self.0.starts_with("system:")
    }
}
impl AsRef<str> for PrincipalId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
string_newtype_serde!(PrincipalId);

/// Implements `as_str`, `Display`, `FromStr` and serde for a fieldless enum with fixed names.
macro_rules! named_enum {
    ($(#[$m:meta])* $t:ident, $field:literal, { $($v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $t { $($v),+ }
        impl $t {
            pub const ALL: &'static [$t] = &[$($t::$v),+];
            pub fn as_str(self) -> &'static str {
                match self { $($t::$v => $s),+ }
            }
            pub fn parse(s: &str) -> Result<Self, FieldError> {
                match s {
                    $($s => Ok($t::$v),)+
                    _ => Err(FieldError::new($field, format!(
                        "{s:?} is not one of: {}", [$($s),+].join(", ")))),
                }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $t {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, FieldError> { Self::parse(s) }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $t::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
            }
        }
    };
}

named_enum!(
    /// How much harm a model can do; decides which reviews a production promotion needs.
    RiskTier, "risk_tier", { Low => "low", Medium => "medium", High => "high" });
named_enum!(
    /// Where a version is in its lifecycle.
    Stage, "stage", {
    Development => "development", Staging => "staging", Production => "production", Retired => "retired" });
named_enum!(
    /// A deployment environment (a promotion target).
    Environment, "environment", { Staging => "staging", Production => "production" });
named_enum!(
    /// A review a promotion may need.
    ReviewStage, "stage", {
    Technical => "technical", Business => "business", Compliance => "compliance", Deployment => "deployment" });
named_enum!(
    /// What a principal may do.
    Role, "roles", {
    Developer => "developer",
    TechnicalReviewer => "technical-reviewer",
    BusinessReviewer => "business-reviewer",
    ComplianceReviewer => "compliance-reviewer",
    ReleaseManager => "release-manager",
    Operator => "operator",
    Auditor => "auditor",
    Admin => "admin",
    // CI/CD and platform jobs: report checks.
    Ci => "ci",
});
named_enum!(
    /// How a caller proved who it is: a bearer token of the principals file, an OpenID Connect
    /// token of the organisation's identity provider, a SigV4 signature (IAM), or Steward's own
    /// workflow runner. Recorded with every audit event a caller causes.
    AuthMethod, "authentication", {
    Token => "token",
    Oidc => "oidc",
    Iam => "iam",
    System => "system",
    // A vendor's signed callback (a Jira transition, say) acting for the principal mapped to
    // the vendor's account.
    Integration => "integration",
});
named_enum!(
    /// A reviewer's decision.
    Decision, "decision", { Approve => "approve", Reject => "reject" });
named_enum!(
    /// What a monitoring signal measures.
    SignalKind, "kind", { Drift => "drift", Quality => "quality" });

impl ReviewStage {
    /// The role that may decide reviews of this stage.
    pub fn reviewer_role(self) -> Role {
        match self {
            ReviewStage::Technical => Role::TechnicalReviewer,
            ReviewStage::Business => Role::BusinessReviewer,
            ReviewStage::Compliance => Role::ComplianceReviewer,
            ReviewStage::Deployment => Role::ReleaseManager,
        }
    }
}

impl Environment {
    /// The stage a version enters when deployed here.
    pub fn stage(self) -> Stage {
        match self {
            Environment::Staging => Stage::Staging,
            Environment::Production => Stage::Production,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn model_names_follow_the_documented_pattern() {
        for ok in ["a", "0", "credit-risk", "a-", &"a".repeat(63)] {
            assert!(ModelName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "A",
            "credit_risk",
            "crédit",
            "a b",
            &"a".repeat(64),
        ] {
            let err = ModelName::parse(bad).unwrap_err();
            assert_eq!(err.field, "name");
        }
    }

    #[test]
    fn a_sha256_needs_exactly_64_hex_digits_and_prints_lowercase() {
        let upper = "9F2C1A4BE5D6F7081929A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8";
        assert_eq!(Sha256::parse(upper).unwrap().to_hex(), upper.to_lowercase());
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65)] {
            assert!(Sha256::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn enums_reject_unknown_names_and_list_the_valid_ones() {
        let err = RiskTier::parse("critical").unwrap_err();
        assert_eq!(err.field, "risk_tier");
        assert!(err.message.contains("low, medium, high"));
        assert_eq!(
            Role::parse("release-manager").unwrap(),
            Role::ReleaseManager
        );
    }

    proptest! {
        #[test]
        fn any_parsed_model_name_round_trips_and_matches_the_pattern(s in "\\PC{0,70}") {
            if let Ok(n) = ModelName::parse(&s) {
                prop_assert_eq!(n.as_ref(), s.as_str());
                prop_assert!(s.len() <= 63);
                prop_assert!(s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
                prop_assert!(!s.starts_with('-'));
            }
        }
    }
}
