//! Typed metadata filters, serializable as JSON and compiled to parameterized SQL.
//!
//! A filter is applied *before* top-k: the search ranks only rows that match, so when at
//! least `k` rows match, `k` rows come back. Field paths and operands are always bound as SQL
//! parameters, never spliced into the statement text.
//!
//! Semantics are two-valued: a comparison on a field that is missing (or of another JSON
//! type) is false, and `not`, `ne` and `nin` are its exact negation, so
//! `{"ne": {"field": "lang", "value": "rust"}}` matches rows without a `lang` field.

use rusqlite::types::Value as SqlValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// Deepest accepted nesting of `and`/`or`/`not`.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Most leaves (comparisons) accepted in one filter, counting each `in` value.
pub const MAX_FILTER_TERMS: usize = 1024;

/// A predicate over a record's columns and its JSON metadata.
///
/// JSON form (externally tagged), e.g.
/// ```
/// use reasonbank_memory::Filter;
/// let f: Filter = serde_json::from_str(r#"{"and": [
///     {"eq":  {"field": "lang", "value": "rust"}},
///     {"gte": {"field": "stars", "value": 10}},
///     {"kind": "pattern"},
///     {"not": {"exists": {"field": "archived"}}}
/// ]}"#).unwrap();
/// # let _ = f;
/// ```
/// `field` is a metadata path: keys separated by `.` (`"repo.owner"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Filter {
    /// Field equals a scalar (string, number, bool or null).
    Eq {
        /// Metadata path.
        field: String,
        /// Scalar to compare with.
        value: Value,
    },
    /// Negation of `eq` (true when the field is missing).
    Ne {
        /// Metadata path.
        field: String,
        /// Scalar to compare with.
        value: Value,
    },
    /// Field is a number greater than a number, or a string after a string.
    Gt {
        /// Metadata path.
        field: String,
        /// Number or string.
        value: Value,
    },
    /// Like `gt`, or equal.
    Gte {
        /// Metadata path.
        field: String,
        /// Number or string.
        value: Value,
    },
    /// Field is a number less than a number, or a string before a string.
    Lt {
        /// Metadata path.
        field: String,
        /// Number or string.
        value: Value,
    },
    /// Like `lt`, or equal.
    Lte {
        /// Metadata path.
        field: String,
        /// Number or string.
        value: Value,
    },
    /// Field equals one of the scalars.
    In {
        /// Metadata path.
        field: String,
        /// Scalars to compare with (an empty list matches nothing).
        values: Vec<Value>,
    },
    /// Negation of `in`.
    Nin {
        /// Metadata path.
        field: String,
        /// Scalars to compare with (an empty list matches everything).
        values: Vec<Value>,
    },
    /// Field is present (a JSON `null` value counts as present).
    Exists {
        /// Metadata path.
        field: String,
    },
    /// All sub-filters match (an empty list matches everything).
    And(Vec<Filter>),
    /// At least one sub-filter matches (an empty list matches nothing).
    Or(Vec<Filter>),
    /// The sub-filter does not match.
    Not(Box<Filter>),
    /// The record's kind equals this.
    Kind(String),
    /// The record's namespace equals this.
    Namespace(String),
    /// Created in `[from, to)`, Unix milliseconds; either bound may be omitted.
    CreatedAt(TimeRange),
    /// Last updated in `[from, to)`, Unix milliseconds; either bound may be omitted.
    UpdatedAt(TimeRange),
}

/// A half-open time range in Unix milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// Inclusive lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// Exclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
}

impl std::str::FromStr for Filter {
    type Err = Error;
    /// Parses the JSON form.
    fn from_str(s: &str) -> Result<Self> {
        let f: Filter = serde_json::from_str(s).map_err(Error::FilterJson)?;
        f.validate()?;
        Ok(f)
    }
}

/// A compiled filter: a SQL boolean expression over table `records` and its parameters.
#[derive(Debug)]
pub(crate) struct SqlFilter {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Filter {
    /// Checks depth, size, field paths and operand types without touching a shard.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] naming the first problem found.
    pub fn validate(&self) -> Result<()> {
        self.to_sql().map(|_| ())
    }

