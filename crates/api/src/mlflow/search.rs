//! MLflow's search filters, `order_by` and page tokens, as the client sends them.
//!
//! A filter is clauses joined by `AND`; a clause is `<key> <op> <value>` where the key is
//! `name`, `run_id`, `source_path`, `version_number` or `tag.<key>` / `tags.<key>` (the key
//! may be back-quoted: ``tag.`mlflow.prompt.is_prompt` ``), the operator `=`, `!=`, `LIKE`,
//! `ILIKE` or `IN`, and the value a quoted string (or a parenthesised list of them for `IN`).
//! An absent tag satisfies `!=` (the client's prompt filter keeps models without the tag).
//! Anything else is INVALID_PARAMETER_VALUE naming what was not understood.

use base64::Engine;
use serde_json::json;

use super::MlflowError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Name,
    RunId,
    SourcePath,
    VersionNumber,
    Tag(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Like,
    ILike,
    In,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub key: Key,
    pub op: Op,
    pub values: Vec<String>,
}

/// What a filter clause is tested against.
pub trait Searchable {
    fn field(&self, key: &Key) -> Option<String>;
}

pub fn matches(item: &impl Searchable, clauses: &[Clause]) -> bool {
    clauses.iter().all(|c| {
        let actual = item.field(&c.key);
        match (c.op, actual) {
            (Op::Ne, None) => true,
            (_, None) => false,
            (Op::Eq, Some(a)) => a == c.values[0],
            (Op::Ne, Some(a)) => a != c.values[0],
            (Op::Like, Some(a)) => like(&a, &c.values[0], false),
            (Op::ILike, Some(a)) => like(&a, &c.values[0], true),
            (Op::In, Some(a)) => c.values.contains(&a),
        }
    })
}

/// SQL `LIKE`: `%` any run, `_` one character.
fn like(text: &str, pattern: &str, fold: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if fold {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    // Iterative wildcard match with backtracking to the last '%'.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < t.len() {
        if j < p.len() && (p[j] == '_' || p[j] == t[i]) {
            i += 1;
            j += 1;
        } else if j < p.len() && p[j] == '%' {
            star = Some((j, i));
            j += 1;
        } else if let Some((sj, si)) = star {
            j = sj + 1;
            i = si + 1;
            star = Some((sj, si + 1));
        } else {
            return false;
        }
    }
    p[j..].iter().all(|c| *c == '%')
}

struct Lexer<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Lexer<'a> {
    fn ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }
    fn done(&mut self) -> bool {
        self.ws();
        self.at >= self.s.len()
    }
    fn bad(&self, what: &str) -> MlflowError {
        let rest = String::from_utf8_lossy(&self.s[self.at.min(self.s.len())..]);
        MlflowError::invalid(format!("invalid filter: expected {what} at {rest:?}"))
    }
    /// An identifier (letters, digits, `_`, `.`) or a back-quoted part after `tag.`.
    fn key(&mut self) -> Result<Key, MlflowError> {
        self.ws();
        let start = self.at;
        while self.at < self.s.len()
            && (self.s[self.at].is_ascii_alphanumeric() || matches!(self.s[self.at], b'_' | b'.'))
        {
            self.at += 1;
        }
        let word = String::from_utf8_lossy(&self.s[start..self.at]).to_string();
        let tag_prefix = ["tags.", "tag."]
            .into_iter()
            .find(|p| word.to_ascii_lowercase().starts_with(p));
        if let Some(prefix) = tag_prefix {
            let mut name = word[prefix.len()..].to_owned();
            if name.is_empty() && self.at < self.s.len() && matches!(self.s[self.at], b'`' | b'"') {
                name = self.quoted()?;
            }
            if name.is_empty() {
                return Err(self.bad("a tag key"));
            }
            return Ok(Key::Tag(name));
        }
        match word.to_ascii_lowercase().as_str() {
            "name" => Ok(Key::Name),
            "run_id" => Ok(Key::RunId),
            "source_path" => Ok(Key::SourcePath),
            "version_number" => Ok(Key::VersionNumber),
            "" => Err(self.bad("a key (name, run_id, source_path, version_number or tag.<key>)")),
            other => Err(MlflowError::invalid(format!(
                "invalid filter: {other:?} is not a searchable key; use name, run_id, \
                 source_path, version_number or tag.<key>"
            ))),
        }
    }
    fn op(&mut self) -> Result<Op, MlflowError> {
        self.ws();
        let rest = &self.s[self.at..];
        let upper = String::from_utf8_lossy(&rest[..rest.len().min(6)]).to_ascii_uppercase();
        for (text, op) in [
            ("!=", Op::Ne),
            ("=", Op::Eq),
            ("ILIKE", Op::ILike),
            ("LIKE", Op::Like),
            ("IN", Op::In),
        ] {
            if upper.starts_with(text) {
                self.at += text.len();
                return Ok(op);
            }
        }
        Err(self.bad("an operator (=, !=, LIKE, ILIKE, IN)"))
    }
    fn quoted(&mut self) -> Result<String, MlflowError> {
        self.ws();
        let Some(&q) = self.s.get(self.at) else {
            return Err(self.bad("a quoted value"));
        };
        if !matches!(q, b'\'' | b'"' | b'`') {
            // Unquoted numbers (version_number = 3).
            let start = self.at;
            while self.at < self.s.len() && self.s[self.at].is_ascii_digit() {
                self.at += 1;
            }
            if self.at > start {
                return Ok(String::from_utf8_lossy(&self.s[start..self.at]).to_string());
            }
            return Err(self.bad("a quoted value"));
        }
        self.at += 1;
        let start = self.at;
        while self.at < self.s.len() && self.s[self.at] != q {
            self.at += 1;
        }
        if self.at >= self.s.len() {
            return Err(self.bad("a closing quote"));
        }
        let v = String::from_utf8_lossy(&self.s[start..self.at]).to_string();
        self.at += 1;
        Ok(v)
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn and(&mut self) -> bool {
        self.ws();
        let rest = &self.s[self.at..];
        if rest.len() > 3 && rest[..3].eq_ignore_ascii_case(b"AND") && rest[3].is_ascii_whitespace()
        {
            self.at += 3;
            true
        } else {
            false
        }
    }
}

