//! A small SIP peer for tests: a PBX as ringside sees it, over UDP or TCP on loopback. It writes
//! requests as text (so tests can also send what no real PBX would) and reads responses with
//! ringside's own parser, each wait bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use ringside::protocol::sip::{FramerLimits, SipMessage, StreamFrame, StreamFramer, parse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long a test waits for an expected message.
pub const WAIT: Duration = Duration::from_secs(5);

/// A UDP peer bound to loopback in the server's address family.
pub struct UdpPeer {
    socket: UdpSocket,
    pub server: SocketAddr,
}

impl UdpPeer {
    pub async fn bind(server: SocketAddr) -> UdpPeer {
        let local: SocketAddr = if server.is_ipv6() {
            "[::1]:0".parse().unwrap()
        } else {
            "127.0.0.1:0".parse().unwrap()
        };
        UdpPeer {
            socket: UdpSocket::bind(local).await.expect("bind a UDP peer"),
            server,
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    pub async fn send(&self, message: &str) {
        self.send_bytes(message.as_bytes()).await;
    }

    pub async fn send_bytes(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).await.expect("send");
    }

    /// The next message within `within`, parsed.
    pub async fn recv(&self, within: Duration) -> Option<SipMessage> {
        let mut buffer = vec![0u8; 65_536];
        let (length, _) = tokio::time::timeout(within, self.socket.recv_from(&mut buffer))
            .await
            .ok()?
            .expect("receive");
        Some(parse(&buffer[..length]).expect("ringside sends parseable SIP"))
    }

    /// The next message, which must be a response with `status`.
    pub async fn expect(&self, status: u16) -> SipMessage {
        let message = self
            .recv(WAIT)
            .await
            .unwrap_or_else(|| panic!("no response within {WAIT:?}, expected {status}"));
        assert_eq!(
            message.status_code(),
            Some(status),
            "expected {status}, got {}",
            String::from_utf8_lossy(&message.to_bytes())
        );
        message
    }

    /// Nothing arrives within `ms`.
    pub async fn expect_silence(&self, ms: u64) {
        if let Some(message) = self.recv(Duration::from_millis(ms)).await {
            panic!(
                "expected silence, got {}",
                String::from_utf8_lossy(&message.to_bytes())
            );
        }
    }
}

/// A TCP connection to the server.
pub struct TcpPeer {
    stream: TcpStream,
    framer: StreamFramer,
}

impl TcpPeer {
    pub async fn connect(server: SocketAddr) -> TcpPeer {
        TcpPeer {
            stream: TcpStream::connect(server).await.expect("connect"),
            framer: StreamFramer::new(FramerLimits::default()),
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    pub async fn send(&mut self, message: &str) {
        self.send_bytes(message.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next message within `within`; `None` on timeout or when the server closed.
    pub async fn recv(&mut self, within: Duration) -> Option<SipMessage> {
        let deadline = tokio::time::Instant::now() + within;
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match self.framer.next_frame().expect("ringside frames correctly") {
                Some(StreamFrame::Message(bytes)) => {
                    return Some(parse(&bytes).expect("ringside sends parseable SIP"));
                }
                Some(StreamFrame::Ping) => continue,
                None => {}
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buffer))
                .await
                .ok()?;
            match read {
                Ok(0) | Err(_) => return None,
                Ok(length) => self.framer.push(&buffer[..length]).expect("buffer"),
            }
        }
    }

    pub async fn expect(&mut self, status: u16) -> SipMessage {
        let message = self
            .recv(WAIT)
            .await
            .unwrap_or_else(|| panic!("no response within {WAIT:?}, expected {status}"));
        assert_eq!(message.status_code(), Some(status));
        message
    }

    /// Whether the server closes the connection within `within` (reads until end of stream).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut buffer = vec![0u8; 16 * 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buffer)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }
}

/// One call as a PBX forks it to ringside: the fields INVITE, CANCEL and ACK share.
#[derive(Debug, Clone)]
pub struct Call {
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub transport: &'static str,
    pub call_id: String,
    pub branch: String,
    pub from_tag: String,
    /// The caller's number (From user).
    pub caller: String,
    /// The extension the INVITE rings (Request-URI and To user).
    pub extension: String,
    /// Extra header lines for the INVITE, each without CRLF.
    pub invite_headers: Vec<String>,
    /// Whether the top Via asks for `rport`.
    pub rport: bool,
}

impl Call {
    pub fn new(local: SocketAddr, server: SocketAddr, caller: &str, extension: &str) -> Call {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        Call {
            local,
            server,
            transport: "UDP",
            call_id: format!("{unique}@pbx.test"),
            branch: format!("z9hG4bK{unique}"),
            from_tag: unique[..8].to_owned(),
            caller: caller.to_owned(),
            extension: extension.to_owned(),
            invite_headers: Vec::new(),
            rport: false,
        }
    }

    pub fn over_tcp(mut self) -> Call {
        self.transport = "TCP";
        self
    }

    pub fn with_header(mut self, line: &str) -> Call {
        self.invite_headers.push(line.to_owned());
        self
    }

    fn common(&self, method: &str, to_tag: Option<&str>, extra: &[String]) -> String {
        let rport = if self.rport { ";rport" } else { "" };
        let to_tag = to_tag.map(|tag| format!(";tag={tag}")).unwrap_or_default();
        let mut text = format!(
            "{method} sip:{ext}@{server} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch={branch}{rport}\r\n\
             Max-Forwards: 70\r\n\
             From: \"Caller\" <sip:{caller}@pbx.test>;tag={from_tag}\r\n\
             To: <sip:{ext}@{server}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\n",
            ext = self.extension,
            server = self.server,
            transport = self.transport,
            local = self.local,
            branch = self.branch,
            caller = self.caller,
            from_tag = self.from_tag,
            call_id = self.call_id,
        );
        for line in extra {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text
    }

    pub fn invite(&self) -> String {
        let sdp = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 0\r\n";
        let mut text = self.common("INVITE", None, &self.invite_headers);
        text.push_str(&format!(
            "Contact: <sip:{}@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            self.caller,
            self.local,
            sdp.len()
        ));
        text
    }

    pub fn cancel(&self, extra: &[&str]) -> String {
        let extra: Vec<String> = extra.iter().map(|line| line.to_string()).collect();
        let mut text = self.common("CANCEL", None, &extra);
        text.push_str("Content-Length: 0\r\n\r\n");
        text
    }

    /// The ACK of a non-2xx final response, which carries that response's To tag.
    pub fn ack(&self, to_tag: &str) -> String {
        let mut text = self.common("ACK", Some(to_tag), &[]);
        text.push_str("Content-Length: 0\r\n\r\n");
        text
    }
}

/// A request outside any call (OPTIONS, REGISTER, NOTIFY ...) from `local`.
pub fn request(
    method: &str,
    local: SocketAddr,
    server: SocketAddr,
    transport: &str,
    extra: &[&str],
    body: &str,
) -> String {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let mut text = format!(
        "{method} sip:ringside@{server} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK{unique}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pbx@{local}>;tag={tag}\r\n\
         To: <sip:ringside@{server}>\r\n\
         Call-ID: {unique}@pbx.test\r\n\
         CSeq: 1 {method}\r\n",
        tag = &unique[..8],
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

/// An OPTIONS from `local`.
pub fn options(local: SocketAddr, server: SocketAddr, transport: &str) -> String {
    request("OPTIONS", local, server, transport, &[], "")
}
