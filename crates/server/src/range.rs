//! Single-range `Range: bytes=…` requests (RFC 9110 §14), enough for video seeking.

use std::ops::Range;

/// What a `Range` header asks of a resource of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: send everything.
    Full,
    /// Send this part (end exclusive), as 206.
    Part(Range<u64>),
    /// Cannot be satisfied: 416.
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        // Multiple ranges are allowed to be answered with the whole representation.
        return RangeRequest::Full;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeRequest::Unsatisfiable;
    };
    let (start, end) = (start.trim(), end.trim());
    let range = match (start.is_empty(), end.is_empty()) {
        (true, true) => return RangeRequest::Unsatisfiable,
        (true, false) => match end.parse::<u64>() {
            Ok(0) | Err(_) => return RangeRequest::Unsatisfiable,
            Ok(suffix) => size.saturating_sub(suffix)..size,
        },
        (false, _) => {
            let Ok(first) = start.parse::<u64>() else {
                return RangeRequest::Unsatisfiable;
            };
            let last = if end.is_empty() {
                size.saturating_sub(1)
            } else {
                match end.parse::<u64>() {
                    Ok(last) if last >= first => last.min(size.saturating_sub(1)),
                    _ => return RangeRequest::Unsatisfiable,
                }
            };
            first..last.saturating_add(1)
        }
    };
    if range.start >= size || range.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Part(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn common_forms() {
        assert_eq!(parse(None, 10), RangeRequest::Full);
        assert_eq!(parse(Some("bytes=0-"), 10), RangeRequest::Part(0..10));
        assert_eq!(parse(Some("bytes=2-4"), 10), RangeRequest::Part(2..5));
        assert_eq!(parse(Some("bytes=8-100"), 10), RangeRequest::Part(8..10));
        assert_eq!(parse(Some("bytes=-3"), 10), RangeRequest::Part(7..10));
        assert_eq!(parse(Some("bytes=10-"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=5-2"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), RangeRequest::Unsatisfiable);
    }

    proptest! {
        #[test]
        fn parts_always_lie_inside_the_resource(h in ".{0,40}", size in 0u64..10_000) {
            if let RangeRequest::Part(r) = parse(Some(&h), size) {
                prop_assert!(r.start < r.end && r.end <= size);
            }
        }

        #[test]
        fn numeric_ranges_never_escape(a in any::<u64>(), b in any::<u64>(), size in 0u64..10_000) {
            if let RangeRequest::Part(r) = parse(Some(&format!("bytes={a}-{b}")), size) {
                prop_assert!(r.start < r.end && r.end <= size && r.start == a);
            }
        }
    }
}
