//! Scores (DESIGN §4): each rule adds points on a matching event; points decay by half every
//! `halfLife`. A score's state is one number and the time it was last brought up to date, so a
//! score costs the same whatever the history; it reads as `scores.<id>` in the profile document,
//! rounded to 2 decimals (a threshold equal to the points earned is reached).
//!
//! `2^x` and `log2` are computed here (no libm in `no_std` core): exact for integer exponents,
//! within a few ulps otherwise.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::condition::{eval_condition, Ctx};
use crate::core::time::floor;
use crate::core::value::Value;

/// One scoring rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Event name.
    pub event: String,
    /// Condition on the event's properties.
    pub filter: Option<Value>,
    /// Points added per matching event.
    pub points: f64,
}

/// A compiled score definition.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreDef {
    /// Score id (`scores.<id>`).
    pub id: String,
    /// Fingerprint of the rules and half-life.
    pub key: u64,
    /// Half-life (ms); none = no decay.
    pub half_life: Option<f64>,
    /// Rules.
    pub rules: Vec<Rule>,
}

/// The state of one score: value `v` as of time `t` (ms).
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreSlot {
    /// Fingerprint of the definition.
    pub key: u64,
    /// Value at `t`.
    pub v: f64,
    /// Time of `v` (ms).
    pub t: f64,
}

impl ScoreDef {
    /// Applies one event.
    pub fn update(&self, s: &mut ScoreSlot, name: &str, ts: f64, props: &Value, cx: &Ctx) {
        for r in &self.rules {
            if r.event == name && r.filter.as_ref().map_or(true, |c| eval_condition(props, c, cx)) {
                add(s, r.points, ts, self.half_life);
            }
        }
    }

    /// Adds `points` earned at `ts`.
    pub fn add(&self, s: &mut ScoreSlot, points: f64, ts: f64) {
        add(s, points, ts, self.half_life);
    }

    /// The value at `now`, as read ([`read`]).
    pub fn value_at(&self, s: &ScoreSlot, now: f64) -> f64 {
        read(decay(s.v, now - s.t, self.half_life))
    }

    /// When the value as read next changes its comparison with `threshold` after `now` (+1 ms,
    /// so it is past it). A decaying magnitude reads r until it goes below r − 0.005: with r the
    /// least reading ≥ |threshold|, the comparisons change below r + 0.005 (when r is the
    /// threshold itself) and below r − 0.005.
    pub fn crossing(&self, s: &ScoreSlot, threshold: f64, now: f64) -> Option<f64> {
        let hl = self.half_life?;
        // Opposite signs: the reading tends to 0 and never passes the threshold.
        if s.v * threshold < 0.0 {
            return None;
        }
        let a = abs(threshold);
        let r = read(a);
        let r = if r < a { r + 0.01 } else { r };
        let (m, lo) = (abs(s.v), r - 0.005);
        let hi = if r == a { r + 0.005 } else { lo };
        // Still above `hi` now: that crossing comes first.
        let ratio = m / if decay(m, now - s.t, Some(hl)) > hi { hi } else { lo };
        if !(ratio > 1.0) || !ratio.is_finite() {
            return None;
        }
        let t = s.t + hl * log2(ratio) + 1.0;
        (t > now).then_some(t)
    }
}

/// Beyond this (2^52) every double is whole, and `as i64` would saturate.
const BIG: f64 = 4_503_599_627_370_496.0;

fn abs(x: f64) -> f64 {
    if x < 0.0 { -x } else { x }
}

/// A score as read (profile, conditions, explain): 2 decimals, halves away from zero. Stored
/// scores stay exact, so merges do not depend on their order.
pub fn read(v: f64) -> f64 {
    let x = v * 100.0;
    if !(abs(x) < BIG) {
        return v;
    }
    (if x < 0.0 { x - 0.5 } else { x + 0.5 }) as i64 as f64 / 100.0
}

