//! Fake PBX peers for tests: an Asterisk manager interface and a FreeSWITCH event socket that
//! speak the real protocols byte for byte (texts after the Asterisk 18/20 AMI and FreeSWITCH 1.10
//! mod_event_socket documentation), scripted by the test: events pushed on demand, originate
//! outcomes queued, bytes dribbled one at a time, connections cut mid-message.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringside::protocol::ami::{self, AmiLimits, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

#[derive(Default)]
pub struct AmiScript {
    pub logins: u32,
    pub failed_logins: u32,
    pub connections: u32,
    /// (ActionID, Channel, Exten, Variable lines) of each Originate received.
    pub originates: Vec<(String, String, String, Vec<String>)>,
    /// Outcomes for the next originates: (Response, Reason).
    pub outcomes: VecDeque<(&'static str, &'static str)>,
    pub actions: Vec<String>,
    pub one_byte_at_a_time: bool,
    /// `CoreShowChannel` rows (fields without `Event`/`ActionID`) listed by `CoreShowChannels`.
    pub channels: Vec<Vec<(String, String)>>,
    /// `QueueEntry` rows (callers waiting) listed by `QueueStatus`, after one `QueueParams`.
    pub queue_entries: Vec<Vec<(String, String)>>,
}

/// One list item of an action's answer: `Event: NAME`, the fields, the action's `ActionID`.
fn list_item(event: &str, fields: &[(String, String)], id: &str) -> String {
    let mut s = format!("Event: {event}\r\n");
    for (k, v) in fields {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str(&format!("ActionID: {id}\r\n\r\n"));
    s
}

pub struct FakeAmi {
    pub addr: SocketAddr,
    pub script: Arc<Mutex<AmiScript>>,
    push: broadcast::Sender<Push>,
}

#[derive(Clone, Debug)]
enum Push {
    Bytes(Vec<u8>),
    Close,
}

pub const AMI_BANNER: &str = "Asterisk Call Manager/5.0.1\r\n";

impl FakeAmi {
    pub async fn start(username: &'static str, secret: &'static str) -> FakeAmi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(AmiScript::default()));
        let (push, _) = broadcast::channel(256);
        let s = script.clone();
        let p = push.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                s.lock().unwrap().connections += 1;
                tokio::spawn(ami_connection(
                    stream,
                    s.clone(),
                    p.subscribe(),
                    username,
                    secret,
                ));
            }
        });
        FakeAmi { addr, script, push }
    }

    /// Sends raw bytes (one or more messages) to every connected client.
    pub fn push(&self, text: &str) {
        let _ = self.push.send(Push::Bytes(text.as_bytes().to_vec()));
    }

    /// Sends the bytes, then closes every connection.
    pub fn push_and_close(&self, text: &str) {
        let _ = self.push.send(Push::Bytes(text.as_bytes().to_vec()));
        let _ = self.push.send(Push::Close);
    }

    pub fn script(&self) -> std::sync::MutexGuard<'_, AmiScript> {
        self.script.lock().unwrap()
    }
}

async fn write_out(
    w: &mut (impl AsyncWriteExt + Unpin),
    bytes: &[u8],
    dribble: bool,
) -> std::io::Result<()> {
    if dribble {
        for b in bytes {
            w.write_all(std::slice::from_ref(b)).await?;
            w.flush().await?;
        }
        Ok(())
    } else {
        w.write_all(bytes).await
    }
}

