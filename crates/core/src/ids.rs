//! Identifiers that travel between the API, core and the stores, parsed once into types that
//! cannot hold an invalid value.
//!
//! Invariants:
//! - A [`VersionNumber`] is at least 1 (the registry numbers versions 1, 2, ...). Records,
//!   ports, events and the service hold nothing else; a number from outside (a path, a body,
//!   a row, a message) becomes one where it is read, and the next number is [`VersionNumber::next`].
//! - A [`PromotionId`] is `<name>.<version>.<unique>`: it names its version, so a decision
//!   reads the promotion and its version in one batch. A [`RetirementId`] has the same shape
//!   with a `rt-` unique part. A [`ReviewId`] is `<promotion id>-<stage>`.
//! - An [`IncidentId`] and the unique part of the ids above are non-empty, at most 128 bytes,
//!   of visible ASCII; an [`IdempotencyKey`] is 1-255 bytes of visible ASCII or spaces.
//! - Every type prints exactly the string it was parsed from, so the wire format of the
//!   contract is unchanged by them; serde reads and writes that string (a number for
//!   [`VersionNumber`]).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::FieldError;
use crate::types::{ModelName, ReviewStage};

/// The longest unique part of an id and the longest incident id, in bytes.
const MAX_UNIQUE: usize = 128;

fn visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

/// Implements `Display`, `FromStr` and string serde for a type with `parse` and `Display`-able
/// parts.
macro_rules! string_id {
    ($t:ty) => {
        impl FromStr for $t {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, FieldError> {
                Self::parse(s)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
            }
        }
    };
}

/// A version number the registry assigned: 1, 2, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionNumber(NonZeroU32);

impl VersionNumber {
    /// The first version of a model.
    pub const FIRST: VersionNumber = VersionNumber(NonZeroU32::MIN);

    /// A version number from its integer value; 0 is not one.
    pub fn new(n: u32) -> Result<Self, FieldError> {
        NonZeroU32::new(n)
            .map(Self)
            .ok_or_else(|| FieldError::new("version", "a version number is 1 or more"))
    }

    /// Parses the decimal form used in paths (`/versions/3`).
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let n = s
            .parse::<u32>()
            .map_err(|_| FieldError::new("version", format!("{s:?} is not a version number")))?;
        Self::new(n)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }

    /// The version after this one; `None` past `u32::MAX`.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl fmt::Display for VersionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for VersionNumber {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        Self::parse(s)
    }
}

impl From<VersionNumber> for u32 {
    fn from(v: VersionNumber) -> u32 {
        v.get()
    }
}

impl Serialize for VersionNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.get())
    }
}

impl<'de> Deserialize<'de> for VersionNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        Self::new(n).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// Checks the unique part of a composite id.
fn unique_part(field: &str, s: &str) -> Result<String, FieldError> {
    if s.is_empty() || s.len() > MAX_UNIQUE || !visible_ascii(s) {
        return Err(FieldError::new(
            field,
            format!("the unique part of an id is 1-{MAX_UNIQUE} visible ASCII characters"),
        ));
    }
    Ok(s.to_owned())
}

/// `<name>.<version>.<unique>`: what a promotion id and a retirement id share. The id names
/// its version, so a store finds the record in the model's partition from the id alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Versioned {
    name: ModelName,
    version: VersionNumber,
    unique: String,
}

impl Versioned {
    fn new(
        field: &str,
        name: &ModelName,
        version: VersionNumber,
        unique: &str,
    ) -> Result<Self, FieldError> {
        Ok(Self {
            name: name.clone(),
            version,
            unique: unique_part(field, unique)?,
        })
    }

    fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new(field, format!("{s:?} is not a {field}"));
        let mut parts = s.splitn(3, '.');
        let name = ModelName::parse(parts.next().ok_or_else(bad)?).map_err(|_| bad())?;
        let digits = parts.next().ok_or_else(bad)?;
        // Canonical decimal only, so that an id prints back exactly as it was parsed.
        if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let version = VersionNumber::parse(digits).map_err(|_| bad())?;
        let unique = unique_part(field, parts.next().ok_or_else(bad)?)?;
        Ok(Self {
            name,
            version,
            unique,
        })
    }
}

impl fmt::Display for Versioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.name, self.version, self.unique)
    }
}

/// Declares a `<name>.<version>.<unique>` id type over [`Versioned`].
macro_rules! versioned_id {
    ($(#[$doc:meta])* $t:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $t(Versioned);

        impl $t {
            /// The model the id names.
            pub fn name(&self) -> &ModelName {
                &self.0.name
            }

            /// The version the id names.
            pub fn version(&self) -> VersionNumber {
                self.0.version
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        string_id!($t);
    };
}

versioned_id!(
    /// A promotion: `<name>.<version>.<unique>`.
    PromotionId,
    "promotion id"
);

impl PromotionId {
    /// The id of a new promotion of `name` `version`; `unique` comes from the id generator.
    pub fn new(name: &ModelName, version: VersionNumber, unique: &str) -> Result<Self, FieldError> {
        Versioned::new("promotion id", name, version, unique).map(Self)
    }

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Versioned::parse("promotion id", s).map(Self)
    }

    /// The id of this promotion's review of `stage`.
    pub fn review(&self, stage: ReviewStage) -> ReviewId {
        ReviewId {
            promotion: self.clone(),
            stage,
        }
    }
}

/// A review of one stage of a promotion: `<promotion id>-<stage>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReviewId {
    promotion: PromotionId,
    stage: ReviewStage,
}

impl ReviewId {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new("review id", format!("{s:?} is not a review id"));
        let (promotion, stage) = s.rsplit_once('-').ok_or_else(bad)?;
        Ok(Self {
            promotion: PromotionId::parse(promotion).map_err(|_| bad())?,
            stage: ReviewStage::parse(stage).map_err(|_| bad())?,
        })
    }

    pub fn promotion(&self) -> &PromotionId {
        &self.promotion
    }

    pub fn stage(&self) -> ReviewStage {
        self.stage
    }
}

