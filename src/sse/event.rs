//! [`Event`] and [`KeepAlive`]: what one Server-Sent Event looks like on the wire.

use std::fmt;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::backend::ChatFrame;

/// One Server-Sent Event, built field by field and encoded to its exact wire bytes.
///
/// The encoding is fixed: `event:`, `id:` and `retry:` first (each at most once, the last value
/// set wins), then the comment and `data:` lines in the order they were added, then the blank
/// line that ends the event. Each line is the field name, a colon and, when the value is not
/// empty, one space and the value. Text with line breaks (`\n`, `\r\n` or `\r`) becomes one line
/// per piece, which an SSE parser joins back with `\n`.
///
/// Nothing here panics: a value that cannot be written (a line break in `event` or `id`, JSON
/// that does not serialize) is an [`EventError`].
///
/// ```
/// use chatkit_tower::sse::Event;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), chatkit_tower::sse::EventError> {
/// let event = Event::new()
///     .event("update")?
///     .id("42")?
///     .retry(Duration::from_secs(3))
///     .data("first line\nsecond line");
/// assert_eq!(
///     event.to_bytes(),
///     "event: update\nid: 42\nretry: 3000\ndata: first line\ndata: second line\n\n"
/// );
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Event {
    event: Option<String>,
    id: Option<String>,
    retry: Option<u128>,
    /// Comment and `data:` lines, already encoded, in the order they were added.
    lines: BytesMut,
}

impl Event {
    /// An empty event (encodes to a lone blank line, which parsers ignore).
    ///
    /// ```
    /// use chatkit_tower::sse::Event;
    /// assert_eq!(Event::new().to_bytes(), "\n");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `text` as `data:` lines, one per line of `text`. Calling it again adds more lines,
    /// so the parser sees the texts joined by a line break.
    ///
    /// ```
    /// use chatkit_tower::sse::Event;
    /// assert_eq!(Event::new().data("a\r\nb\rc").to_bytes(), "data: a\ndata: b\ndata: c\n\n");
    /// assert_eq!(Event::new().data("x").data("").to_bytes(), "data: x\ndata:\n\n");
    /// ```
    pub fn data(mut self, text: impl AsRef<str>) -> Self {
        for_each_line(text.as_ref(), |line| {
            put_field(&mut self.lines, b"data", line)
        });
        self
    }

    /// Add `value` serialized as compact JSON on one `data:` line (JSON text never holds a raw
    /// line break).
    ///
    /// ```
    /// use chatkit_tower::sse::Event;
    /// let event = Event::new().json_data(&serde_json::json!({"text": "a\nb"})).unwrap();
    /// assert_eq!(event.to_bytes(), "data: {\"text\":\"a\\nb\"}\n\n");
    /// ```
    pub fn json_data<T: serde::Serialize + ?Sized>(
        mut self,
        value: &T,
    ) -> Result<Self, EventError> {
        let json = serde_json::to_vec(value).map_err(|e| EventError(Kind::Json(e)))?;
        self.lines.reserve(json.len() + 7);
        self.lines.put_slice(b"data: ");
        self.lines.put_slice(&json);
        self.lines.put_u8(b'\n');
        Ok(self)
    }

    /// Set the event type (`event:`), which `EventSource` dispatches on; without it the type is
    /// `message`. A line break in `name` is an error.
    ///
    /// ```
    /// use chatkit_tower::sse::Event;
    /// assert_eq!(Event::new().event("ping").unwrap().to_bytes(), "event: ping\n\n");
    /// assert!(Event::new().event("a\nb").is_err());
    /// ```
    pub fn event(mut self, name: impl AsRef<str>) -> Result<Self, EventError> {
        let name = name.as_ref();
        if has_line_break(name) {
            return Err(EventError(Kind::LineBreak("event")));
        }
        self.event = Some(name.to_owned());
        Ok(self)
    }