    pub(crate) fn to_sql(&self) -> Result<SqlFilter> {
        let mut c = Compiler::default();
        let sql = c.compile(self, 0)?;
        Ok(SqlFilter {
            sql,
            params: c.params,
        })
    }
}

#[derive(Default)]
struct Compiler {
    params: Vec<SqlValue>,
    terms: usize,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidFilter {
        reason: reason.into(),
    }
}

/// Turns `a.b.c` into the JSON path `$."a"."b"."c"`.
fn json_path(field: &str) -> Result<String> {
    if field.is_empty() {
        return Err(invalid("field path is empty"));
    }
    let mut path = String::from("$");
    for (depth, seg) in field.split('.').enumerate() {
        if depth >= 16 {
            return Err(invalid(format!(
                "field path {field:?} is deeper than 16 keys"
            )));
        }
        if seg.is_empty() {
            return Err(invalid(format!("field path {field:?} has an empty key")));
        }
        if seg.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
            return Err(invalid(format!(
                "field path {field:?} contains a quote, backslash or control character"
            )));
        }
        path.push_str(".\"");
        path.push_str(seg);
        path.push('"');
    }
    Ok(path)
}

impl Compiler {
    fn bind(&mut self, v: SqlValue) -> &'static str {
        self.params.push(v);
        "?"
    }

    fn term(&mut self) -> Result<()> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(invalid(format!("more than {MAX_FILTER_TERMS} terms")));
        }
        Ok(())
    }

    fn compile(&mut self, f: &Filter, depth: usize) -> Result<String> {
        if depth > MAX_FILTER_DEPTH {
            return Err(invalid(format!("nested deeper than {MAX_FILTER_DEPTH}")));
        }
        Ok(match f {
            Filter::Eq { field, value } => self.eq(field, value)?,
            Filter::Ne { field, value } => format!("NOT {}", self.eq(field, value)?),
            Filter::In { field, values } | Filter::Nin { field, values } => {
                let ors = values
                    .iter()
                    .map(|v| self.eq(field, v))
                    .collect::<Result<Vec<_>>>()?;
                let any = if ors.is_empty() {
                    "0".to_owned()
                } else {
                    format!("({})", ors.join(" OR "))
                };
                if matches!(f, Filter::Nin { .. }) {
                    format!("NOT {any}")
                } else {
                    any
                }
            }
            Filter::Gt { field, value } => self.order(field, value, ">")?,
            Filter::Gte { field, value } => self.order(field, value, ">=")?,
            Filter::Lt { field, value } => self.order(field, value, "<")?,
            Filter::Lte { field, value } => self.order(field, value, "<=")?,
            Filter::Exists { field } => {
                self.term()?;
                let p = self.bind(SqlValue::Text(json_path(field)?));
                format!("(json_type(metadata, {p}) IS NOT NULL)")
            }
            Filter::And(fs) | Filter::Or(fs) => {
                let (op, empty) = if matches!(f, Filter::And(_)) {
                    (" AND ", "1")
                } else {
                    (" OR ", "0")
                };
                if fs.is_empty() {
                    return Ok(empty.to_owned());
                }
                let parts = fs
                    .iter()
                    .map(|g| self.compile(g, depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                format!("({})", parts.join(op))
            }
            Filter::Not(g) => format!("(NOT {})", self.compile(g, depth + 1)?),
            Filter::Kind(k) => {
                self.term()?;
                format!("(kind = {})", self.bind(SqlValue::Text(k.clone())))
            }
            Filter::Namespace(n) => {
                self.term()?;
                format!("(namespace = {})", self.bind(SqlValue::Text(n.clone())))
            }
            Filter::CreatedAt(r) => self.range("created_at", r)?,
            Filter::UpdatedAt(r) => self.range("updated_at", r)?,
        })
    }

    /// `field == value`, strictly typed. Like every leaf, the expression is 0 or 1, never
    /// NULL, so that `NOT` is an exact negation (SQL's `NOT NULL` is NULL, i.e. false).
    fn eq(&mut self, field: &str, value: &Value) -> Result<String> {
        self.term()?;
        let path = json_path(field)?;
        Ok(match value {
            Value::Null => {
                let p = self.bind(SqlValue::Text(path));
                format!("(json_type(metadata, {p}) IS 'null')")
            }
            Value::Bool(b) => {
                let p = self.bind(SqlValue::Text(path));
                let t = if *b { "'true'" } else { "'false'" };
                format!("(json_type(metadata, {p}) IS {t})")
            }
            Value::Number(_) => {
                let p1 = self.bind(SqlValue::Text(path.clone()));
                let p2 = self.bind(SqlValue::Text(path));
                let v = self.bind(number(value)?);
                format!(
                    "coalesce(json_type(metadata, {p1}) IN ('integer', 'real') AND json_extract(metadata, {p2}) = {v}, 0)"
                )
            }
            Value::String(s) => {
                let p1 = self.bind(SqlValue::Text(path.clone()));
                let p2 = self.bind(SqlValue::Text(path));
                let v = self.bind(SqlValue::Text(s.clone()));
                format!(
                    "coalesce(json_type(metadata, {p1}) IS 'text' AND json_extract(metadata, {p2}) = {v}, 0)"
                )
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(invalid(format!(
                    "field {field:?} is compared with an array or object; only strings, numbers, booleans and null can be compared"
                )));
            }
        })
    }

    /// `field <op> value` for numbers (numeric order) or strings (binary order).
    fn order(&mut self, field: &str, value: &Value, op: &str) -> Result<String> {
        self.term()?;
        let path = json_path(field)?;
        let (types, v) = match value {
            Value::Number(_) => ("('integer', 'real')", number(value)?),
            Value::String(s) => ("('text')", SqlValue::Text(s.clone())),
            _ => {
                return Err(invalid(format!(
                    "field {field:?} is ordered against {value}; only numbers and strings can be ordered"
                )));
            }
        };
        let p1 = self.bind(SqlValue::Text(path.clone()));
        let p2 = self.bind(SqlValue::Text(path));
        let v = self.bind(v);
        Ok(format!(
            "coalesce(json_type(metadata, {p1}) IN {types} AND json_extract(metadata, {p2}) {op} {v}, 0)"
        ))
    }

    fn range(&mut self, column: &str, r: &TimeRange) -> Result<String> {
        self.term()?;
        let mut parts = Vec::new();
        if let Some(from) = r.from {
            parts.push(format!(
                "{column} >= {}",
                self.bind(SqlValue::Integer(from))
            ));
        }
        if let Some(to) = r.to {
            parts.push(format!("{column} < {}", self.bind(SqlValue::Integer(to))));
        }
        Ok(if parts.is_empty() {
            "1".to_owned()
        } else {
            format!("({})", parts.join(" AND "))
        })
    }
}

fn number(v: &Value) -> Result<SqlValue> {
    let Value::Number(n) = v else {
        unreachable!("called only for numbers")
    };
    if let Some(i) = n.as_i64() {
        Ok(SqlValue::Integer(i))
    } else if let Some(f) = n.as_f64() {
        Ok(SqlValue::Real(f))
    } else {
        Err(invalid(format!("number {n} is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips_json() {
        let src = r#"{"and":[{"eq":{"field":"a.b","value":1}},{"or":[{"kind":"pattern"},{"not":{"exists":{"field":"x"}}}]},{"created_at":{"from":5}}]}"#;
        let f: Filter = src.parse().unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), src);
    }

    #[test]
    fn rejects_bad_filters() {
        for bad in [
            r#"{"eq":{"field":"","value":1}}"#,
            r#"{"eq":{"field":"a..b","value":1}}"#,
            r#"{"eq":{"field":"a\"b","value":1}}"#,
            r#"{"eq":{"field":"a","value":[1]}}"#,
            r#"{"gt":{"field":"a","value":true}}"#,
        ] {
            assert!(
                matches!(bad.parse::<Filter>(), Err(Error::InvalidFilter { .. })),
                "{bad}"
            );
        }
        for bad in [
            "not json",
            r#"{"eq":{"field":"a"}}"#,
            r#"{"like":{"field":"a","value":"x"}}"#,
            r#"{"eq":{"field":"a","value":1,"extra":2}}"#,
        ] {
            assert!(
                matches!(bad.parse::<Filter>(), Err(Error::FilterJson(_))),
                "{bad}"
            );
        }
        let mut deep = Filter::Kind("x".into());
        for _ in 0..40 {
            deep = Filter::Not(Box::new(deep));
        }
        assert!(matches!(deep.validate(), Err(Error::InvalidFilter { .. })));
        let wide = Filter::In {
            field: "a".into(),
            values: (0..2000).map(Value::from).collect(),
        };
        assert!(matches!(wide.validate(), Err(Error::InvalidFilter { .. })));
    }

    #[test]
    fn field_paths_are_bound_not_spliced() {
        let f = Filter::Eq {
            field: "x'); DROP TABLE records; --".into(),
            value: Value::from("y"),
        };
        let sql = f.to_sql().unwrap();
        assert!(!sql.sql.contains("DROP"));
        assert_eq!(sql.params.len(), 3);
    }
}