/// Parses a filter string; empty means no clauses.
pub fn parse_filter(filter: &str) -> Result<Vec<Clause>, MlflowError> {
    let mut lx = Lexer {
        s: filter.as_bytes(),
        at: 0,
    };
    let mut out = Vec::new();
    if lx.done() {
        return Ok(out);
    }
    loop {
        let key = lx.key()?;
        let op = lx.op()?;
        let values = if op == Op::In {
            if !lx.eat(b'(') {
                return Err(lx.bad("'(' after IN"));
            }
            let mut vs = vec![lx.quoted()?];
            while lx.eat(b',') {
                vs.push(lx.quoted()?);
            }
            if !lx.eat(b')') {
                return Err(lx.bad("')'"));
            }
            vs
        } else {
            vec![lx.quoted()?]
        };
        out.push(Clause { key, op, values });
        if lx.done() {
            return Ok(out);
        }
        if !lx.and() {
            return Err(lx.bad("AND between clauses"));
        }
    }
}

/// One `order_by` term: the field and whether it is ascending.
pub fn parse_order(terms: &[String], allowed: &[&str]) -> Result<Vec<(String, bool)>, MlflowError> {
    terms
        .iter()
        .map(|t| {
            let mut parts = t.split_whitespace();
            let field = parts.next().unwrap_or_default().to_ascii_lowercase();
            let field = if field == "timestamp" {
                "last_updated_timestamp".to_owned()
            } else {
                field
            };
            let asc = match parts.next().map(str::to_ascii_uppercase).as_deref() {
                None | Some("ASC") => true,
                Some("DESC") => false,
                Some(other) => {
                    return Err(MlflowError::invalid(format!(
                        "invalid order_by {t:?}: {other} is not ASC or DESC"
                    )))
                }
            };
            if !allowed.contains(&field.as_str()) || parts.next().is_some() {
                return Err(MlflowError::invalid(format!(
                    "invalid order_by {t:?}: order by {}",
                    allowed.join(", ")
                )));
            }
            Ok((field, asc))
        })
        .collect()
}

/// The offset a page token stands for (`base64({"offset": n})`, as MLflow's own).
pub fn offset(token: Option<&str>) -> Result<usize, MlflowError> {
    let Some(t) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let bad = || MlflowError::invalid(format!("invalid page_token {t:?}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(t)
        .map_err(|_| bad())?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    v.get("offset")
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as usize)
        .ok_or_else(bad)
}

pub fn token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!({"offset": offset}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_prompt_filter_and_a_name_like_parse_into_two_clauses() {
        let c =
            parse_filter("name LIKE 'fraud%' AND tag.`mlflow.prompt.is_prompt` != 'true'").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].key, Key::Name);
        assert_eq!(c[0].op, Op::Like);
        assert_eq!(c[1].key, Key::Tag("mlflow.prompt.is_prompt".into()));
        assert_eq!(c[1].op, Op::Ne);
        assert_eq!(c[1].values, vec!["true".to_owned()]);
    }

    #[test]
    fn in_lists_and_unquoted_numbers_parse() {
        let c = parse_filter("run_id IN ('a', 'b') and version_number = 3").unwrap();
        assert_eq!(c[0].values, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(c[1].values, vec!["3".to_owned()]);
    }

    #[test]
    fn unknown_keys_and_dangling_clauses_are_refused() {
        assert!(parse_filter("owner = 'x'").is_err());
        assert!(parse_filter("name = 'x' AND").is_err());
        assert!(parse_filter("name = 'x").is_err());
        assert!(parse_filter("name ~ 'x'").is_err());
    }

    #[test]
    fn like_matches_sql_wildcards_and_ilike_folds_case() {
        assert!(like("fraud-detector", "fraud%", false));
        assert!(like("fraud-detector", "%det%", false));
        assert!(like("abc", "a_c", false));
        assert!(!like("abc", "a_", false));
        assert!(!like("Fraud", "fraud%", false));
        assert!(like("Fraud", "fraud%", true));
    }

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(offset(Some(&token(250))).unwrap(), 250);
        assert_eq!(offset(None).unwrap(), 0);
        assert!(offset(Some("not-a-token")).is_err());
    }
}