    /// Set the event id (`id:`), which the browser sends back as `Last-Event-ID` when it
    /// reconnects; an empty id clears it. A line break or a NUL in `id` is an error (browsers
    /// ignore ids holding NUL).
    ///
    /// ```
    /// use chatkit_tower::sse::Event;
    /// assert_eq!(Event::new().id("7").unwrap().data("x").to_bytes(), "id: 7\ndata: x\n\n");
    /// assert!(Event::new().id("a\rb").is_err());
    /// assert!(Event::new().id("a\0b").is_err());
    /// ```
    pub fn id(mut self, id: impl AsRef<str>) -> Result<Self, EventError> {
        let id = id.as_ref();
        if has_line_break(id) {
            return Err(EventError(Kind::LineBreak("id")));
        }
        if id.contains('\0') {
            return Err(EventError(Kind::Nul));
        }
        self.id = Some(id.to_owned());
        Ok(self)
    }

    /// Tell the browser how long to wait before reconnecting (`retry:`, in whole milliseconds).
    ///
    /// ```
    /// use chatkit_tower::sse::Event;
    /// use std::time::Duration;
    /// assert_eq!(Event::new().retry(Duration::from_millis(1500)).to_bytes(), "retry: 1500\n\n");
    /// ```
    pub fn retry(mut self, after: Duration) -> Self {
        self.retry = Some(after.as_millis());
        self
    }

    /// Add a comment (`:` lines), which parsers skip: one line per line of `text`.
    ///
    /// ```
    /// use chatkit_tower::sse::Event;
    /// assert_eq!(Event::new().comment("hi\nthere").to_bytes(), ": hi\n: there\n\n");
    /// assert_eq!(Event::new().comment("").to_bytes(), ":\n\n");
    /// ```
    pub fn comment(mut self, text: impl AsRef<str>) -> Self {
        for_each_line(text.as_ref(), |line| put_field(&mut self.lines, b"", line));
        self
    }

    /// The event's wire bytes, blank line included.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.write_to(&mut buf);
        buf.freeze()
    }

    /// Append the event's wire bytes to `buf`.
    pub(crate) fn write_to(&self, buf: &mut BytesMut) {
        buf.reserve(self.encoded_len());
        if let Some(event) = &self.event {
            put_field(buf, b"event", event);
        }
        if let Some(id) = &self.id {
            put_field(buf, b"id", id);
        }
        if let Some(retry) = self.retry {
            put_field(buf, b"retry", &retry.to_string());
        }
        buf.put_slice(&self.lines);
        buf.put_u8(b'\n');
    }

    fn encoded_len(&self) -> usize {
        let field = |v: &Option<String>| v.as_ref().map_or(0, |v| v.len() + 8);
        field(&self.event) + field(&self.id) + self.retry.map_or(0, |_| 48) + self.lines.len() + 1
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Event")
            .field(&String::from_utf8_lossy(&self.to_bytes()))
            .finish()
    }
}

/// A chat frame as one `data: <json>` event, as the stream endpoint sends them.
///
/// ```
/// use chatkit_tower::backend::ChatFrame;
/// use chatkit_tower::sse::Event;
/// assert_eq!(Event::from(&ChatFrame::Done).to_bytes(), "data: {\"type\":\"done\"}\n\n");
/// ```
impl From<&ChatFrame> for Event {
    fn from(frame: &ChatFrame) -> Self {
        Event::new().data(frame.to_json())
    }
}

impl From<ChatFrame> for Event {
    fn from(frame: ChatFrame) -> Self {
        Event::from(&frame)
    }
}

/// The `event: error` event the kit sends when a stream fails after it began: the data is a
/// [`ChatFrame::Error`] with the error's code and details.
pub(crate) fn error_event(err: &crate::Error) -> Event {
    let frame = ChatFrame::Error {
        code: err.code().as_str().to_owned(),
        error: err.details().to_owned(),
    };
    Event {
        event: Some("error".to_owned()),
        ..Event::from(&frame)
    }
}