async fn ami_connection(
    stream: tokio::net::TcpStream,
    script: Arc<Mutex<AmiScript>>,
    mut push: broadcast::Receiver<Push>,
    username: &'static str,
    secret: &'static str,
) {
    let (mut r, mut w) = stream.into_split();
    if w.write_all(AMI_BANNER.as_bytes()).await.is_err() {
        return;
    }
    let mut decoder = ami::Decoder::new(AmiLimits::default());
    decoder.feed(b"Asterisk Call Manager/client\r\n"); // the client sends no banner: prime the decoder past it
    let _ = decoder.next_frame();
    let challenge = "840415273";
    let mut buf = vec![0u8; 8192];
    let mut authed = false;
    loop {
        let dribble = script.lock().unwrap().one_byte_at_a_time;
        tokio::select! {
            n = r.read(&mut buf) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                decoder.feed(&buf[..n]);
                while let Ok(Some(Frame::Message(m))) = decoder.next_frame() {
                    let action = m.get("Action").unwrap_or("").to_string();
                    let id = m.action_id().unwrap_or("").to_string();
                    script.lock().unwrap().actions.push(action.clone());
                    let out: String;
                    match action.to_ascii_lowercase().as_str() {
                        "challenge" => out = format!("Response: Success\r\nActionID: {id}\r\nChallenge: {challenge}\r\n\r\n"),
                        "login" => {
                            let ok = m.get("Username") == Some(username)
                                && match m.get("AuthType") {
                                    Some(t) if t.eq_ignore_ascii_case("md5") => m.get("Key") == Some(ami::md5_key(challenge, secret).as_str()),
                                    _ => m.get("Secret") == Some(secret),
                                };
                            if ok {
                                authed = true;
                                script.lock().unwrap().logins += 1;
                                out = format!(
                                    "Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\n\
                                     Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 1261\r\nLastReload: 1261\r\nStatus: Fully Booted\r\n\r\n"
                                );
                            } else {
                                script.lock().unwrap().failed_logins += 1;
                                let _ = w.write_all(format!("Response: Error\r\nActionID: {id}\r\nMessage: Authentication failed\r\n\r\n").as_bytes()).await;
                                return;
                            }
                        }
                        _ if !authed => out = format!("Response: Error\r\nActionID: {id}\r\nMessage: Permission denied\r\n\r\n"),
                        "events" => out = format!("Response: Success\r\nActionID: {id}\r\nEvents: On\r\n\r\n"),
                        "ping" => out = format!("Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1700000000.123456\r\n\r\n"),
                        "coreshowchannels" => {
                            let rows = script.lock().unwrap().channels.clone();
                            let mut o = format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n");
                            for row in &rows {
                                o.push_str(&list_item("CoreShowChannel", row, &id));
                            }
                            o.push_str(&format!(
                                "Event: CoreShowChannelsComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {}\r\n\r\n",
                                rows.len()
                            ));
                            out = o;
                        }
                        "queuestatus" => {
                            let rows = script.lock().unwrap().queue_entries.clone();
                            let mut o = format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Queue status will follow\r\n\r\n");
                            let params: Vec<(String, String)> = [
                                ("Queue", "support"), ("Max", "0"), ("Strategy", "ringall"),
                                ("Calls", &rows.len().to_string()), ("Holdtime", "0"), ("TalkTime", "0"),
                                ("Completed", "0"), ("Abandoned", "0"), ("ServiceLevel", "0"),
                                ("ServicelevelPerf", "0.0"), ("ServicelevelPerf2", "0.0"), ("Weight", "0"),
                            ]
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect();
                            o.push_str(&list_item("QueueParams", &params, &id));
                            for row in &rows {
                                o.push_str(&list_item("QueueEntry", row, &id));
                            }
                            o.push_str(&format!(
                                "Event: QueueStatusComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {}\r\n\r\n",
                                rows.len() + 1
                            ));
                            out = o;
                        }
                        "originate" => {
                            let channel = m.get("Channel").unwrap_or("").to_string();
                            let exten = m.get("Exten").unwrap_or("").to_string();
                            let vars: Vec<String> = m.get_all("Variable").map(String::from).collect();
                            let (resp, reason) = {
                                let mut s = script.lock().unwrap();
                                s.originates.push((id.clone(), channel.clone(), exten.clone(), vars));
                                s.outcomes.pop_front().unwrap_or(("Success", "4"))
                            };
                            let queued = format!("Response: Success\r\nActionID: {id}\r\nMessage: Originate successfully queued\r\n\r\n");
                            let later = format!(
                                "Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: {id}\r\nResponse: {resp}\r\nChannel: {channel}\r\n\
                                 Context: from-internal\r\nExten: {exten}\r\nApplication: \r\nData: \r\nReason: {reason}\r\n\
                                 Uniqueid: 1700000100.{n}\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n\r\n",
                                n = script.lock().unwrap().originates.len()
                            );
                            let _ = write_out(&mut w, queued.as_bytes(), dribble).await;
                            out = String::new();
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            let _ = write_out(&mut w, later.as_bytes(), dribble).await;
                        }
                        "logoff" => {
                            let _ = w.write_all(format!("Response: Goodbye\r\nActionID: {id}\r\nMessage: Thanks for all the fish.\r\n\r\n").as_bytes()).await;
                            return;
                        }
                        other => out = format!("Response: Error\r\nActionID: {id}\r\nMessage: Invalid/unknown command: {other}\r\n\r\n"),
                    }
                    if !out.is_empty() && write_out(&mut w, out.as_bytes(), dribble).await.is_err() {
                        return;
                    }
                }
            }
            p = push.recv() => match p {
                Ok(Push::Bytes(b)) => { if write_out(&mut w, &b, dribble).await.is_err() { return; } }
                Ok(Push::Close) | Err(_) => return,
            }
        }
    }
}

