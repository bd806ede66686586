//! Time in the core: milliseconds since the Unix epoch as `f64` (what `Date.now()` gives),
//! passed in by the host. This module formats ISO-8601 timestamps and parses the duration
//! strings of the segment language (`"30m"`, `"24h"`, `"7d"`, `"2w"`) without `core::fmt`.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::host::format_uint;

/// Milliseconds in a minute.
pub const MINUTE: f64 = 60_000.0;
/// Milliseconds in an hour.
pub const HOUR: f64 = 60.0 * MINUTE;
/// Milliseconds in a day.
pub const DAY: f64 = 24.0 * HOUR;

/// What a duration must be, in the errors of the options and of the definitions (one text).
pub const MUST_BE_DURATION: &str = "must be a duration: a positive integer and m, h, d or w (\"30m\", \"7d\")";

/// Parses a duration: an integer and a unit `m`, `h`, `d` or `w`. Returns milliseconds.
pub fn parse_duration(s: &str) -> Option<f64> {
    // The unit is the last byte (ASCII, so what precedes it is a str); no byte slicing (a
    // panic path would pull core::fmt into the wasm) and no char patterns (their UTF-8 encoder).
    let (&unit, _) = s.as_bytes().split_last()?;
    let unit_ms = match unit {
        b'm' => MINUTE,
        b'h' => HOUR,
        b'd' => DAY,
        b'w' => 7.0 * DAY,
        _ => return None,
    };
    let digits = s.get(0..s.len() - 1)?;
    let n = crate::core::host::parse_uint(digits)? as f64;
    if n <= 0.0 {
        return None;
    }
    Some(n * unit_ms)
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.sssZ` (what `Date.prototype.toISOString` gives).
pub fn iso(ms: f64) -> String {
    let ms = if ms.is_finite() { floor(ms) as i64 } else { 0 };
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    pad(&mut out, y as u64, 4);
    out.push('-');
    pad(&mut out, m as u64, 2);
    out.push('-');
    pad(&mut out, d as u64, 2);
    out.push('T');
    pad(&mut out, (rem / 3_600_000) as u64, 2);
    out.push(':');
    pad(&mut out, (rem / 60_000 % 60) as u64, 2);
    out.push(':');
    pad(&mut out, (rem / 1000 % 60) as u64, 2);
    out.push('.');
    pad(&mut out, (rem % 1000) as u64, 3);
    out.push('Z');
    out
}

/// `x.floor()` for finite values in i64 range, without libm (not in `core` on stable).
pub fn floor(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x { t - 1.0 } else { t }
}

fn pad(out: &mut String, n: u64, width: usize) {
    let s = format_uint(n);
    for _ in s.len()..width {
        out.push('0');
    }
    out.push_str(&s);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_javascript() {
        assert_eq!(iso(0.0), "1970-01-01T00:00:00.000Z");
        // new Date(1764403200123).toISOString()
        assert_eq!(iso(1_764_403_200_123.0), "2025-11-29T08:00:00.123Z");
        assert_eq!(iso(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(30.0 * MINUTE));
        assert_eq!(parse_duration("24h"), Some(DAY));
        assert_eq!(parse_duration("7d"), Some(7.0 * DAY));
        assert_eq!(parse_duration("2w"), Some(14.0 * DAY));
        for bad in ["", "d", "7", "7s", "-1d", "1.5d", "0d", "7 d", " 7d", "7d "] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
