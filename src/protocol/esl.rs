//! FreeSWITCH event socket (ESL, inbound mode) wire format: a frame is a header block
//! (`Name: value` lines, LF-terminated, ended by an empty line) and, when the headers carry
//! `Content-Length`, that many bytes of body. The `Content-Type` says what the body is:
//! `auth/request`, `command/reply` (`Reply-Text: +OK ...`/`-ERR ...`), `api/response`,
//! `text/event-plain` (a nested header block with URL-encoded values, possibly with its own
//! body), `text/event-json` (a JSON object of strings, `_body` for the event body),
//! `text/disconnect-notice`, `log/data`.
//!
//! The decoder is streaming with caps on header and body size; a broken frame is an error after
//! which the connection must be dropped (the stream cannot be resynchronised).

use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
pub struct EslLimits {
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
}

impl Default for EslLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EslError {
    #[error("header block larger than {0} bytes")]
    HeaderTooLarge(usize),
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("bad header line: {0}")]
    BadHeader(String),
    #[error("bad Content-Length: {0}")]
    BadLength(String),
    #[error("the connection ended in the middle of a frame")]
    Truncated,
    #[error("an argument may not contain a newline")]
    Injection,
}

/// One frame from the socket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EslFrame {
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// An event, from a `text/event-json` or `text/event-plain` frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EslEvent {
    pub headers: HashMap<String, String>,
    pub body: Option<String>,
}

impl EslEvent {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn name(&self) -> Option<&str> {
        self.get("Event-Name")
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Decodes `%XX` escapes (FreeSWITCH URL-encodes event-plain values).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_header_block(text: &str) -> Result<Vec<(String, String)>, EslError> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| EslError::BadHeader(line.chars().take(60).collect()))?;
        out.push((
            k.trim().to_string(),
            v.strip_prefix(' ').unwrap_or(v).to_string(),
        ));
    }
    Ok(out)
}