/// Why an [`Event`] field could not be set.
///
/// ```
/// use chatkit_tower::sse::Event;
/// let err = Event::new().event("two\nlines").unwrap_err();
/// assert_eq!(err.to_string(), "the SSE `event` field cannot hold a line break");
/// ```
#[derive(Debug)]
pub struct EventError(Kind);

#[derive(Debug)]
enum Kind {
    LineBreak(&'static str),
    Nul,
    Json(serde_json::Error),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::LineBreak(field) => write!(f, "the SSE `{field}` field cannot hold a line break"),
            Kind::Nul => f.write_str("the SSE `id` field cannot hold a NUL character"),
            Kind::Json(e) => write!(f, "the SSE data could not be serialized as JSON: {e}"),
        }
    }
}

impl std::error::Error for EventError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Kind::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EventError> for crate::Error {
    fn from(err: EventError) -> Self {
        crate::Error::internal(err.to_string()).with_source(err)
    }
}

/// Comments sent while a stream is quiet, so proxies and browsers do not close an idle
/// connection: by default `:` (an empty comment) every 15 seconds. The timer restarts whenever
/// the stream sends something.
///
/// ```
/// use chatkit_tower::sse::KeepAlive;
/// use std::time::Duration;
///
/// let keep_alive = KeepAlive::new().interval(Duration::from_secs(10)).text("keep-alive");
/// assert_eq!(keep_alive.interval_duration(), Duration::from_secs(10));
/// assert_eq!(keep_alive.to_bytes(), ": keep-alive\n\n");
/// assert_eq!(KeepAlive::new().to_bytes(), ":\n\n");
/// ```
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepAlive {
    interval: Duration,
    frame: Bytes,
}

impl KeepAlive {
    /// The default interval: 15 seconds.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
    /// The shortest interval; shorter ones are raised to it.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

    /// An empty comment every 15 seconds.
    pub fn new() -> Self {
        Self {
            interval: Self::DEFAULT_INTERVAL,
            frame: Bytes::from_static(b":\n\n"),
        }
    }

    /// Send the comment after this much quiet (at least [`KeepAlive::MIN_INTERVAL`]).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Self::MIN_INTERVAL);
        self
    }

    /// The comment's text (one comment line per line of `text`).
    pub fn text(mut self, text: impl AsRef<str>) -> Self {
        self.frame = Event::new().comment(text).to_bytes();
        self
    }

    /// The interval in use.
    pub fn interval_duration(&self) -> Duration {
        self.interval
    }

    /// The keep-alive comment's wire bytes.
    pub fn to_bytes(&self) -> Bytes {
        self.frame.clone()
    }
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self::new()
    }
}

fn has_line_break(s: &str) -> bool {
    s.bytes().any(|b| b == b'\n' || b == b'\r')
}

/// `name:` then, for a non-empty value, a space and the value; then `\n`. An empty name is a
/// comment line.
fn put_field(buf: &mut BytesMut, name: &[u8], value: &str) {
    buf.reserve(name.len() + value.len() + 3);
    buf.put_slice(name);
    buf.put_u8(b':');
    if !value.is_empty() {
        buf.put_u8(b' ');
        buf.put_slice(value.as_bytes());
    }
    buf.put_u8(b'\n');
}