/// An AMI event block from (key, value) pairs, CRLF-terminated.
pub fn ami_event(fields: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in fields {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s
}

/// A queue call from 13800138000 to queue `support` (Asterisk 18 event texts), ringing two
/// agents' phones; returns the events up to both ringing.
pub fn ami_queue_call_ringing(linked: &str) -> String {
    let caller = [
        ("CallerIDNum", "13800138000"),
        ("CallerIDName", "Wang"),
        ("Linkedid", linked),
    ];
    let mut s = String::new();
    let chan = |name: &str, uid: &str, extra: &[(&str, &str)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("Event", name.to_string()),
            ("Privilege", "call,all".to_string()),
            ("Channel", "PJSIP/trunk-00000001".to_string()),
            ("ChannelState", "6".to_string()),
            ("ChannelStateDesc", "Up".to_string()),
        ];
        for (k, v) in caller {
            f.push((k, v.to_string()));
        }
        f.push(("Uniqueid", uid.to_string()));
        for (k, v) in extra {
            f.push((k, v.to_string()));
        }
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ami_event(&pairs)
    };
    s.push_str(&chan(
        "Newchannel",
        linked,
        &[
            ("Context", "from-trunk"),
            ("Exten", "800"),
            ("Priority", "1"),
            ("AccountCode", ""),
        ],
    ));
    s.push_str(&chan(
        "QueueCallerJoin",
        linked,
        &[("Queue", "support"), ("Position", "1"), ("Count", "1")],
    ));
    for (ext, n) in [("1001", "2"), ("1002", "3")] {
        let dest_chan = format!("PJSIP/{ext}-0000000{n}");
        let dest_uid = format!("{linked}{n}");
        s.push_str(&chan(
            "AgentCalled",
            linked,
            &[
                ("DestChannel", &dest_chan),
                ("DestChannelState", "5"),
                ("DestChannelStateDesc", "Ringing"),
                ("DestUniqueid", &dest_uid),
                ("DestLinkedid", linked),
                ("Queue", "support"),
                ("Interface", &format!("PJSIP/{ext}")),
                ("MemberName", &format!("Agent {ext}")),
            ],
        ));
        s.push_str(&chan(
            "DialBegin",
            linked,
            &[
                ("DestChannel", &dest_chan),
                ("DestUniqueid", &dest_uid),
                ("DestLinkedid", linked),
                ("DialString", ext),
            ],
        ));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// FreeSWITCH event socket

#[derive(Default)]
pub struct EslScript {
    pub auths: u32,
    pub failed_auths: u32,
    pub commands: Vec<String>,
    /// (Job-UUID, originate command) of each bgapi originate.
    pub originates: Vec<(String, String)>,
    /// Bodies of the next BACKGROUND_JOB events (`+OK uuid` / `-ERR USER_BUSY`).
    pub outcomes: VecDeque<&'static str>,
}

pub struct FakeEsl {
    pub addr: SocketAddr,
    pub script: Arc<Mutex<EslScript>>,
    push: broadcast::Sender<Push>,
}

impl FakeEsl {
    pub async fn start(password: &'static str) -> FakeEsl {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(EslScript::default()));
        let (push, _) = broadcast::channel(256);
        let s = script.clone();
        let p = push.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(esl_connection(stream, s.clone(), p.subscribe(), password));
            }
        });
        FakeEsl { addr, script, push }
    }

    /// Sends one event as `text/event-json`.
    pub fn push_event(&self, headers: &[(&str, &str)]) {
        let mut map = serde_json::Map::new();
        for (k, v) in headers {
            map.insert(k.to_string(), serde_json::Value::String(v.to_string()));
        }
        let _ = self.push.send(Push::Bytes(
            esl_json_frame(&serde_json::Value::Object(map).to_string()).into_bytes(),
        ));
    }

    pub fn script(&self) -> std::sync::MutexGuard<'_, EslScript> {
        self.script.lock().unwrap()
    }
}

