//! A real browser (headless Chromium, driven through ChromeDriver) against the example server:
//! a page on another origin gets a client secret through a real CORS preflight, reads a streamed
//! reply piece by piece and chats over a WebSocket; a page on an origin that is not allowed is
//! stopped by the browser itself; and the demo page at `/` completes one full exchange.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test` installs them). A failing
//! test saves a screenshot to `target/browser-<test>.png`.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use http::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

const FLOW_PAGE: &str = include_str!("browser/flow.html");

/// ChromeDriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempdir::Dir,
}

mod tempdir {
    /// A fresh directory under the target folder, removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "chatkit-tower-{name}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_browser(name: &str) -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver not found: install Debian's chromium and chromium-driver (scripts/test does)");
    let profile = tempdir::Dir::new(name);
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    // Wait for ChromeDriver to listen.
    common::within(async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--window-size=1280,900",
                format!("--user-data-dir={}", driver._profile.0.display()),
            ]
        }),
    );
    let client = tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url),
    )
    .await
    .expect("Chromium did not start in time")
    .expect("Chromium did not start");
    (driver, client)
}

/// Serve `page` at `/` from its own origin.
async fn serve_page(page: &'static str) -> common::TestServer {
    common::serve(tower::service_fn(
        move |_req: http::Request<_>| async move {
            let mut res = Response::new(chatkit_tower::Body::from(page));
            res.headers_mut()
                .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            Ok::<_, Infallible>(res)
        },
    ))
    .await
}

/// Run `f` with a browser; on failure save a screenshot, then fail.
async fn with_browser<F, Fut>(name: &str, f: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let (_driver, client) = start_browser(name).await;
    let result = tokio::time::timeout(Duration::from_secs(60), f(client.clone()))
        .await
        .unwrap_or_else(|_| Err("the browser flow did not finish in 60 s".into()));
    if let Err(why) = result {
        let path = format!("{}/target/browser-{name}.png", env!("CARGO_MANIFEST_DIR"));
        if let Ok(Ok(png)) =
            tokio::time::timeout(Duration::from_secs(10), client.screenshot()).await
        {
            let _ = std::fs::write(&path, png);
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        panic!("{why} (screenshot: {path})");
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
}

async fn run_flow(client: &Client, page: &str, api: SocketAddr) -> Result<Value, String> {
    client.goto(page).await.map_err(|e| e.to_string())?;
    client
        .execute_async(
            "const done = arguments[arguments.length - 1]; runFlow(arguments[0]).then(done);",
            vec![json!(format!("http://{api}"))],
        )
        .await
        .map_err(|e| e.to_string())
}

fn check(cond: bool, what: &str, out: &Value) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}: {out:#}"))
    }
}

#[tokio::test]
async fn cross_origin_page_gets_a_secret_streams_and_chats() {
    let page = serve_page(FLOW_PAGE).await;
    let page_origin = format!("http://127.0.0.1:{}", page.addr.port());
    let api = common::serve_app(&[
        ("CHATKIT_ALLOWED_ORIGINS", page_origin.as_str()),
        ("CHATKIT_DEMO_PACE_MS", "30"),
    ])
    .await;
    let api_addr = api.addr;
    with_browser("cross-origin", |client| async move {
        let out = run_flow(&client, &format!("{page_origin}/"), api_addr).await?;
        check(out["stage"] == "done", "the flow did not complete", &out)?;
        check(
            out["sessionStatus"] == 200 && out["hasSecret"] == true,
            "no client secret",
            &out,
        )?;
        check(
            out["streamType"] == "text/event-stream",
            "not a stream",
            &out,
        )?;
        check(
            out["streamText"] == "one two three four five",
            "wrong streamed text",
            &out,
        )?;
        check(
            out["streamReads"].as_u64().unwrap_or(0) > 1,
            "the stream arrived in one piece",
            &out,
        )?;
        check(
            out["wsText"] == "hello over the socket",
            "no WebSocket reply",
            &out,
        )?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn page_on_an_origin_not_allowed_is_blocked_by_the_browser() {
    let page = serve_page(FLOW_PAGE).await;
    let page_origin = format!("http://127.0.0.1:{}", page.addr.port());
    let api = common::serve_app(&[("CHATKIT_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let api_addr = api.addr;
    with_browser("blocked-origin", |client| async move {
        let out = run_flow(&client, &format!("{page_origin}/"), api_addr).await?;
        check(
            out["stage"] == "session",
            "the foreign page got past the session call",
            &out,
        )?;
        check(
            out["error"].as_str().unwrap_or("").starts_with("TypeError"),
            "the browser did not block the request",
            &out,
        )?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn demo_page_completes_a_full_exchange() {
    let api = common::serve_app(&[
        ("CHATKIT_DEMO_PACE_MS", "20"),
        ("CHATKIT_MODELS", "custom-v1,custom-v2"),
    ])
    .await;
    let url = api.url("/");
    with_browser("demo-page", |client| async move {
        let e = |e: fantoccini::error::CmdError| e.to_string();
        client.goto(&url).await.map_err(e)?;
        client
            .find(Locator::Css("#connect"))
            .await
            .map_err(e)?
            .click()
            .await
            .map_err(e)?;
        wait_text(&client, "#session-status", "active").await?;

        let input = client
            .find(Locator::Css("#stream-input"))
            .await
            .map_err(e)?;
        input.send_keys("streamed from rust").await.map_err(e)?;
        client
            .find(Locator::Css("#stream-send"))
            .await
            .map_err(e)?
            .click()
            .await
            .map_err(e)?;
        wait_text(&client, "#stream-out", "streamed from rust").await?;

        wait_text(&client, "#ws-status", "open").await?;
        let input = client.find(Locator::Css("#ws-input")).await.map_err(e)?;
        input.send_keys("socket hello").await.map_err(e)?;
        client
            .find(Locator::Css("#ws-send"))
            .await
            .map_err(e)?
            .click()
            .await
            .map_err(e)?;
        // Our message and the reply: two bubbles with the text.
        for _ in 0..200 {
            let bubbles = client
                .find_all(Locator::Css("#ws-log .msg"))
                .await
                .map_err(e)?;
            let mut texts = Vec::new();
            for b in &bubbles {
                texts.push(b.text().await.map_err(e)?);
            }
            if texts
                .iter()
                .filter(|t| t.as_str() == "socket hello")
                .count()
                == 2
            {
                // `CHATKIT_SCREENSHOT=path` keeps a picture of the finished exchange (the README's).
                if let Some(path) = std::env::var_os("CHATKIT_SCREENSHOT") {
                    let png = client.screenshot().await.map_err(e)?;
                    std::fs::write(path, png).map_err(|err| err.to_string())?;
                }
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("no WebSocket reply on the demo page".into())
    })
    .await;
}

/// Wait until the element's text contains `needle`.
async fn wait_text(client: &Client, css: &str, needle: &str) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..200 {
        if let Ok(el) = client.find(Locator::Css(css)).await {
            last = el.text().await.unwrap_or_default();
            if last.contains(needle) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{css} never showed {needle:?}; it shows {last:?}"))
}
