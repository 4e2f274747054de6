//! A tiny W3C WebDriver client, so the agent console can be tested in a real headless Chromium:
//! it starts `chromedriver` on a free loopback port, opens one session, and offers the few
//! commands the browser tests need (navigate, find by CSS, read text and attributes, click,
//! type, pick an option, screenshot). Every HTTP call has a timeout, waits poll with a deadline,
//! and dropping the [`Browser`] kills chromedriver together with the Chromium it started.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Method;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Opening a session starts Chromium, which is slow on a busy machine; other commands are quick.
const SESSION_START_TIMEOUT: Duration = Duration::from_secs(60);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
const DRIVER_READY_TIMEOUT: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(100);
const LAUNCH_ATTEMPTS: u32 = 3;

/// The CSS selector of the element carrying `data-testid="id"`.
pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// An error the WebDriver server reported (`{"value": {"error", "message"}}`).
#[derive(Debug, thiserror::Error)]
#[error("webdriver `{error}`: {message}")]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

/// An element reference, valid while the element stays in the page.
#[derive(Debug, Clone)]
pub struct Element(String);

/// One headless Chromium session behind its own chromedriver.
pub struct Browser {
    http: reqwest::Client,
    driver_url: String,
    session_url: Option<String>,
    driver: Child,
    /// Chromium's profile and chromedriver's log; removed on drop.
    scratch: tempfile::TempDir,
}

/// True when running on CI, where a missing browser is a failure rather than a reason to skip.
fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

