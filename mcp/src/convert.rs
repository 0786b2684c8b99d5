//! Tool arguments into the facade's types, with errors that name the argument: shard ids,
//! filters and outcomes.

use anyhow::{Context, anyhow};
use reasonbank::memory::{Filter, ShardId};
use reasonbank::reasoning::Outcome;
use serde_json::Value;

use crate::params;

/// The tool's outcome as the reasoning crate's.
pub(crate) fn outcome(o: params::Outcome) -> Outcome {
    match o {
        params::Outcome::Success => Outcome::Success,
        params::Outcome::Failure => Outcome::Failure,
    }
}

/// A shard id, or an error naming the argument `what`.
pub(crate) fn parse_shard_id(what: &str, s: String) -> anyhow::Result<ShardId> {
    ShardId::new(s).with_context(|| format!("argument {what}"))
}

/// The `shards` argument (absent: none).
pub(crate) fn parse_shard_ids(shards: Option<Vec<String>>) -> anyhow::Result<Vec<ShardId>> {
    shards
        .unwrap_or_default()
        .into_iter()
        .map(|s| parse_shard_id("shards", s))
        .collect()
}

/// An instant argument (`at`, `since`, `until`) in one of the forms
/// [`reasonbank::units::instant`] reads, as Unix milliseconds (absent: none).
pub(crate) fn parse_instant(what: &'static str, v: Option<String>) -> anyhow::Result<Option<i64>> {
    v.map(|s| reasonbank::units::read_instant(what, &s))
        .transpose()
        .with_context(|| format!("argument {what}"))
}

/// A filter given as a JSON object, or as a string holding one (some clients stringify
/// nested objects).
pub(crate) fn parse_filter(v: Option<Value>) -> anyhow::Result<Option<Filter>> {
    let f = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.parse::<Filter>(),
        Some(v) => serde_json::from_value::<Filter>(v)
            .map_err(|e| anyhow!("{e}"))
            .map_err(|e| reasonbank::memory::Error::InvalidFilter {
                reason: format!("{e}"),
            }),
    };
    Ok(Some(f.map_err(anyhow::Error::from).context(
        "argument filter (expected e.g. {\"eq\": {\"field\": \"topic\", \"value\": \"http\"}})",
    )?))
}
