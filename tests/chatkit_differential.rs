//! Differential test: the same conversation through `ChatKitService` and through the reference
//! implementation (openai-chatkit 1.6.5's own `ChatKitServer`, run by
//! `tests/reference/chatkit_twin.py` with an equivalent echo assistant and in-memory store).
//! Ids and times are normalized; then every JSON answer and every event sequence must be
//! identical, key order included.
//!
//! The reference runs in a virtualenv at `target/chatkit-py`, made on first use
//! (`python3 -m venv`, `pip install openai-chatkit==1.6.5`). Without Python or PyPI the test
//! fails: it never skips.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chatkit_tower::chatkit::{
    ChatKitService, EchoAssistant, InMemoryAttachmentStore, InMemoryStore,
};
use chatkit_tower::Principal;
use common::within;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const SDK: &str = "openai-chatkit==1.6.5";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// `target/chatkit-py/bin/python`, made once (safe across test processes: the environment is
/// built in a private folder and renamed into place).
fn reference_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target folder")
            .to_path_buf();
        let venv = target.join("chatkit-py");
        let python = venv.join("bin").join("python");
        if python.exists() {
            return python;
        }
        let staging = target.join(format!("chatkit-py.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&staging),
            "python3 -m venv (is python3-venv installed?)",
        );
        run(
            Command::new(staging.join("bin").join("python")).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                SDK,
            ]),
            "pip install openai-chatkit==1.6.5",
        );
        if std::fs::rename(&staging, &venv).is_err() {
            // Another test process finished first.
            let _ = std::fs::remove_dir_all(&staging);
        }
        assert!(python.exists(), "no Python at {}", python.display());
        python
    })
}