fn add(s: &mut ScoreSlot, points: f64, ts: f64, hl: Option<f64>) {
    if ts >= s.t {
        s.v = decay(s.v, ts - s.t, hl) + points;
        s.t = ts;
    } else {
        s.v += decay(points, s.t - ts, hl);
    }
}

/// `v` after `dt` ms of decay with half-life `hl`.
pub fn decay(v: f64, dt: f64, hl: Option<f64>) -> f64 {
    match hl {
        Some(h) if dt > 0.0 && v != 0.0 => v * exp2(-dt / h),
        _ => v,
    }
}

/// `2^x`.
pub fn exp2(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < -1074.0 {
        return 0.0;
    }
    if x > 1023.0 {
        return f64::INFINITY;
    }
    let n = floor(x);
    let f = (x - n) * core::f64::consts::LN_2;
    // e^f for f in [0, ln 2): Taylor series, 18 terms is below one ulp.
    let (mut term, mut sum) = (1.0, 1.0);
    for i in 1..18 {
        term *= f / i as f64;
        sum += term;
    }
    let n = n as i64;
    // 2^n, in two steps so subnormal results stay exact enough.
    let half = n / 2;
    sum * pow2i(half) * pow2i(n - half)
}

fn pow2i(n: i64) -> f64 {
    f64::from_bits(((n + 1023).clamp(0, 2046) as u64) << 52)
}

/// `log2(x)` for `x > 0`.
pub fn log2(x: f64) -> f64 {
    if !(x > 0.0) || !x.is_finite() {
        return f64::NAN;
    }
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52)); // [1, 2)
    // ln m = 2 atanh(s), s = (m-1)/(m+1) in [0, 1/3)
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let (mut term, mut sum) = (s, 0.0);
    let mut k = 1.0;
    while k < 60.0 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    e as f64 + 2.0 * sum / core::f64::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp2_and_log2_are_accurate() {
        assert_eq!(exp2(0.0), 1.0);
        assert_eq!(exp2(-1.0), 0.5);
        assert_eq!(exp2(10.0), 1024.0);
        for x in [-30.5, -2.25, -0.1, 0.3, 0.999, 7.75] {
            let want = (2f64).powf(x);
            assert!(((exp2(x) - want) / want).abs() < 1e-14, "{x}");
            let y = (x as f64).abs() + 0.5;
            assert!((log2(y) - y.log2()).abs() < 1e-13, "{y}");
        }
    }

    #[test]
    fn read_rounds_to_two_decimals_and_leaves_huge_values_alone() {
        assert_eq!(read(2.9999999598873157), 3.0);
        assert_eq!(read(1.004999), 1.0);
        assert_eq!(read(1.005001), 1.01);
        assert_eq!(read(-2.675001), -2.68);
        assert_eq!(read(-0.001), 0.0);
        assert_eq!(read(1e300), 1e300);
        assert_eq!(read(-1e20), -1e20);
        assert!(read(f64::NAN).is_nan());
        assert_eq!(read(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn decay_halves_every_half_life() {
        let hl = Some(7.0 * 86_400_000.0);
        assert_eq!(decay(20.0, 7.0 * 86_400_000.0, hl), 10.0);
        assert_eq!(decay(20.0, 14.0 * 86_400_000.0, hl), 5.0);
        let mut a = ScoreSlot { key: 1, v: 10.0, t: 0.0 };
        let b = ScoreSlot { key: 1, v: 4.0, t: 7.0 * 86_400_000.0 };
        let mut c = b.clone();
        // Two states of one score (a login's merge) add after decay to the later time.
        add(&mut a, b.v, b.t, hl);
        add(&mut c, 10.0, 0.0, hl);
        assert_eq!((a.v, a.t), (9.0, 7.0 * 86_400_000.0));
        assert_eq!((c.v, c.t), (a.v, a.t), "in either order");
    }
}