impl EslFrame {
    pub fn get(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn content_type(&self) -> Option<&str> {
        self.get("Content-Type")
    }

    pub fn reply_text(&self) -> Option<&str> {
        self.get("Reply-Text")
    }

    pub fn body_text(&self) -> Option<String> {
        self.body
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// The event this frame carries, if it is an event frame.
    pub fn event(&self) -> Result<Option<EslEvent>, EslError> {
        let body = match &self.body {
            Some(b) => b,
            None => return Ok(None),
        };
        match self.content_type() {
            Some("text/event-json") => {
                let value: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|e| EslError::BadHeader(format!("event JSON: {e}")))?;
                let serde_json::Value::Object(map) = value else {
                    return Err(EslError::BadHeader("event JSON is not an object".into()));
                };
                let mut event = EslEvent::default();
                for (k, v) in map {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if k == "_body" {
                        event.body = Some(text);
                    } else {
                        event.headers.insert(k, text);
                    }
                }
                Ok(Some(event))
            }
            Some("text/event-plain") => {
                let text = String::from_utf8_lossy(body);
                let (head, rest) = match text.find("\n\n") {
                    Some(i) => (&text[..i], Some(&text[i + 2..])),
                    None => (&text[..], None),
                };
                let mut event = EslEvent::default();
                for (k, v) in parse_header_block(head)? {
                    event.headers.insert(k, percent_decode(&v));
                }
                if let (Some(len), Some(rest)) = (
                    event
                        .get("Content-Length")
                        .and_then(|l| l.parse::<usize>().ok()),
                    rest,
                ) {
                    event.body = Some(rest.chars().take(len).collect());
                }
                Ok(Some(event))
            }
            _ => Ok(None),
        }
    }
}

#[derive(Debug, Default)]
pub struct Decoder {
    limits: EslLimits,
    buf: Vec<u8>,
    pending: Option<(Vec<(String, String)>, usize)>,
}

impl Decoder {
    pub fn new(limits: EslLimits) -> Self {
        Self {
            limits,
            ..Default::default()
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn next_frame(&mut self) -> Result<Option<EslFrame>, EslError> {
        loop {
            if let Some((headers, len)) = &self.pending {
                if self.buf.len() < *len {
                    return Ok(None);
                }
                let body: Vec<u8> = self.buf.drain(..*len).collect();
                let headers = headers.clone();
                self.pending = None;
                return Ok(Some(EslFrame {
                    headers,
                    body: Some(body),
                }));
            }
            // Blank lines between frames are padding.
            let skip = self
                .buf
                .iter()
                .take_while(|b| **b == b'\n' || **b == b'\r')
                .count();
            if skip > 0 {
                self.buf.drain(..skip);
            }
            let Some(end) = find_blank_line(&self.buf) else {
                if self.buf.len() > self.limits.max_header_bytes {
                    return Err(EslError::HeaderTooLarge(self.limits.max_header_bytes));
                }
                return Ok(None);
            };
            if end.0 > self.limits.max_header_bytes {
                return Err(EslError::HeaderTooLarge(self.limits.max_header_bytes));
            }
            let head = String::from_utf8_lossy(&self.buf[..end.0]).into_owned();
            self.buf.drain(..end.1);
            let headers = parse_header_block(&head)?;
            match header(&headers, "Content-Length") {
                Some(l) => {
                    let len: usize = l
                        .trim()
                        .parse()
                        .map_err(|_| EslError::BadLength(l.to_string()))?;
                    if len > self.limits.max_body_bytes {
                        return Err(EslError::BodyTooLarge(self.limits.max_body_bytes));
                    }
                    self.pending = Some((headers, len));
                }
                None => {
                    return Ok(Some(EslFrame {
                        headers,
                        body: None,
                    }));
                }
            }
        }
    }

    pub fn finish(&self) -> Result<(), EslError> {
        if self.pending.is_none() && self.buf.iter().all(|b| b.is_ascii_whitespace()) {
            Ok(())
        } else {
            Err(EslError::Truncated)
        }
    }
}

/// (end of the header text, end of the blank line) for the first `\n\n` (or `\r\n\r\n`).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            let next = i + 1;
            if buf.get(next) == Some(&b'\n') {
                return Some((i, next + 1));
            }
            if buf.get(next) == Some(&b'\r') && buf.get(next + 1) == Some(&b'\n') {
                return Some((i, next + 2));
            }
        }
        i += 1;
    }
    None
}

fn no_newline(parts: &[&str]) -> Result<(), EslError> {
    if parts.iter().any(|p| p.contains(['\n', '\r'])) {
        Err(EslError::Injection)
    } else {
        Ok(())
    }
}

pub fn auth(password: &str) -> Result<String, EslError> {
    no_newline(&[password])?;
    Ok(format!("auth {password}\n\n"))
}

/// `event json NAME NAME ...`
pub fn event_json(names: &[&str]) -> Result<String, EslError> {
    no_newline(names)?;
    Ok(format!("event json {}\n\n", names.join(" ")))
}

pub fn api(command: &str) -> Result<String, EslError> {
    no_newline(&[command])?;
    Ok(format!("api {command}\n\n"))
}

pub fn bgapi(command: &str, job_uuid: &str) -> Result<String, EslError> {
    no_newline(&[command, job_uuid])?;
    Ok(format!("bgapi {command}\nJob-UUID: {job_uuid}\n\n"))
}