/// Call `f` on each line of `text`, lines ending at `\r\n`, `\n` or `\r`. Text ending in a
/// line break has an empty last line, so the break survives the parser's join.
fn for_each_line(text: &str, mut f: impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                f(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                f(&text[start..i]);
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    f(&text[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(event: Event) -> String {
        String::from_utf8(event.to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn data_is_split_on_every_kind_of_line_break() {
        assert_eq!(wire(Event::new().data("one")), "data: one\n\n");
        assert_eq!(
            wire(Event::new().data("a\nb\r\nc\rd")),
            "data: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        // A trailing break is kept as an empty last line, so the parser restores it.
        assert_eq!(wire(Event::new().data("a\n")), "data: a\ndata:\n\n");
        assert_eq!(wire(Event::new().data("\r\n")), "data:\ndata:\n\n");
        // "\n\r" is two breaks, not one.
        assert_eq!(
            wire(Event::new().data("a\n\rb")),
            "data: a\ndata:\ndata: b\n\n"
        );
        assert_eq!(wire(Event::new().data("")), "data:\n\n");
    }

    #[test]
    fn leading_spaces_survive_the_parser() {
        // The parser strips exactly one space after the colon.
        assert_eq!(wire(Event::new().data(" x")), "data:  x\n\n");
    }

    #[test]
    fn fields_come_in_a_fixed_order_and_the_last_value_wins() {
        let event = Event::new()
            .data("d1")
            .comment("c")
            .retry(Duration::from_millis(10))
            .id("1")
            .unwrap()
            .event("first")
            .unwrap()
            .event("second")
            .unwrap()
            .data("d2");
        assert_eq!(
            wire(event),
            "event: second\nid: 1\nretry: 10\ndata: d1\n: c\ndata: d2\n\n"
        );
    }

    #[test]
    fn empty_id_clears_the_last_event_id() {
        assert_eq!(wire(Event::new().id("").unwrap()), "id:\n\n");
    }

    #[test]
    fn line_breaks_in_event_and_id_are_errors_not_panics() {
        for bad in ["a\nb", "a\r", "\r\n"] {
            assert!(Event::new().event(bad).is_err(), "{bad:?}");
            assert!(Event::new().id(bad).is_err(), "{bad:?}");
        }
        let err = Event::new().id("x\0").unwrap_err();
        assert!(err.to_string().contains("NUL"));
    }

    #[test]
    fn json_data_is_one_line() {
        let event = Event::new()
            .json_data(&serde_json::json!({"text": "line\r\nbreak"}))
            .unwrap();
        assert_eq!(wire(event), "data: {\"text\":\"line\\r\\nbreak\"}\n\n");
    }

    #[test]
    fn json_that_cannot_serialize_is_an_error() {
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1);
        let err = Event::new().json_data(&map).unwrap_err();
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(crate::Error::from(err).code(), crate::ErrorCode::Internal);
    }

    #[test]
    fn chat_frames_are_data_events() {
        let frame = ChatFrame::Delta {
            text: "hi\n".into(),
        };
        assert_eq!(
            wire(Event::from(frame)),
            "data: {\"type\":\"delta\",\"text\":\"hi\\n\"}\n\n"
        );
    }

    #[test]
    fn error_event_carries_code_and_details() {
        let err = crate::Error::new(crate::ErrorCode::BackendTimeout, "quiet for 300 ms");
        assert_eq!(
            wire(error_event(&err)),
            "event: error\ndata: {\"type\":\"error\",\"code\":\"BACKEND_TIMEOUT\",\"error\":\"quiet for 300 ms\"}\n\n"
        );
    }

    #[test]
    fn keep_alive_comment_bytes() {
        assert_eq!(KeepAlive::new().to_bytes(), ":\n\n");
        assert_eq!(KeepAlive::new().text("ka").to_bytes(), ": ka\n\n");
        assert_eq!(KeepAlive::new().text("a\nb").to_bytes(), ": a\n: b\n\n");
        assert_eq!(
            KeepAlive::new()
                .interval(Duration::ZERO)
                .interval_duration(),
            KeepAlive::MIN_INTERVAL
        );
    }

    #[test]
    fn encoded_len_is_an_upper_bound() {
        let event = Event::new()
            .event("e")
            .unwrap()
            .id("i")
            .unwrap()
            .retry(Duration::from_secs(u64::MAX))
            .data("d");
        let mut buf = BytesMut::new();
        event.write_to(&mut buf);
        assert!(buf.len() <= event.encoded_len());
    }
}
