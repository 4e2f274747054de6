//! Asterisk Manager Interface (AMI) wire format: a banner line on connect
//! (`Asterisk Call Manager/5.0.x`), then messages of `Key: Value` lines ended by an empty line.
//! Lines end in CRLF (a bare LF is accepted). Keys repeat (`Variable:`), order matters, lookup is
//! case-insensitive. Old-style `Response: Follows` command output (lines without a colon, up to
//! `--END COMMAND--`) is gathered as `Output` fields.
//!
//! The decoder is streaming: feed bytes split anywhere, take whole messages out. It caps line
//! length, fields per message and message size; past a cap the connection must be dropped. A line
//! without a colon (outside command output) is skipped and counted, so one garbage line cannot
//! desynchronise the stream.

use std::fmt::Write as _;

use md5::{Digest, Md5};

#[derive(Debug, Clone, Copy)]
pub struct AmiLimits {
    pub max_line_bytes: usize,
    pub max_fields: usize,
    pub max_message_bytes: usize,
}

impl Default for AmiLimits {
    fn default() -> Self {
        Self {
            max_line_bytes: 8 * 1024,
            max_fields: 1024,
            max_message_bytes: 256 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmiError {
    #[error("line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("message with more than {0} fields")]
    TooManyFields(usize),
    #[error("message larger than {0} bytes")]
    MessageTooLarge(usize),
    #[error("the connection ended in the middle of a message")]
    Truncated,
    #[error("a value may not contain CR or LF: {0}")]
    Injection(String),
}

/// One AMI message: ordered fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    fields: Vec<(String, String)>,
}

impl Message {
    pub fn new(fields: Vec<(String, String)>) -> Self {
        Self { fields }
    }

    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The first value of a key (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn event(&self) -> Option<&str> {
        self.get("Event")
    }

    pub fn response(&self) -> Option<&str> {
        self.get("Response")
    }

    pub fn action_id(&self) -> Option<&str> {
        self.get("ActionID")
    }

    /// Channel variables in both forms Asterisk uses: `ChanVariable(name): value` and
    /// `ChanVariable: name=value`.
    pub fn chan_variables(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (k, v) in &self.fields {
            if let Some(name) = k
                .strip_prefix("ChanVariable(")
                .and_then(|r| r.strip_suffix(')'))
            {
                out.push((name.to_string(), v.clone()));
            } else if k.eq_ignore_ascii_case("ChanVariable") {
                if let Some((name, value)) = v.split_once('=') {
                    out.push((name.to_string(), value.to_string()));
                }
            }
        }
        out
    }
}

/// What the decoder yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The greeting line, e.g. `Asterisk Call Manager/5.0.1`.
    Banner(String),
    Message(Message),
}

#[derive(Debug, Default)]
pub struct Decoder {
    limits: AmiLimits,
    buf: Vec<u8>,
    start: usize,
    banner_seen: bool,
    current: Vec<(String, String)>,
    current_bytes: usize,
    in_command_output: bool,
    /// Lines skipped because they were not `Key: Value`.
    pub skipped_lines: u64,
}

impl Decoder {
    pub fn new(limits: AmiLimits) -> Self {
        Self {
            limits,
            ..Default::default()
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if the bytes fed so far hold one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, AmiError> {
        loop {
            let rest = &self.buf[self.start..];
            let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                if rest.len() > self.limits.max_line_bytes {
                    return Err(AmiError::LineTooLong(self.limits.max_line_bytes));
                }
                if self.start > 64 * 1024 {
                    self.buf.drain(..self.start);
                    self.start = 0;
                }
                return Ok(None);
            };
            if nl > self.limits.max_line_bytes {
                return Err(AmiError::LineTooLong(self.limits.max_line_bytes));
            }
            let mut line = &rest[..nl];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            self.start += nl + 1;
            if !self.banner_seen {
                self.banner_seen = true;
                if !line.contains(": ") && !line.is_empty() {
                    return Ok(Some(Frame::Banner(line)));
                }
            }
            if line.is_empty() {
                if self.current.is_empty() {
                    continue;
                }
                self.in_command_output = false;
                self.current_bytes = 0;
                return Ok(Some(Frame::Message(Message::new(std::mem::take(
                    &mut self.current,
                )))));
            }
            self.current_bytes += line.len() + 2;
            if self.current_bytes > self.limits.max_message_bytes {
                return Err(AmiError::MessageTooLarge(self.limits.max_message_bytes));
            }
            if self.current.len() >= self.limits.max_fields {
                return Err(AmiError::TooManyFields(self.limits.max_fields));
            }
            if self.in_command_output && line == "--END COMMAND--" {
                self.in_command_output = false;
                continue;
            }
            match line.split_once(':') {
                Some((key, value))
                    if (!key.is_empty() && !key.contains(' '))
                        || key.starts_with("ChanVariable(") =>
                {
                    let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                    let follows = key.eq_ignore_ascii_case("Response")
                        && value.eq_ignore_ascii_case("Follows");
                    self.current.push((key.to_string(), value));
                    if follows {
                        self.in_command_output = true;
                    }
                }
                _ if self.in_command_output => self.current.push(("Output".into(), line)),
                _ => self.skipped_lines += 1,
            }
        }
    }

    /// At end of stream: an error when a message was cut off.
    pub fn finish(&self) -> Result<(), AmiError> {
        if self.current.is_empty()
            && self.buf[self.start..]
                .iter()
                .all(|b| b.is_ascii_whitespace())
        {
            Ok(())
        } else {
            Err(AmiError::Truncated)
        }
    }
}

/// An action to send: `Action: Name`, `ActionID`, then the fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub name: String,
    pub action_id: String,
    pub fields: Vec<(String, String)>,
}

impl Action {
    pub fn new(name: &str, action_id: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            action_id: action_id.into(),
            fields: Vec::new(),
        }
    }

    pub fn field(mut self, key: &str, value: impl Into<String>) -> Self {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// The bytes on the wire; refuses CR/LF in any key or value (header injection).
    pub fn encode(&self) -> Result<String, AmiError> {
        let mut out = String::with_capacity(64 + self.fields.len() * 32);
        let check = |s: &str| {
            if s.contains(['\r', '\n']) {
                Err(AmiError::Injection(s.chars().take(40).collect()))
            } else {
                Ok(())
            }
        };
        check(&self.name)?;
        check(&self.action_id)?;
        let _ = write!(
            out,
            "Action: {}\r\nActionID: {}\r\n",
            self.name, self.action_id
        );
        for (k, v) in &self.fields {
            check(k)?;
            check(v)?;
            let _ = write!(out, "{k}: {v}\r\n");
        }
        out.push_str("\r\n");
        Ok(out)
    }
}

pub fn login(action_id: &str, username: &str, secret: &str) -> Action {
    Action::new("Login", action_id)
        .field("Username", username)
        .field("Secret", secret)
        .field("Events", "off")
}

pub fn challenge(action_id: &str) -> Action {
    Action::new("Challenge", action_id).field("AuthType", "MD5")
}

/// The MD5 login key: hex(md5(challenge + secret)).
pub fn md5_key(challenge: &str, secret: &str) -> String {
    let digest = Md5::digest(format!("{challenge}{secret}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn login_md5(action_id: &str, username: &str, key: &str) -> Action {
    Action::new("Login", action_id)
        .field("AuthType", "MD5")
        .field("Username", username)
        .field("Key", key)
        .field("Events", "off")
}

pub fn events(action_id: &str, mask: &str) -> Action {
    Action::new("Events", action_id).field("EventMask", mask)
}

pub fn ping(action_id: &str) -> Action {
    Action::new("Ping", action_id)
}

pub fn core_show_channels(action_id: &str) -> Action {
    Action::new("CoreShowChannels", action_id)
}

/// `QueueStatus`: every queue's members and the callers waiting in it, as `QueueParams`,
/// `QueueMember` and `QueueEntry` events ended by `QueueStatusComplete`.
pub fn queue_status(action_id: &str) -> Action {
    Action::new("QueueStatus", action_id)
}

pub fn logoff(action_id: &str) -> Action {
    Action::new("Logoff", action_id)
}

/// `Originate` with `Async: true`; variables as repeated `Variable: name=value` lines.
pub fn originate(
    action_id: &str,
    channel: &str,
    context: &str,
    exten: &str,
    caller_id: Option<&str>,
    timeout_ms: u64,
    variables: &[(&str, String)],
) -> Action {
    let mut a = Action::new("Originate", action_id)
        .field("Channel", channel)
        .field("Context", context)
        .field("Exten", exten)
        .field("Priority", "1")
        .field("Timeout", timeout_ms.to_string())
        .field("Async", "true");
    if let Some(cid) = caller_id {
        a = a.field("CallerID", cid);
    }
    for (k, v) in variables {
        a = a.field("Variable", format!("{k}={v}"));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SESSION: &str = "Asterisk Call Manager/5.0.1\r\nResponse: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n\
Event: DialBegin\r\nPrivilege: call,all\r\nChannel: PJSIP/trunk-00000001\r\nCallerIDNum: 13800138000\r\nUniqueid: 1700000000.1\r\nLinkedid: 1700000000.1\r\nDestChannel: PJSIP/1001-00000002\r\nChanVariable(RINGSIDE_TASK): 7\r\nChanVariable: RINGSIDE_ATTEMPT=9\r\n\r\n\
Response: Follows\r\nActionID: 2\r\nPrivilege: Command\r\nlegacy output line\r\n--END COMMAND--\r\n\r\n";

    fn decode_all(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut d = Decoder::new(AmiLimits::default());
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
    fn a_session_decodes_whatever_the_split() {
        let whole = decode_all(&[SESSION.as_bytes()]);
        assert_eq!(whole.len(), 4);
        assert_eq!(
            whole[0],
            Frame::Banner("Asterisk Call Manager/5.0.1".into())
        );
        let Frame::Message(dial) = &whole[2] else {
            panic!()
        };
        assert_eq!(dial.event(), Some("DialBegin"));
        assert_eq!(dial.get("linkedid"), Some("1700000000.1"));
        assert_eq!(
            dial.chan_variables(),
            vec![
                ("RINGSIDE_TASK".into(), "7".into()),
                ("RINGSIDE_ATTEMPT".into(), "9".into())
            ]
        );
        let Frame::Message(follows) = &whole[3] else {
            panic!()
        };
        assert_eq!(follows.get("Output"), Some("legacy output line"));
        let bytes = SESSION.as_bytes();
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
    fn garbage_lines_are_skipped_and_bare_lf_accepted() {
        let mut d = Decoder::new(AmiLimits::default());
        d.feed(b"Asterisk Call Manager/2.10.4\nthis is garbage\nEvent: Hangup\nCause: 16\n\n");
        assert!(matches!(d.next_frame().unwrap(), Some(Frame::Banner(_))));
        let Some(Frame::Message(m)) = d.next_frame().unwrap() else {
            panic!()
        };
        assert_eq!(m.get("cause"), Some("16"));
        assert_eq!(d.skipped_lines, 1);
    }

    #[test]
    fn caps_and_truncation_are_errors() {
        let mut d = Decoder::new(AmiLimits {
            max_line_bytes: 30,
            ..Default::default()
        });
        d.feed(b"Asterisk Call Manager/5\r\nEvent: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert!(matches!(d.next_frame().unwrap(), Some(Frame::Banner(_))));
        assert_eq!(d.next_frame(), Err(AmiError::LineTooLong(30)));
        let mut d = Decoder::new(AmiLimits::default());
        d.feed(b"Asterisk Call Manager/5\r\nEvent: Hangup\r\n");
        while d.next_frame().unwrap().is_some() {}
        assert_eq!(d.finish(), Err(AmiError::Truncated));
    }

    #[test]
    fn actions_encode_and_refuse_injection() {
        let a = originate(
            "o1",
            "PJSIP/1001",
            "from-internal",
            "+8613800138000",
            Some("ringside <400>"),
            30_000,
            &[("RINGSIDE_TASK", "7".into())],
        );
        let text = a.encode().unwrap();
        assert!(text.starts_with("Action: Originate\r\nActionID: o1\r\nChannel: PJSIP/1001\r\n"));
        assert!(text.contains("Async: true\r\n") && text.contains("Variable: RINGSIDE_TASK=7\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        assert!(
            Action::new("Ping", "1")
                .field("X", "a\r\nAction: Logoff")
                .encode()
                .is_err()
        );
        assert_eq!(
            md5_key("840415273", "secret"),
            format!("{:x}", Md5::digest(b"840415273secret"))
        );
    }

    proptest! {
        #[test]
        fn no_input_panics(data in proptest::collection::vec(any::<u8>(), 0..2048), split in 0usize..2048) {
            let split = split.min(data.len());
            let mut d = Decoder::new(AmiLimits::default());
            d.feed(&data[..split]);
            while let Ok(Some(_)) = d.next_frame() {}
            d.feed(&data[split..]);
            while let Ok(Some(_)) = d.next_frame() {}
            let _ = d.finish();
        }
    }
}
