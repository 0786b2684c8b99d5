//! Durations given as plain numbers by the front ends (days in the CLI and the MCP server,
//! milliseconds in Node, seconds in Python), converted and checked in one place.

use std::time::Duration;

use crate::{Error, Result};

/// The unit a front end gives a duration in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeUnit {
    /// Milliseconds (Node).
    Milliseconds,
    /// Seconds (Python).
    Seconds,
    /// Days (CLI, MCP).
    Days,
}

impl TimeUnit {
    fn seconds(self) -> f64 {
        match self {
            TimeUnit::Milliseconds => 1e-3,
            TimeUnit::Seconds => 1.0,
            TimeUnit::Days => 86_400.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TimeUnit::Milliseconds => "milliseconds",
            TimeUnit::Seconds => "seconds",
            TimeUnit::Days => "days",
        }
    }
}

/// `value` `unit`s as a [`Duration`].
///
/// # Errors
/// [`Error::InvalidInput`] naming `what` when `value` is negative, not finite, or too long for
/// a `Duration`.
pub fn duration(what: &'static str, value: f64, unit: TimeUnit) -> Result<Duration> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(Error::InvalidInput {
            what,
            reason: format!("must be a number of {} >= 0, got {value}", unit.name()),
        });
    }
    Duration::try_from_secs_f64(value * unit.seconds()).map_err(|_| Error::InvalidInput {
        what,
        reason: format!("{value} {} is too long", unit.name()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_each_unit() {
        assert_eq!(
            duration("x", 1.5, TimeUnit::Days).unwrap(),
            Duration::from_secs(129_600)
        );
        assert_eq!(
            duration("x", 250.0, TimeUnit::Milliseconds).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            duration("x", 0.0, TimeUnit::Seconds).unwrap(),
            Duration::ZERO
        );
    }

    #[test]
    fn refuses_what_is_not_a_duration_naming_the_argument() {
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = duration("prune_idle_days", bad, TimeUnit::Days).unwrap_err();
            assert!(e.to_string().contains("prune_idle_days"), "{e}");
            assert!(e.to_string().contains(">= 0"), "{e}");
        }
        let e = duration("prune_idle_days", 1e300, TimeUnit::Days).unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
        assert_eq!(e.code(), crate::error::code::INVALID_INPUT);
    }
}