impl Browser {
    /// Starts the browser, or returns `None` after saying why when Chromium or chromedriver is not
    /// installed outside CI. On CI (`CI` set) a missing browser fails the test.
    pub async fn launch_or_skip(test: &str) -> Option<Browser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|path| !Path::new(path).exists())
            .collect();
        if !missing.is_empty() {
            let what = missing.join(" and ");
            assert!(
                !on_ci(),
                "{what} missing on CI: install the Debian packages chromium and chromium-driver"
            );
            eprintln!(
                "skipping {test}: {what} not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        match Browser::launch().await {
            Ok(browser) => Some(browser),
            Err(e) => panic!("headless Chromium did not start: {e:#}"),
        }
    }

    /// Starts chromedriver and opens a session; a port taken in the meantime is retried.
    pub async fn launch() -> Result<Browser> {
        let mut last_error = anyhow!("not attempted");
        for _ in 0..LAUNCH_ATTEMPTS {
            match Browser::launch_once().await {
                Ok(browser) => return Ok(browser),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    async fn launch_once() -> Result<Browser> {
        let scratch = tempfile::tempdir().context("temp dir for the browser")?;
        let port = free_loopback_port()?;
        let log = scratch.path().join("chromedriver.log");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Chromium inherits this group, so one signal on drop ends them all.
            .process_group(0)
            .spawn()
            .with_context(|| format!("start {CHROMEDRIVER}"))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .timeout(COMMAND_TIMEOUT)
            .build()?;
        // Built before anything else can fail, so that Drop cleans up after every error below.
        let mut browser = Browser {
            http,
            driver_url: format!("http://127.0.0.1:{port}"),
            session_url: None,
            driver,
            scratch,
        };
        browser.wait_for_driver().await?;
        let profile = browser.scratch.path().join("profile");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--no-proxy-server",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1400,900",
                    // Cards fade in from opacity 0, and WebDriver reads a transparent element's
                    // text as empty; the page drops its animations for reduced motion.
                    "--force-prefers-reduced-motion",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let url = format!("{}/session", browser.driver_url);
        let created = browser
            .command_with_timeout(
                Method::POST,
                &url,
                Some(capabilities),
                SESSION_START_TIMEOUT,
            )
            .await
            .context("open a WebDriver session")?;
        let session = created["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no sessionId in {created}"))?;
        browser.session_url = Some(format!("{url}/{session}"));
        Ok(browser)
    }

    async fn wait_for_driver(&mut self) -> Result<()> {
        let status_url = format!("{}/status", self.driver_url);
        let deadline = Instant::now() + DRIVER_READY_TIMEOUT;
        loop {
            if let Some(exit) = self.driver.try_wait()? {
                bail!("chromedriver exited at start ({exit}); port taken?");
            }
            let ready = self
                .command_with_timeout(Method::GET, &status_url, None, Duration::from_secs(2))
                .await
                .is_ok_and(|status| status["ready"] == true);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("chromedriver not ready within {DRIVER_READY_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Sends one command and returns its `value`, or the server's error.
    async fn command_with_timeout(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Value> {
        let mut request = self.http.request(method.clone(), url).timeout(timeout);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let mut reply: Value = response
            .json()
            .await
            .with_context(|| format!("{method} {url}: reply is not JSON"))?;
        let value = reply["value"].take();
        if !status.is_success() {
            return Err(WebDriverError {
                error: value["error"].as_str().unwrap_or("unknown error").into(),
                message: value["message"].as_str().unwrap_or_default().into(),
            })
            .with_context(|| format!("{method} {url} → {status}"));
        }
        Ok(value)
    }

    /// A command on this session, e.g. `("POST", "/url", body)`.
    async fn session(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let session = self
            .session_url
            .as_deref()
            .ok_or_else(|| anyhow!("no WebDriver session"))?;
        self.command_with_timeout(method, &format!("{session}{path}"), body, COMMAND_TIMEOUT)
            .await
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.session(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// The first element matching `css`; an error when there is none.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let found = self
            .session(Method::POST, "/element", Some(by_css(css)))
            .await?;
        element_from(&found)
    }

    /// All elements matching `css`, possibly none.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let found = self
            .session(Method::POST, "/elements", Some(by_css(css)))
            .await?;
        elements_from(&found)
    }

    /// The first element matching `css` inside `parent`.
    pub async fn find_in(&self, parent: &Element, css: &str) -> Result<Element> {
        let path = format!("/element/{}/element", parent.0);
        let found = self.session(Method::POST, &path, Some(by_css(css))).await?;
        element_from(&found)
    }

    /// All elements matching `css` inside `parent`.
    pub async fn find_all_in(&self, parent: &Element, css: &str) -> Result<Vec<Element>> {
        let path = format!("/element/{}/elements", parent.0);
        let found = self.session(Method::POST, &path, Some(by_css(css))).await?;
        elements_from(&found)
    }

    /// The element's rendered text, as a user sees it.
    pub async fn text(&self, element: &Element) -> Result<String> {
        let text = self
            .session(Method::GET, &format!("/element/{}/text", element.0), None)
            .await?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> Result<Option<String>> {
        let path = format!("/element/{}/attribute/{name}", element.0);
        let value = self.session(Method::GET, &path, None).await?;
        Ok(value.as_str().map(str::to_string))
    }

    /// A DOM property, such as an input's current `value` (attributes only hold the initial one).
    pub async fn property(&self, element: &Element, name: &str) -> Result<Value> {
        let path = format!("/element/{}/property/{name}", element.0);
        self.session(Method::GET, &path, None).await
    }

    /// A real click: scrolled into view, hit-tested, with the events a user's click fires.
    pub async fn click(&self, element: &Element) -> Result<()> {
        let path = format!("/element/{}/click", element.0);
        self.session(Method::POST, &path, Some(json!({})))
            .await
            .map(drop)
    }

    /// Types `text` into the element, key by key (characters off the keyboard are inserted whole).
    pub async fn send_keys(&self, element: &Element, text: &str) -> Result<()> {
        let path = format!("/element/{}/value", element.0);
        self.session(Method::POST, &path, Some(json!({ "text": text })))
            .await
            .map(drop)
    }

    /// Picks the option with this value in a `<select>`, by clicking it as a user would.
    pub async fn select_option(&self, select: &Element, value: &str) -> Result<()> {
        let option = self
            .find_in(select, &format!("option[value=\"{value}\"]"))
            .await
            .with_context(|| format!("no option `{value}`"))?;
        self.click(&option).await
    }

    /// Polls until an element matching `css` is in the page.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        wait_until(&format!("an element `{css}`"), timeout, async || {
            Ok(self.find_all(css).await?.into_iter().next())
        })
        .await
    }

    /// Polls until the first element matching `css` shows text containing `needle`, ignoring case
    /// (WebDriver reads the rendered text, which CSS `text-transform` may have upper-cased);
    /// returns the text as rendered.
    pub async fn wait_for_text(
        &self,
        css: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<String> {
        let mut last_seen = None;
        let found = wait_until(
            &format!("`{css}` to show \"{needle}\""),
            timeout,
            async || {
                let Some(element) = self.find_all(css).await?.into_iter().next() else {
                    return Ok(None);
                };
                let text = self.text(&element).await?;
                let done = text.to_lowercase().contains(&needle.to_lowercase());
                last_seen = Some(text.clone());
                Ok(done.then_some(text))
            },
        )
        .await;
        found.with_context(|| format!("last seen: {last_seen:?}"))
    }

    /// Polls until nothing matches `css` any more.
    pub async fn wait_for_absence(&self, css: &str, timeout: Duration) -> Result<()> {
        wait_until(&format!("`{css}` to go away"), timeout, async || {
            Ok(self.find_all(css).await?.is_empty().then_some(()))
        })
        .await
    }

    /// A PNG of the viewport.
    pub async fn screenshot_png(&self) -> Result<Vec<u8>> {
        let encoded = self.session(Method::GET, "/screenshot", None).await?;
        let encoded = encoded
            .as_str()
            .ok_or_else(|| anyhow!("screenshot is not a string"))?;
        decode_base64(encoded)
    }

    /// Ends the session, which closes Chromium; chromedriver itself ends on drop.
    pub async fn quit(mut self) -> Result<()> {
        if let Some(session) = self.session_url.take() {
            self.command_with_timeout(Method::DELETE, &session, None, COMMAND_TIMEOUT)
                .await?;
        }
        Ok(())
    }

    fn driver_log(&self) -> PathBuf {
        self.scratch.path().join("chromedriver.log")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The driver's log says what the browser was doing when the test failed.
            if let Ok(log) = std::fs::read_to_string(self.driver_log()) {
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                eprintln!("--- chromedriver log (last lines) ---\n{}", tail.join("\n"));
            }
        }
        // The whole process group: chromedriver and the Chromium processes it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Polls `probe` every 100 ms until it yields a value or `timeout` passes. Errors from the probe
/// (an element replaced while being read, say) count as "not yet"; the last one is reported.
pub async fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() > deadline {
            let error = anyhow!("waited {timeout:?} for {what}");
            return Err(match last_error {
                Some(last) => error.context(format!("last error: {last:#}")),
                None => error,
            });
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn by_css(css: &str) -> Value {
    json!({"using": "css selector", "value": css})
}

fn element_from(value: &Value) -> Result<Element> {
    value[ELEMENT_KEY]
        .as_str()
        .map(|id| Element(id.to_string()))
        .ok_or_else(|| anyhow!("not an element reference: {value}"))
}

fn elements_from(value: &Value) -> Result<Vec<Element>> {
    value
        .as_array()
        .ok_or_else(|| anyhow!("not a list of elements: {value}"))?
        .iter()
        .map(element_from)
        .collect()
}

/// A loopback port free right now, for chromedriver's `--port`.
fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Standard base64 with padding, as WebDriver screenshots come.
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    fn sextet(byte: u8) -> Result<u32> {
        Ok(match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            other => bail!("not a base64 character: {:?}", other as char),
        }
        .into())
    }
    let bytes: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if bytes.len() % 4 != 0 {
        bail!("base64 length {} is not a multiple of 4", bytes.len());
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for quad in bytes.chunks(4) {
        let padding = quad.iter().rev().take_while(|&&b| b == b'=').count();
        if padding > 2 {
            bail!("bad base64 padding");
        }
        let mut group = 0u32;
        for &byte in &quad[..4 - padding] {
            group = group << 6 | sextet(byte)?;
        }
        group <<= 6 * padding as u32;
        let decoded = group.to_be_bytes();
        out.extend_from_slice(&decoded[1..4 - padding]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("TWFu").unwrap(), b"Man");
        assert_eq!(decode_base64("TWE=").unwrap(), b"Ma");
        assert_eq!(decode_base64("TQ==").unwrap(), b"M");
        assert_eq!(decode_base64("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
        assert_eq!(decode_base64("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        assert!(decode_base64("TQ=").is_err());
        assert!(decode_base64("T*==").is_err());
    }
}
