//! Replicated counters in a record's metadata: the one metadata key that sync merges instead
//! of replacing.
//!
//! Sync resolves a record last-writer-wins on `(version, origin)` (see `replication.rs`): the
//! newer write replaces the whole row. That loses increments: if two replicas each add to a
//! count in the metadata, one of the two additions disappears. The metadata key
//! [`COUNTERS_KEY`] (`"_counters"`) is therefore merged, not replaced:
//!
//! ```json
//! {"_counters": {"<group>": {"<name>": 3.0, "<other name>": 0.5}, "<group 2>": {...}}}
//! ```
//!
//! a map of *groups*, each a map of *names* to finite numbers ≥ 0, merged entry by entry by
//! taking the maximum ([`Counters::join`]) whenever two states of a row meet: on every change
//! applied by sync, whichever side wins last-writer-wins (ties and losses included). The join
//! is commutative, associative and idempotent, so replicas that have seen the same writes hold
//! the same counters, in any order and with any number of syncs.
//!
//! This is a state-based grow-only counter when each replica only raises the entries of its
//! own group (the ReasoningBank uses its shard's origin as the group and feedback successes,
//! failures and usage as names): the total of a name is the sum over groups, and no
//! concurrent increment is lost or counted twice. Any value that only grows merges the same
//! way (a latest timestamp, a grow-only set written as names with the value 1). A value that
//! must go down is written as a second, growing entry that is subtracted (a PN-counter).
//!
//! Local writes store the counters normalized (every number as a JSON float), so every
//! replica holds the same bytes for the same state; a malformed `_counters` value is refused
//! with [`Error::InvalidInput`] by local writes and by sync alike.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{Error, Result};

/// The metadata key whose value sync merges by per-entry maximum (see the module docs).
pub const COUNTERS_KEY: &str = "_counters";

/// Longest group or name in [`Counters`], in bytes.
pub const MAX_COUNTER_KEY_BYTES: usize = 128;

/// The replicated counters of one record: groups of named values, each finite and ≥ 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    groups: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Counters {
    /// No counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters stored in `metadata` (none when the key is absent).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if [`COUNTERS_KEY`] is not an object of objects of finite
    /// numbers ≥ 0 with keys of at most [`MAX_COUNTER_KEY_BYTES`] bytes.
    pub fn of(metadata: &Map<String, Value>) -> Result<Counters> {
        match metadata.get(COUNTERS_KEY) {
            None => Ok(Counters::new()),
            Some(v) => Counters::from_value(v),
        }
    }

    /// Parses the value of [`COUNTERS_KEY`].
    ///
    /// # Errors
    /// As [`of`](Self::of).
    pub fn from_value(v: &Value) -> Result<Counters> {
        let bad = |reason: String| Error::InvalidInput {
            what: "metadata `_counters`",
            reason,
        };
        let Value::Object(groups) = v else {
            return Err(bad("it is not an object".into()));
        };
        let mut out = Counters::new();
        for (g, names) in groups {
            check_key(g).map_err(bad)?;
            let Value::Object(names) = names else {
                return Err(bad(format!("group {g:?} is not an object")));
            };
            let group = out.groups.entry(g.clone()).or_default();
            for (n, x) in names {
                check_key(n).map_err(bad)?;
                let x = x
                    .as_f64()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| bad(format!("{g:?}.{n:?} is not a finite number ≥ 0")))?;
                group.insert(n.clone(), x);
            }
        }
        Ok(out)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.groups.values().all(BTreeMap::is_empty)
    }

    /// The value of `name` in `group`, 0 when absent.
    pub fn get(&self, group: &str, name: &str) -> f64 {
        self.groups
            .get(group)
            .and_then(|g| g.get(name))
            .copied()
            .unwrap_or(0.0)
    }

    /// The entries of `group`, by name.
    pub fn group(&self, group: &str) -> Option<&BTreeMap<String, f64>> {
        self.groups.get(group)
    }

    /// Every group with its entries, in group order.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &BTreeMap<String, f64>)> {
        self.groups.iter().map(|(g, e)| (g.as_str(), e))
    }

    /// Sets `name` in `group` to `value` if that is greater than what it holds (counters
    /// never go down); returns whether it changed. A value that is not finite and ≥ 0 changes
    /// nothing.
    pub fn raise(&mut self, group: &str, name: &str, value: f64) -> bool {
        if !(value.is_finite() && value >= 0.0) || value <= self.get(group, name) {
            return false;
        }
        self.groups
            .entry(group.to_owned())
            .or_default()
            .insert(name.to_owned(), value);
        true
    }

    /// Adds `delta` (finite, ≥ 0; anything else adds nothing) to `name` in `group`: how a
    /// replica counts in its own group.
    pub fn add(&mut self, group: &str, name: &str, delta: f64) {
        self.raise(group, name, self.get(group, name) + delta);
    }

    /// Merges `other` into `self`, entry by entry by maximum; returns whether `self` changed.
    pub fn join(&mut self, other: &Counters) -> bool {
        let mut changed = false;
        for (g, names) in &other.groups {
            for (n, &x) in names {
                changed |= self.raise(g, n, x);
            }
        }
        changed
    }

    /// The JSON value stored under [`COUNTERS_KEY`]: every number a float, so equal counters
    /// serialize to equal bytes.
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.groups
                .iter()
                .map(|(g, names)| {
                    let names = names
                        .iter()
                        .map(|(n, &x)| (n.clone(), Value::from(x)))
                        .collect();
                    (g.clone(), Value::Object(names))
                })
                .collect(),
        )
    }

    /// Stores these counters in `metadata` under [`COUNTERS_KEY`].
    pub fn write_into(&self, metadata: &mut Map<String, Value>) {
        metadata.insert(COUNTERS_KEY.to_owned(), self.to_value());
    }
}