pub fn esl_json_frame(json: &str) -> String {
    format!(
        "Content-Length: {}\nContent-Type: text/event-json\n\n{json}",
        json.len()
    )
}

const DISCONNECT: &str = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

async fn esl_connection(
    stream: tokio::net::TcpStream,
    script: Arc<Mutex<EslScript>>,
    mut push: broadcast::Receiver<Push>,
    password: &'static str,
) {
    let (mut r, mut w) = stream.into_split();
    if w.write_all(b"Content-Type: auth/request\n\n")
        .await
        .is_err()
    {
        return;
    }
    let mut pending = String::new();
    let mut buf = vec![0u8; 8192];
    loop {
        tokio::select! {
            n = r.read(&mut buf) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                while let Some(end) = pending.find("\n\n") {
                    let command: String = pending[..end].to_string();
                    pending.drain(..end + 2);
                    script.lock().unwrap().commands.push(command.clone());
                    let first = command.lines().next().unwrap_or("").to_string();
                    if let Some(pw) = first.strip_prefix("auth ") {
                        if pw == password {
                            script.lock().unwrap().auths += 1;
                            let _ = w.write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n").await;
                        } else {
                            script.lock().unwrap().failed_auths += 1;
                            let _ = w.write_all(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n").await;
                            let _ = w.write_all(format!("Content-Type: text/disconnect-notice\nContent-Length: {}\n\n{DISCONNECT}", DISCONNECT.len()).as_bytes()).await;
                            return;
                        }
                    } else if first.starts_with("event json") {
                        let _ = w.write_all(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled json\n\n").await;
                    } else if let Some(cmd) = first.strip_prefix("bgapi ") {
                        let job = command.lines().find_map(|l| l.strip_prefix("Job-UUID: ")).unwrap_or("none").to_string();
                        let body = {
                            let mut s = script.lock().unwrap();
                            s.originates.push((job.clone(), cmd.to_string()));
                            s.outcomes.pop_front().unwrap_or("+OK 2f5d1a9e-5f2b-4b6a-9a35-000000000001\n")
                        };
                        let _ = w.write_all(format!("Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n").as_bytes()).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let json = serde_json::json!({
                            "Event-Name": "BACKGROUND_JOB", "Core-UUID": "6d2375b0-5183-11e1-b24c-f527b57af96b",
                            "Job-UUID": job, "Job-Command": "originate", "Job-Command-Arg": cmd.trim_start_matches("originate "),
                            "Content-Length": body.len().to_string(), "_body": body,
                        });
                        let _ = w.write_all(esl_json_frame(&json.to_string()).as_bytes()).await;
                    } else if first == "exit" {
                        let _ = w.write_all(b"Content-Type: command/reply\nReply-Text: +OK bye\n\n").await;
                        return;
                    } else {
                        let _ = w.write_all(b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n").await;
                    }
                }
            }
            p = push.recv() => match p {
                Ok(Push::Bytes(b)) => { if w.write_all(&b).await.is_err() { return; } }
                Ok(Push::Close) | Err(_) => return,
            }
        }
    }
}