pub fn exit() -> &'static str {
    "exit\n\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn session() -> String {
        let json = r#"{"Event-Name":"CHANNEL_ANSWER","Unique-ID":"b-1","Channel-Call-UUID":"a-1","Caller-Caller-ID-Number":"13800138000","Caller-Destination-Number":"1001","Call-Direction":"outbound"}"#;
        let plain_body = "Job-UUID: j-1\nEvent-Name: BACKGROUND_JOB\nJob-Command: originate\nContent-Length: 16\n\n+OK 5f3c-uuid-9\n";
        let plain_body = plain_body.replace(
            "Job-Command: originate",
            "Job-Command-Arg: user%2F1001%20%26park()",
        );
        format!(
            "Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\nContent-Length: {}\nContent-Type: text/event-json\n\n{json}Content-Length: {}\nContent-Type: text/event-plain\n\n{plain_body}Content-Type: text/disconnect-notice\nContent-Length: 9\n\nGoodbye!\n",
            json.len(),
            plain_body.len()
        )
    }

    fn decode_all(chunks: &[&[u8]]) -> Vec<EslFrame> {
        let mut d = Decoder::new(EslLimits::default());
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
        }
        out
    }

    #[test]
    fn frames_and_events_decode_whatever_the_split() {
        let s = session();
        let whole = decode_all(&[s.as_bytes()]);
        assert_eq!(whole.len(), 5);
        assert_eq!(whole[0].content_type(), Some("auth/request"));
        assert_eq!(whole[1].reply_text(), Some("+OK accepted"));
        let answer = whole[2].event().unwrap().unwrap();
        assert_eq!(answer.name(), Some("CHANNEL_ANSWER"));
        assert_eq!(answer.get("Channel-Call-UUID"), Some("a-1"));
        let job = whole[3].event().unwrap().unwrap();
        assert_eq!(job.name(), Some("BACKGROUND_JOB"));
        assert_eq!(job.get("Job-Command-Arg"), Some("user/1001 &park()"));
        assert_eq!(job.body.as_deref(), Some("+OK 5f3c-uuid-9\n"));
        assert_eq!(whole[4].body_text().as_deref(), Some("Goodbye!\n"));
        let bytes = s.as_bytes();
        for split in 0..bytes.len() {
            assert_eq!(
                decode_all(&[&bytes[..split], &bytes[split..]]),
                whole,
                "split at {split}"
            );
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_all(&singles), whole);
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut d = Decoder::new(EslLimits::default());
        d.feed(b"Content-Type: x\nContent-Length: lots\n\n");
        assert!(matches!(d.next_frame(), Err(EslError::BadLength(_))));
        let mut d = Decoder::new(EslLimits::default());
        d.feed(b"no colon here\n\n");
        assert!(matches!(d.next_frame(), Err(EslError::BadHeader(_))));
        let mut d = Decoder::new(EslLimits {
            max_body_bytes: 10,
            ..Default::default()
        });
        d.feed(b"Content-Length: 11\n\n");
        assert_eq!(d.next_frame(), Err(EslError::BodyTooLarge(10)));
        let mut d = Decoder::new(EslLimits::default());
        d.feed(b"Content-Length: 5\n\nab");
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.finish(), Err(EslError::Truncated));
    }

    #[test]
    fn commands_encode_and_refuse_newlines() {
        assert_eq!(auth("ClueCon").unwrap(), "auth ClueCon\n\n");
        assert_eq!(
            event_json(&["CHANNEL_CREATE", "CUSTOM", "callcenter::info"]).unwrap(),
            "event json CHANNEL_CREATE CUSTOM callcenter::info\n\n"
        );
        assert_eq!(
            bgapi("originate user/1001 &park()", "j-1").unwrap(),
            "bgapi originate user/1001 &park()\nJob-UUID: j-1\n\n"
        );
        assert!(api("status\n\nexit").is_err());
        assert_eq!(percent_decode("a%20b%2Fc%zz%"), "a b/c%zz%");
    }

    proptest! {
        #[test]
        fn no_input_panics(data in proptest::collection::vec(any::<u8>(), 0..2048), split in 0usize..2048) {
            let split = split.min(data.len());
            let mut d = Decoder::new(EslLimits::default());
            d.feed(&data[..split]);
            while let Ok(Some(f)) = d.next_frame() { let _ = f.event(); }
            d.feed(&data[split..]);
            while let Ok(Some(f)) = d.next_frame() { let _ = f.event(); }
            let _ = d.finish();
        }
    }
}
