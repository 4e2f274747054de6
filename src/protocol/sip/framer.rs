//! Cuts SIP messages out of transport bytes: a streaming framer for TCP, one call per datagram for
//! UDP.
//!
//! On a stream, a message ends where its Content-Length says (RFC 3261 18.3), so Content-Length is
//! mandatory and anything that makes it unknowable — missing, negative, not a number, given twice
//! with different values — is a framing error. After a framing error the byte stream can no longer
//! be split reliably, so the connection must be closed: [`StreamFramer`] stays failed and returns
//! the same error on every later call. Leading CRLFs are skipped (RFC 3261 7.5), and a CRLFCRLF
//! between messages is reported as [`StreamFrame::Ping`], to which the caller answers CRLF
//! (RFC 5626 3.5.1).
//!
//! A datagram holds exactly one message. Content-Length is optional there; when present, bytes
//! past the body are discarded and a body shorter than declared is an error (RFC 3261 18.3).
//!
//! Both paths bound memory: a message larger than [`FramerLimits::max_message_bytes`] is refused
//! as soon as that is known, before its body is read.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

/// Why transport bytes could not be cut into SIP messages. On a stream every variant means the
/// connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("the message exceeds the limit of {limit} bytes")]
    MessageTooLarge { limit: usize },
    #[error("more than {limit} bytes are waiting to be framed")]
    BufferFull { limit: usize },
    #[error("no blank line ends the header section")]
    UnterminatedHeaders,
    #[error("a message on a stream transport has no Content-Length (RFC 3261 18.3)")]
    MissingContentLength,
    #[error("Content-Length {0:?} is not a non-negative integer")]
    InvalidContentLength(String),
    #[error("Content-Length appears more than once with different values")]
    ConflictingContentLength,
    #[error("the body has {received} bytes but Content-Length says {declared}")]
    TruncatedBody { declared: usize, received: usize },
}

/// Size limits for framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerLimits {
    /// The largest message accepted, headers and body together.
    pub max_message_bytes: usize,
    /// The most bytes a [`StreamFramer`] holds before refusing more; never less than
    /// `max_message_bytes`.
    pub max_buffered_bytes: usize,
}

impl Default for FramerLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_buffered_bytes: 128 * 1024,
        }
    }
}

/// What a stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFrame {
    /// One whole message, ready for [`super::parse`].
    Message(Bytes),
    /// A CRLFCRLF keep-alive ping; answer with a single CRLF (RFC 5626 3.5.1).
    Ping,
}

/// Incremental framer for one stream connection (TCP or TLS). Feed it whatever each read
/// returned with [`StreamFramer::push`], then call [`StreamFramer::next_frame`] until it returns
/// `Ok(None)`.
#[derive(Debug)]
pub struct StreamFramer {
    buffer: BytesMut,
    limits: FramerLimits,
    progress: Progress,
    failure: Option<FramingError>,
}

/// Where the framer is within the message at the front of the buffer.
#[derive(Debug, Clone, Copy)]
enum Progress {
    /// At a message boundary, where keep-alive CRLFs may appear.
    Between,
    /// Looking for the end of the header section; `scanned` bytes have been searched already, so
    /// byte-at-a-time input is not rescanned from the start each time.
    InHead { scanned: usize },
    /// The header section is complete; the message ends at `total`.
    InBody { total: usize },
}

impl StreamFramer {
    pub fn new(limits: FramerLimits) -> Self {
        let limits = FramerLimits {
            max_buffered_bytes: limits.max_buffered_bytes.max(limits.max_message_bytes),
            ..limits
        };
        Self {
            buffer: BytesMut::new(),
            limits,
            progress: Progress::Between,
            failure: None,
        }
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) -> Result<(), FramingError> {
        self.check_not_failed()?;
        if self.buffer.len().saturating_add(data.len()) > self.limits.max_buffered_bytes {
            return Err(self.fail(FramingError::BufferFull {
                limit: self.limits.max_buffered_bytes,
            }));
        }
        self.buffer.extend_from_slice(data);
        Ok(())
    }

