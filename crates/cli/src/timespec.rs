//! Times given on the command line: RFC 3339 (`2024-05-01T08:00:00Z`) or a span from
//! now (`90s`, `30m`, `2h`, `3d`, `1w`): back for `--since`, ahead for `--expires`.

use chrono::{DateTime, Duration, Utc};

/// Parses `text` as an absolute time or as a span before `now`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    now.checked_sub_signed(parse_span(text)?)
        .ok_or_else(|| invalid(text))
}

/// Parses `text` as an absolute time or as a span after `now`.
pub fn parse_until(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    now.checked_add_signed(parse_span(text)?)
        .ok_or_else(|| invalid(text))
}

fn parse_span(text: &str) -> Result<Duration, String> {
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| invalid(text))?;
    let (number, unit) = text.split_at(unit_at);
    let n: i64 = number.parse().map_err(|_| invalid(text))?;
    let span = match unit {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    };
    span.ok_or_else(|| invalid(text))
}

fn invalid(text: &str) -> String {
    format!("{text:?} is neither an RFC 3339 time (2024-05-01T08:00:00Z) nor a span like 30m, 2h, 3d or 1w")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_absolute_times_and_spans() {
        let now = Utc::now();
        let at = "2024-05-01T10:00:00+02:00";
        assert_eq!(
            parse_since(at, now).map(|t| t.to_rfc3339()),
            Ok("2024-05-01T08:00:00+00:00".to_owned())
        );
        assert_eq!(parse_since("2h", now), Ok(now - Duration::hours(2)));
        assert_eq!(parse_since("3d", now), Ok(now - Duration::days(3)));
        assert_eq!(parse_since("45s", now), Ok(now - Duration::seconds(45)));
        assert_eq!(parse_since("1w", now), Ok(now - Duration::weeks(1)));
        for bad in [
            "",
            "h",
            "2",
            "2y",
            "-2h",
            "99999999999999999999d",
            "yesterday",
        ] {
            assert!(parse_since(bad, now).is_err(), "{bad:?} should be refused");
            assert!(parse_until(bad, now).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(parse_until("2h", now), Ok(now + Duration::hours(2)));
        assert_eq!(
            parse_until(at, now).map(|t| t.to_rfc3339()),
            Ok("2024-05-01T08:00:00+00:00".to_owned())
        );
    }
}