fn run(cmd: &mut Command, what: &str) {
    let mut child = cmd
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish in {INSTALL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The reference server, answering one request per line.
struct Twin {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Twin {
    fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/chatkit_twin.py");
        let mut child = Command::new(reference_python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the reference twin starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            answers,
        }
    }

    fn ask(&mut self, user: &str, request: &Value) -> Value {
        writeln!(self.stdin, "{}", json!({"user": user, "request": request})).unwrap();
        self.stdin.flush().unwrap();
        let line = self
            .answers
            .recv_timeout(ANSWER_TIMEOUT)
            .expect("the reference twin answered in time");
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The same answer shape as the twin's, from `ChatKitService`.
async fn ask_rust(service: &ChatKitService, user: &str, request: &Value) -> Value {
    let mut req = http::Request::post("/chatkit")
        .body(request.to_string())
        .unwrap();
    req.extensions_mut().insert(Principal::new(user));
    let res = within(service.clone().oneshot(req)).await.unwrap();
    let status = res.status().as_u16();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    let body = within(res.into_body().collect()).await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    if status != 200 {
        return json!({"kind": "error", "status": status, "error": text});
    }
    if content_type == "text/event-stream" {
        let events: Vec<Value> = text
            .strip_suffix("\n\n")
            .map(|t| t.split("\n\n").collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|frame| {
                serde_json::from_str(frame.strip_prefix("data: ").expect("a data: event")).unwrap()
            })
            .collect();
        json!({"kind": "sse", "events": events})
    } else {
        assert_eq!(content_type, "application/json");
        json!({"kind": "json", "body": serde_json::from_str::<Value>(&text).unwrap()})
    }
}

/// Each side's ids, numbered in order of first appearance.
#[derive(Default)]
struct Ids {
    names: HashMap<String, String>,
    real: HashMap<String, String>,
}

const PREFIXES: [&str; 7] = ["thr", "msg", "tc", "wf", "tsk", "atc", "shcx"];

impl Ids {
    fn name(&mut self, real: &str) -> String {
        if let Some(name) = self.names.get(real) {
            return name.clone();
        }
        let name = format!("id_{}", self.names.len() + 1);
        self.names.insert(real.to_owned(), name.clone());
        self.real.insert(name.clone(), real.to_owned());
        name
    }

    /// Replace every id inside `text` by its name.
    fn normalize_text(&mut self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for prefix in PREFIXES {
                let len = prefix.len() + 9;
                let starts_word = out
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_ascii_alphanumeric());
                if starts_word
                    && rest.len() >= len
                    && rest.starts_with(prefix)
                    && rest.as_bytes()[prefix.len()] == b'_'
                {
                    let hex = &rest[prefix.len() + 1..len];
                    let ends_word = rest[len..]
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_ascii_alphanumeric());
                    if ends_word
                        && hex
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    {
                        out.push_str(&self.name(&rest[..len]));
                        rest = &rest[len..];
                        continue 'scan;
                    }
                }
            }
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

fn is_time(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (b.len() == 19 || (b[19] == b'.' && b.len() > 20 && digits(20..b.len())))
}

fn normalize(value: &Value, ids: &mut Ids) -> Value {
    match value {
        Value::String(s) if is_time(s) => Value::String("<time>".into()),
        Value::String(s) => Value::String(ids.normalize_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalize(v, ids)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalize(v, ids)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Put this side's real ids in place of `$name` placeholders.
fn substitute(value: &Value, captured: &HashMap<String, String>, ids: &Ids) -> Value {
    match value {
        Value::String(s) if s.starts_with('$') => {
            let name = captured
                .get(&s[1..])
                .unwrap_or_else(|| panic!("nothing captured as {s}"));
            Value::String(ids.real.get(name).cloned().unwrap_or_else(|| name.clone()))
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute(v, captured, ids)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, captured, ids)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn message(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

/// One request of the script, and the ids to remember from its (normalized) answer.
struct Step {
    user: &'static str,
    request: Value,
    capture: &'static [(&'static str, &'static str)],
}

fn step(request: Value, capture: &'static [(&'static str, &'static str)]) -> Step {
    Step {
        user: "alice",
        request,
        capture,
    }
}

fn script() -> Vec<Step> {
    let mut with_files = message("files attached");
    with_files["attachments"] = json!(["$file"]);
    vec![
        step(
            json!({"type": "threads.create", "params": {"input": message("hello brave world")}}),
            &[("t1", "/events/0/thread/id"), ("u1", "/events/1/item/id")],
        ),
        step(
            json!({"type": "threads.add_user_message", "params": {"thread_id": "$t1", "input": message("a  second\tmessage ")}}),
            &[],
        ),
        step(
            json!({"type": "threads.create", "params": {"input": message("another thread")}}),
            &[("t2", "/events/0/thread/id")],
        ),
        step(
            json!({"type": "threads.list", "params": {"limit": 1}}),
            &[("c1", "/body/after")],
        ),
        step(
            json!({"type": "threads.list", "params": {"limit": 1, "after": "$c1"}}),
            &[],
        ),
        step(
            json!({"type": "threads.list", "params": {"order": "asc"}}),
            &[],
        ),
        step(
            json!({"type": "items.list", "params": {"thread_id": "$t1", "limit": 1, "order": "asc"}}),
            &[("c2", "/body/after")],
        ),
        step(
            json!({"type": "items.list", "params": {"thread_id": "$t1", "limit": 2, "order": "asc", "after": "$c2"}}),
            &[],
        ),
        step(
            json!({"type": "items.list", "params": {"thread_id": "$t1"}}),
            &[],
        ),
        step(
            json!({"type": "threads.update", "params": {"thread_id": "$t1", "title": "Renamed"}}),
            &[],
        ),
        step(
            json!({"type": "items.feedback", "params": {"thread_id": "$t1", "item_ids": ["$u1"], "kind": "positive"}}),
            &[],
        ),
        step(
            json!({"type": "threads.retry_after_item", "params": {"thread_id": "$t1", "item_id": "$u1"}}),
            &[("a2", "/events/1/item/id")],
        ),
        step(
            json!({"type": "threads.custom_action", "params": {"thread_id": "$t1", "action": {"type": "save", "payload": {"id": 1, "b": [true]}}}}),
            &[],
        ),
        step(
            json!({"type": "threads.custom_action", "params": {"thread_id": "$t1", "item_id": "$u1", "action": {"type": "save"}}}),
            &[],
        ),
        step(
            json!({"type": "threads.sync_custom_action", "params": {"thread_id": "$t1", "action": {"type": "toggle"}}}),
            &[],
        ),
        step(
            json!({"type": "threads.get_by_id", "params": {"thread_id": "$t1"}}),
            &[],
        ),
        step(
            json!({"type": "input.transcribe", "params": {"audio_base64": "AAECAw==", "mime_type": "audio/webm;codecs=opus"}}),
            &[],
        ),
        step(
            json!({"type": "attachments.create", "params": {"name": "a.pdf", "size": 3, "mime_type": "application/pdf"}}),
            &[("file", "/body/id")],
        ),
        step(
            json!({"type": "attachments.create", "params": {"name": "a.png", "size": 3, "mime_type": "image/png"}}),
            &[("image", "/body/id")],
        ),
        step(
            json!({"type": "threads.create", "params": {"input": with_files}, "metadata": {"source": "test"}}),
            &[],
        ),
        step(
            json!({"type": "attachments.delete", "params": {"attachment_id": "$image"}}),
            &[],
        ),
        step(
            json!({"type": "threads.delete", "params": {"thread_id": "$t2"}}),
            &[],
        ),
        step(json!({"type": "threads.list", "params": {}}), &[]),
        // Errors the SDK answers.
        step(
            json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_deadbeef"}}),
            &[],
        ),
        step(
            json!({"type": "threads.add_user_message", "params": {"thread_id": "thr_deadbeef", "input": message("hi")}}),
            &[],
        ),
        step(json!({"type": "threads.explode", "params": {}}), &[]),
        step(json!({"type": "threads.create", "params": {}}), &[]),
        step(
            json!({"type": "threads.retry_after_item", "params": {"thread_id": "$t1", "item_id": "$a2"}}),
            &[],
        ),
        step(
            json!({"type": "threads.sync_custom_action", "params": {"thread_id": "$t1", "item_id": "$u1", "action": {"type": "x"}}}),
            &[],
        ),
        step(
            json!({"type": "items.list", "params": {"thread_id": "$t1", "after": "msg_00000000"}}),
            &[],
        ),
        Step {
            user: "bob",
            request: json!({"type": "threads.get_by_id", "params": {"thread_id": "$t1"}}),
            capture: &[],
        },
    ]
}

/// Error answers compare by status only (the reference's words are Python exceptions).
fn comparable(mut answer: Value) -> Value {
    if answer["kind"] == "error" {
        answer.as_object_mut().unwrap().remove("error");
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatkit_service_answers_exactly_like_the_python_sdk() {
    let mut twin = tokio::task::block_in_place(Twin::start);
    let service = ChatKitService::builder(EchoAssistant::new(Duration::ZERO), InMemoryStore::new())
        .attachment_store(InMemoryAttachmentStore::new("http://127.0.0.1/uploads"))
        .build()
        .unwrap();
    let (mut ours, mut theirs) = (Ids::default(), Ids::default());
    let mut captured = HashMap::new();
    for (i, step) in script().into_iter().enumerate() {
        let rust_request = substitute(&step.request, &captured, &ours);
        let python_request = substitute(&step.request, &captured, &theirs);
        let rust = comparable(normalize(
            &ask_rust(&service, step.user, &rust_request).await,
            &mut ours,
        ));
        let raw = tokio::task::block_in_place(|| twin.ask(step.user, &python_request));
        let python = comparable(normalize(&raw, &mut theirs));
        assert_eq!(
            serde_json::to_string_pretty(&rust).unwrap(),
            serde_json::to_string_pretty(&python).unwrap(),
            "step {i}: {}\nreference said: {raw}",
            step.request
        );
        for (name, pointer) in step.capture {
            let id = rust.pointer(pointer).and_then(Value::as_str);
            let id = id.unwrap_or_else(|| panic!("step {i}: nothing at {pointer} in {rust}"));
            captured.insert((*name).to_owned(), id.to_owned());
        }
    }
}