    /// The next complete item, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<StreamFrame>, FramingError> {
        self.check_not_failed()?;
        loop {
            match self.progress {
                Progress::Between => {
                    if self.buffer.starts_with(b"\r\n\r\n") {
                        let _ = self.buffer.split_to(4);
                        return Ok(Some(StreamFrame::Ping));
                    }
                    if self.buffer.is_empty()
                        || (self.buffer.len() < 4 && b"\r\n\r\n".starts_with(&self.buffer))
                    {
                        // Nothing yet, or the start of what may still become a ping.
                        return Ok(None);
                    }
                    if self.buffer.starts_with(b"\r\n") {
                        // A lone CRLF before a start line: a pong, or RFC 3261 7.5 padding.
                        let _ = self.buffer.split_to(2);
                        continue;
                    }
                    self.progress = Progress::InHead { scanned: 0 };
                }
                Progress::InHead { scanned } => {
                    let search_from = scanned.saturating_sub(3);
                    let found = find_head_end(self.buffer.get(search_from..).unwrap_or_default());
                    let Some(relative) = found else {
                        if self.buffer.len() > self.limits.max_message_bytes {
                            return Err(self.fail(FramingError::MessageTooLarge {
                                limit: self.limits.max_message_bytes,
                            }));
                        }
                        self.progress = Progress::InHead {
                            scanned: self.buffer.len(),
                        };
                        return Ok(None);
                    };
                    let head_end = search_from + relative;
                    let head = self.buffer.get(..head_end).unwrap_or_default();
                    let body_length = match scan_content_length(head) {
                        Ok(Some(length)) => length,
                        Ok(None) => return Err(self.fail(FramingError::MissingContentLength)),
                        Err(error) => return Err(self.fail(error)),
                    };
                    match (head_end + 4).checked_add(body_length) {
                        Some(total) if total <= self.limits.max_message_bytes => {
                            self.progress = Progress::InBody { total };
                        }
                        _ => {
                            return Err(self.fail(FramingError::MessageTooLarge {
                                limit: self.limits.max_message_bytes,
                            }));
                        }
                    }
                }
                Progress::InBody { total } => {
                    if self.buffer.len() < total {
                        return Ok(None);
                    }
                    self.progress = Progress::Between;
                    return Ok(Some(StreamFrame::Message(
                        self.buffer.split_to(total).freeze(),
                    )));
                }
            }
        }
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    fn check_not_failed(&self) -> Result<(), FramingError> {
        match &self.failure {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    fn fail(&mut self, error: FramingError) -> FramingError {
        self.failure = Some(error.clone());
        self.buffer.clear();
        error
    }
}

/// What a datagram holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    /// One message, cut to its Content-Length.
    Message(Bytes),
    /// Only CRLFs: a keep-alive, to be ignored.
    KeepAlive,
}

/// Frames one UDP datagram.
pub fn frame_datagram(datagram: &[u8], limits: &FramerLimits) -> Result<Datagram, FramingError> {
    if datagram.len() > limits.max_message_bytes {
        return Err(FramingError::MessageTooLarge {
            limit: limits.max_message_bytes,
        });
    }
    let Some(start) = datagram
        .iter()
        .position(|byte| !matches!(byte, b'\r' | b'\n'))
    else {
        return Ok(Datagram::KeepAlive);
    };
    let message = datagram.get(start..).unwrap_or_default();
    let head_end = find_head_end(message).ok_or(FramingError::UnterminatedHeaders)?;
    let body_start = head_end + 4;
    let available = message.len() - body_start;
    let end = match scan_content_length(message.get(..head_end).unwrap_or_default())? {
        Some(declared) if declared > available => {
            return Err(FramingError::TruncatedBody {
                declared,
                received: available,
            });
        }
        Some(declared) => body_start + declared,
        None => message.len(),
    };
    Ok(Datagram::Message(Bytes::copy_from_slice(
        message.get(..end).unwrap_or_default(),
    )))
}

/// Where the header section ends: the index of the CRLFCRLF that terminates it.
pub(super) fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n")
}

/// Parses a Content-Length value: `1*DIGIT`, surrounding whitespace allowed.
pub(super) fn parse_content_length(value: &str) -> Result<usize, FramingError> {
    let digits = value.trim_matches([' ', '\t']);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(FramingError::InvalidContentLength(value.to_owned()));
    }
    digits
        .parse()
        .map_err(|_| FramingError::InvalidContentLength(value.to_owned()))
}

/// Reduces every Content-Length value of a message to one length. Repeating the same value is
/// harmless; different values leave the body's extent unknown (RFC 4475 `mcl01`).
pub(super) fn declared_content_length<'a>(
    values: impl Iterator<Item = &'a str>,
) -> Result<Option<usize>, FramingError> {
    let mut declared = None;
    for value in values {
        let length = parse_content_length(value)?;
        match declared {
            Some(previous) if previous != length => {
                return Err(FramingError::ConflictingContentLength);
            }
            _ => declared = Some(length),
        }
    }
    Ok(declared)
}

