//! An incremental parser for Server-Sent Events (the `text/event-stream` format of the
//! HTML standard), fed with whatever chunks the network delivers. Small on purpose: only
//! `event` and `data` matter here; comments (keep-alives), `id` and `retry` are skipped.

/// One dispatched message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseMessage {
    /// The `event:` field, or `message` when absent.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// A line or message grew past the limit: the stream is not what the API sends.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the event stream sent a message larger than {limit} bytes")]
pub struct SseTooLarge {
    pub limit: usize,
}

/// Parser state between chunks.
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    /// The previous byte ended a line with `\r`; a `\n` right after it is the same break.
    after_cr: bool,
    /// No line has ended yet, so a byte-order mark may still be stripped.
    at_start: bool,
    limit: usize,
}

/// A byte-order mark, allowed once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Messages of this API are a few KiB; anything far larger is refused.
pub const DEFAULT_LIMIT: usize = 1024 * 1024;

impl Default for SseParser {
    fn default() -> Self {
        Self::new(DEFAULT_LIMIT)
    }
}

impl SseParser {
    /// A parser refusing lines or messages longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            event: String::new(),
            data: String::new(),
            has_data: false,
            after_cr: false,
            at_start: true,
            limit,
        }
    }

    /// Feeds the next chunk and returns the messages it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseMessage>, SseTooLarge> {
        let mut messages = Vec::new();
        for &byte in chunk {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let mut line = std::mem::take(&mut self.line);
                    if std::mem::take(&mut self.at_start) && line.starts_with(BOM) {
                        line.drain(..BOM.len());
                    }
                    if let Some(message) = self.line_done(&line)? {
                        messages.push(message);
                    }
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= self.limit {
                        return Err(SseTooLarge { limit: self.limit });
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(messages)
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<SseMessage>, SseTooLarge> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(SseTooLarge { limit: self.limit });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseMessage> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseMessage {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseMessage> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(parser.push(chunk).unwrap_or_default());
        }
        out
    }

    fn message(event: &str, data: &str) -> SseMessage {
        SseMessage {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn parses_what_the_server_sends() {
        let stream = b": keep-alive\n\nevent: event\ndata: {\"a\":1}\n\nevent: lagged\ndata: 3\n\n";
        assert_eq!(
            parse_all(&[stream]),
            vec![message("event", "{\"a\":1}"), message("lagged", "3")]
        );
    }

    #[test]
    fn follows_the_standard_on_edge_cases() {
        let stream = b"\xEF\xBB\xBFdata\ndata:x\ndata:  y\nid: 7\nretry: 10\n\ndata: only\r\n\r\nevent: e\n\n";
        assert_eq!(
            parse_all(&[stream]),
            vec![message("message", "\nx\n y"), message("message", "only")]
        );
        assert_eq!(parse_all(&[b"data: unterminated"]), vec![]);
    }

    #[test]
    fn a_split_crlf_is_one_line_break() {
        assert_eq!(
            parse_all(&[b"data: a\r", b"\n\r", b"\n"]),
            vec![message("message", "a")]
        );
        assert_eq!(
            parse_all(&[b"\xEF", b"\xBB", b"\xBFdata: b\n\n"]),
            vec![message("message", "b")]
        );
    }

    #[test]
    fn oversized_lines_are_refused() {
        let mut parser = SseParser::new(16);
        assert!(parser.push(&[b'x'; 17]).is_err());
        let mut parser = SseParser::new(16);
        assert!(parser
            .push(b"data: 0123456789\ndata: 0123456789\n")
            .is_err());
    }

    fn any_message() -> impl Strategy<Value = SseMessage> {
        (
            "[a-z]{1,8}",
            proptest::collection::vec("[^\r\n]{0,20}", 1..4),
        )
            .prop_map(|(event, lines)| SseMessage {
                event,
                data: lines.join("\n"),
            })
    }

    fn encode(messages: &[SseMessage], breaks: &[&str], comments: bool) -> Vec<u8> {
        let mut out = String::new();
        let mut n = 0;
        let mut previous = "";
        let mut newline = || {
            n += 1;
            let mut next = breaks[n % breaks.len()];
            if previous == "\r" && next == "\n" {
                // A lone `\n` right after `\r` would read as one `\r\n` break.
                next = "\r\n";
            }
            previous = next;
            next
        };
        for m in messages {
            if comments {
                out.push_str(": ping");
                out.push_str(newline());
            }
            out.push_str(&format!("event: {}", m.event));
            out.push_str(newline());
            for line in m.data.split('\n') {
                out.push_str(&format!("data: {line}"));
                out.push_str(newline());
            }
            out.push_str(newline());
        }
        out.into_bytes()
    }

    proptest! {
        #[test]
        fn round_trips_with_any_line_breaks(
            messages in proptest::collection::vec(any_message(), 0..6),
            breaks in proptest::sample::subsequence(vec!["\n", "\r\n", "\r"], 1..=3),
            comments in any::<bool>(),
        ) {
            let bytes = encode(&messages, &breaks, comments);
            prop_assert_eq!(parse_all(&[&bytes]), messages);
        }

        #[test]
        fn chunking_never_changes_the_result(
            messages in proptest::collection::vec(any_message(), 0..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let bytes = encode(&messages, &["\r\n", "\n", "\r"], true);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&bytes[start..cut]);
                start = cut;
            }
            chunks.push(&bytes[start..]);
            prop_assert_eq!(parse_all(&chunks), messages);
        }

        #[test]
        fn never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut parser = SseParser::new(128);
            for chunk in &chunks {
                let _ = parser.push(chunk);
            }
        }
    }
}