fn check_key(k: &str) -> std::result::Result<(), String> {
    if k.is_empty() || k.len() > MAX_COUNTER_KEY_BYTES || k.chars().any(char::is_control) {
        return Err(format!(
            "key {k:?} must be 1-{MAX_COUNTER_KEY_BYTES} bytes without control characters"
        ));
    }
    Ok(())
}

/// Checks the counters of `metadata`, if any, and stores them normalized (see
/// [`Counters::to_value`]). What every local write does before it serializes metadata.
pub(crate) fn normalize(metadata: &Value) -> Result<Option<Value>> {
    let Some(v) = metadata.get(COUNTERS_KEY) else {
        return Ok(None);
    };
    let c = Counters::from_value(v)?;
    let normal = c.to_value();
    // `Number` equality tells `2` from `2.0`, so this is a byte-for-byte test.
    if &normal == v {
        return Ok(None);
    }
    let mut m = metadata.clone();
    m[COUNTERS_KEY] = normal;
    Ok(Some(m))
}

/// Whether a metadata object's JSON text may hold counters (a cheap test before parsing).
pub(crate) fn may_hold_counters(metadata_json: &str) -> bool {
    metadata_json.contains("\"_counters\"")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn c(v: Value) -> Counters {
        Counters::from_value(&v).unwrap()
    }

    #[test]
    fn join_is_a_semilattice() {
        let a = c(json!({"a": {"s": 3.0, "f": 0.0}, "b": {"s": 1.0}}));
        let b = c(json!({"a": {"s": 2.0, "f": 1.0}, "c": {"uses": 4}}));
        let d = c(json!({"b": {"s": 5.0}}));
        let join = |x: &Counters, y: &Counters| {
            let mut z = x.clone();
            z.join(y);
            z
        };
        assert_eq!(join(&a, &b), join(&b, &a), "commutative");
        assert_eq!(
            join(&join(&a, &b), &d),
            join(&a, &join(&b, &d)),
            "associative"
        );
        let mut aa = a.clone();
        assert!(!aa.join(&a), "idempotent");
        assert_eq!(
            join(&a, &b).to_value(),
            json!({"a": {"s": 3.0, "f": 1.0}, "b": {"s": 1.0}, "c": {"uses": 4.0}})
        );
    }

    #[test]
    fn malformed_counters_are_refused_and_integers_normalized() {
        for bad in [
            json!([1]),
            json!({"a": 1}),
            json!({"a": {"s": -1}}),
            json!({"a": {"s": "x"}}),
            json!({"": {"s": 1}}),
            json!({"a": {"s\u{1}": 1}}),
        ] {
            assert!(Counters::from_value(&bad).is_err(), "{bad}");
        }
        let m = json!({"_counters": {"a": {"s": 2}}, "x": 1});
        let n = normalize(&m).unwrap().unwrap();
        assert_eq!(
            serde_json::to_string(&n[COUNTERS_KEY]).unwrap(),
            r#"{"a":{"s":2.0}}"#
        );
        assert_eq!(normalize(&n).unwrap(), None);
        assert_eq!(normalize(&json!({"x": 1})).unwrap(), None);
    }

    #[test]
    fn add_and_raise_never_go_down() {
        let mut k = Counters::new();
        k.add("me", "s", 1.0);
        k.add("me", "s", 0.5);
        k.add("me", "s", -3.0);
        k.add("me", "s", f64::NAN);
        assert_eq!(k.get("me", "s"), 1.5);
        assert!(!k.raise("me", "s", 1.0));
        assert_eq!(k.get("other", "s"), 0.0);
    }
}