/// Finds Content-Length (or compact `l`) in a raw header section without parsing anything else:
/// a malformed header elsewhere should cost the sender a 400 from the parser, not the connection.
fn scan_content_length(head: &[u8]) -> Result<Option<usize>, FramingError> {
    let head = String::from_utf8_lossy(head);
    let mut values: Vec<String> = Vec::new();
    let mut in_content_length = false;
    for line in head.split("\r\n").skip(1) {
        if line.starts_with([' ', '\t']) {
            if in_content_length && let Some(value) = values.last_mut() {
                value.push(' ');
                value.push_str(line.trim_matches([' ', '\t']));
            }
            continue;
        }
        in_content_length = false;
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l") {
            in_content_length = true;
            values.push(value.trim_matches([' ', '\t']).to_owned());
        }
    }
    declared_content_length(values.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &[u8] =
        b"MESSAGE sip:a@example.com SIP/2.0\r\nCall-ID: one\r\nContent-Length: 5\r\n\r\nhello";
    const SECOND: &[u8] = b"OPTIONS sip:a@example.com SIP/2.0\r\nCall-ID: two\r\nl: 0\r\n\r\n";

    fn drain(framer: &mut StreamFramer) -> Vec<StreamFrame> {
        let mut frames = Vec::new();
        while let Some(frame) = framer.next_frame().unwrap() {
            frames.push(frame);
        }
        frames
    }

    fn messages(frames: &[StreamFrame]) -> Vec<&[u8]> {
        frames
            .iter()
            .filter_map(|frame| match frame {
                StreamFrame::Message(bytes) => Some(bytes.as_ref()),
                StreamFrame::Ping => None,
            })
            .collect()
    }

    #[test]
    fn a_message_split_at_every_byte_boundary_frames_the_same() {
        let mut stream = FIRST.to_vec();
        stream.extend_from_slice(SECOND);
        for split in 0..=stream.len() {
            let mut framer = StreamFramer::new(FramerLimits::default());
            let mut frames = Vec::new();
            framer.push(&stream[..split]).unwrap();
            frames.extend(drain(&mut framer));
            framer.push(&stream[split..]).unwrap();
            frames.extend(drain(&mut framer));
            assert_eq!(messages(&frames), [FIRST, SECOND], "split at {split}");
            assert_eq!(framer.buffered_len(), 0);
        }
    }

    #[test]
    fn one_byte_at_a_time_frames_both_messages() {
        let mut stream = FIRST.to_vec();
        stream.extend_from_slice(SECOND);
        let mut framer = StreamFramer::new(FramerLimits::default());
        let mut frames = Vec::new();
        for byte in &stream {
            framer.push(std::slice::from_ref(byte)).unwrap();
            frames.extend(drain(&mut framer));
        }
        assert_eq!(messages(&frames), [FIRST, SECOND]);
    }

    #[test]
    fn two_messages_in_one_read_come_out_separately() {
        let mut framer = StreamFramer::new(FramerLimits::default());
        let mut stream = FIRST.to_vec();
        stream.extend_from_slice(SECOND);
        framer.push(&stream).unwrap();
        assert_eq!(messages(&drain(&mut framer)), [FIRST, SECOND]);
    }

    #[test]
    fn a_double_crlf_is_reported_as_a_ping() {
        let mut framer = StreamFramer::new(FramerLimits::default());
        framer.push(b"\r\n\r\n").unwrap();
        framer.push(FIRST).unwrap();
        framer.push(b"\r\n\r\n").unwrap();
        let frames = drain(&mut framer);
        assert_eq!(
            frames,
            [
                StreamFrame::Ping,
                StreamFrame::Message(Bytes::from_static(FIRST)),
                StreamFrame::Ping
            ]
        );
    }

    #[test]
    fn a_ping_split_across_reads_is_still_one_ping() {
        let mut framer = StreamFramer::new(FramerLimits::default());
        framer.push(b"\r\n").unwrap();
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(b"\r").unwrap();
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(b"\n").unwrap();
        assert_eq!(framer.next_frame(), Ok(Some(StreamFrame::Ping)));
    }

    #[test]
    fn a_lone_crlf_before_a_message_is_skipped() {
        let mut framer = StreamFramer::new(FramerLimits::default());
        framer.push(b"\r\n").unwrap();
        framer.push(SECOND).unwrap();
        assert_eq!(messages(&drain(&mut framer)), [SECOND]);
    }

    #[test]
    fn a_missing_content_length_fails_the_stream_for_good() {
        let mut framer = StreamFramer::new(FramerLimits::default());
        framer
            .push(b"OPTIONS sip:a@example.com SIP/2.0\r\nCall-ID: x\r\n\r\n")
            .unwrap();
        assert_eq!(framer.next_frame(), Err(FramingError::MissingContentLength));
        assert_eq!(framer.next_frame(), Err(FramingError::MissingContentLength));
        assert_eq!(framer.push(SECOND), Err(FramingError::MissingContentLength));
    }

    #[test]
    fn negative_or_garbage_content_length_is_a_framing_error() {
        for value in ["-999", "abc", "12a", "", "+5", "99999999999999999999999"] {
            let mut framer = StreamFramer::new(FramerLimits::default());
            let message =
                format!("OPTIONS sip:a@example.com SIP/2.0\r\nContent-Length: {value}\r\n\r\n");
            framer.push(message.as_bytes()).unwrap();
            assert!(
                matches!(
                    framer.next_frame(),
                    Err(FramingError::InvalidContentLength(_))
                ),
                "value {value:?}"
            );
        }
    }

    #[test]
    fn conflicting_content_lengths_are_a_framing_error() {
        let mut framer = StreamFramer::new(FramerLimits::default());
        framer
            .push(b"OPTIONS sip:a@example.com SIP/2.0\r\nContent-Length: 13\r\nl: 5\r\n\r\n")
            .unwrap();
        assert_eq!(
            framer.next_frame(),
            Err(FramingError::ConflictingContentLength)
        );
    }

    #[test]
    fn a_folded_content_length_is_read() {
        let mut framer = StreamFramer::new(FramerLimits::default());
        framer
            .push(b"MESSAGE sip:a@example.com SIP/2.0\r\nContent-Length   :\r\n 5\r\n\r\nhello")
            .unwrap();
        assert_eq!(drain(&mut framer).len(), 1);
    }

    #[test]
    fn a_content_length_beyond_the_limit_fails_before_the_body_arrives() {
        let mut framer = StreamFramer::new(FramerLimits {
            max_message_bytes: 1024,
            max_buffered_bytes: 4096,
        });
        framer
            .push(b"MESSAGE sip:a@example.com SIP/2.0\r\nContent-Length: 5000\r\n\r\n")
            .unwrap();
        assert_eq!(
            framer.next_frame(),
            Err(FramingError::MessageTooLarge { limit: 1024 })
        );
    }

    #[test]
    fn an_endless_header_section_fails_at_the_limit() {
        let mut framer = StreamFramer::new(FramerLimits {
            max_message_bytes: 1024,
            max_buffered_bytes: 4096,
        });
        framer
            .push(b"OPTIONS sip:a@example.com SIP/2.0\r\n")
            .unwrap();
        let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let mut outcome = Ok(None);
        for _ in 0..40 {
            outcome = framer.push(line).and_then(|()| framer.next_frame());
            if outcome.is_err() {
                break;
            }
        }
        assert_eq!(outcome, Err(FramingError::MessageTooLarge { limit: 1024 }));
    }

    #[test]
    fn pushing_past_the_buffer_limit_fails() {
        let mut framer = StreamFramer::new(FramerLimits {
            max_message_bytes: 100,
            max_buffered_bytes: 200,
        });
        assert_eq!(
            framer.push(&[b'x'; 201]),
            Err(FramingError::BufferFull { limit: 200 })
        );
    }

    #[test]
    fn a_datagram_keeps_only_content_length_bytes_of_body() {
        let mut datagram = FIRST.to_vec();
        datagram.extend_from_slice(b"trailing junk");
        assert_eq!(
            frame_datagram(&datagram, &FramerLimits::default()),
            Ok(Datagram::Message(Bytes::from_static(FIRST)))
        );
    }

    #[test]
    fn a_datagram_without_content_length_keeps_the_whole_body() {
        let datagram = b"MESSAGE sip:a@example.com SIP/2.0\r\nCall-ID: x\r\n\r\nall of it";
        assert_eq!(
            frame_datagram(datagram, &FramerLimits::default()),
            Ok(Datagram::Message(Bytes::from_static(datagram)))
        );
    }

    #[test]
    fn a_datagram_shorter_than_content_length_is_rejected() {
        let datagram = b"MESSAGE sip:a@example.com SIP/2.0\r\nContent-Length: 9999\r\n\r\nshort";
        assert_eq!(
            frame_datagram(datagram, &FramerLimits::default()),
            Err(FramingError::TruncatedBody {
                declared: 9999,
                received: 5
            })
        );
    }

    #[test]
    fn a_datagram_of_crlfs_is_a_keep_alive() {
        assert_eq!(
            frame_datagram(b"\r\n\r\n", &FramerLimits::default()),
            Ok(Datagram::KeepAlive)
        );
    }

    #[test]
    fn an_oversized_datagram_is_rejected() {
        let limits = FramerLimits {
            max_message_bytes: 10,
            max_buffered_bytes: 10,
        };
        assert_eq!(
            frame_datagram(FIRST, &limits),
            Err(FramingError::MessageTooLarge { limit: 10 })
        );
    }
}