impl fmt::Display for ReviewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.promotion, self.stage)
    }
}
string_id!(ReviewId);

versioned_id!(
    /// A retirement request: `<name>.<version>.rt-<unique>`.
    RetirementId,
    "retirement id"
);

impl RetirementId {
    /// The id of a new retirement request; `unique` must start with `rt-` (the id generator's
    /// prefix for retirements).
    pub fn new(name: &ModelName, version: VersionNumber, unique: &str) -> Result<Self, FieldError> {
        Self::check(Versioned::new("retirement id", name, version, unique)?)
    }

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Self::check(Versioned::parse("retirement id", s)?)
    }

    fn check(id: Versioned) -> Result<Self, FieldError> {
        if id.unique.len() <= 3 || !id.unique.starts_with("rt-") {
            return Err(FieldError::new(
                "retirement id",
                format!("{id} is not a retirement id"),
            ));
        }
        Ok(Self(id))
    }
}

/// An incident, as the id generator made it (`inc-<hex>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncidentId(String);

impl IncidentId {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        unique_part("incident id", s).map(Self)
    }
}

impl AsRef<str> for IncidentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_id!(IncidentId);

/// A client's `Idempotency-Key`: 1-255 bytes of visible ASCII (spaces allowed inside).
///
/// Core scopes every key by caller and operation before storing it, so two callers' keys never
/// meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        if s.is_empty() || s.len() > 255 {
            return Err(FieldError::new(
                "Idempotency-Key",
                "must be 1-255 characters",
            ));
        }
        if !s.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(FieldError::new("Idempotency-Key", "must be visible ASCII"));
        }
        Ok(Self(s.to_owned()))
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_id!(IdempotencyKey);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name() -> ModelName {
        ModelName::parse("credit-risk").unwrap()
    }

    #[test]
    fn version_numbers_start_at_one_and_read_paths_and_json() {
        assert!(VersionNumber::new(0).is_err());
        assert_eq!(VersionNumber::parse("3").unwrap().get(), 3);
        for bad in ["", "0", "-1", "1.5", "x", "4294967296"] {
            let err = VersionNumber::parse(bad).unwrap_err();
            assert_eq!(err.field, "version", "{bad}");
        }
        let v: VersionNumber = serde_json::from_str("7").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "7");
        assert!(serde_json::from_str::<VersionNumber>("0").is_err());
        assert_eq!(VersionNumber::FIRST.next().unwrap().get(), 2);
    }

    #[test]
    fn a_promotion_id_names_its_version_and_prints_as_parsed() {
        let id = PromotionId::new(&name(), VersionNumber::parse("2").unwrap(), "pr-ab12").unwrap();
        assert_eq!(id.to_string(), "credit-risk.2.pr-ab12");
        let back = PromotionId::parse("credit-risk.2.pr-ab12").unwrap();
        assert_eq!(back, id);
        assert_eq!(back.name(), &name());
        assert_eq!(back.version().get(), 2);
        for bad in [
            "",
            "credit-risk",
            "credit-risk.2",
            "credit-risk.2.",
            "credit-risk.0.pr-1",
            "Credit.2.pr-1",
            "credit-risk.x.pr-1",
            "credit-risk.02.pr-1",
            "credit-risk.+2.pr-1",
        ] {
            assert!(PromotionId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_review_id_is_its_promotion_and_stage() {
        let id = ReviewId::parse("credit-risk.2.pr-ab12-technical").unwrap();
        assert_eq!(id.stage(), ReviewStage::Technical);
        assert_eq!(id.promotion().to_string(), "credit-risk.2.pr-ab12");
        assert_eq!(id.to_string(), "credit-risk.2.pr-ab12-technical");
        assert_eq!(id.promotion().review(ReviewStage::Technical), id);
        for bad in [
            "credit-risk.2.pr-ab12",
            "credit-risk.2.pr-ab12-legal",
            "-technical",
        ] {
            assert!(ReviewId::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"credit-risk.2.pr-ab12-technical\"");
        assert_eq!(serde_json::from_str::<ReviewId>(&json).unwrap(), id);
    }

    #[test]
    fn a_retirement_id_carries_the_rt_prefix() {
        let v = VersionNumber::parse("4").unwrap();
        let id = RetirementId::new(&name(), v, "rt-9f").unwrap();
        assert_eq!(id.to_string(), "credit-risk.4.rt-9f");
        assert_eq!(RetirementId::parse("credit-risk.4.rt-9f").unwrap(), id);
        for bad in ["credit-risk.4.pr-9f", "credit-risk.4.rt-", "credit-risk.4"] {
            assert!(RetirementId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::parse("run 42/attempt-1").is_ok());
        for bad in ["", "tab\there", "é", &"k".repeat(256)] {
            let err = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(err.field, "Idempotency-Key", "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
    }

    #[test]
    fn incident_ids_are_non_empty_visible_ascii() {
        assert_eq!(IncidentId::parse("inc-1").unwrap().as_ref(), "inc-1");
        for bad in ["", "inc 1", &"i".repeat(129)] {
            assert!(IncidentId::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_parsed_promotion_and_review_id_prints_back_the_same_string(s in "[a-z0-9.\\-]{0,40}") {
            if let Ok(p) = PromotionId::parse(&s) {
                prop_assert_eq!(p.to_string(), s.clone());
            }
            if let Ok(r) = ReviewId::parse(&s) {
                prop_assert_eq!(r.to_string(), s);
            }
        }
    }
}
