//! The event protocol on the serial console: one JSON object per line behind
//! the prefix `@sv `, e.g. `@sv {"ev":"boot","schema":1,...}`. Documented in
//! docs/events.md; the harness parses it and tolerates anything else.

use core::fmt::Write;
use serde::{Serialize, Serializer};
use spin::Mutex;

use crate::serial;

/// Bumped when an event changes incompatibly.
pub const SCHEMA: u32 = 2;
pub const PREFIX: &str = "@sv ";

/// An event is a serializable struct with a name; the name becomes `ev`.
pub trait Event: Serialize {
    const NAME: &'static str;
}

/// A 64-bit value shown as a `"0x…"` string: JSON numbers lose precision
/// above 2^53 in the harness, and addresses read better in hex.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hex(pub u64);

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = heapless::String::<18>::new();
        // 18 bytes hold "0x" and 16 digits: this cannot fail.
        let _ = write!(text, "{:#x}", self.0);
        s.serialize_str(&text)
    }
}

const BUFFER: usize = 16 * 1024;
static BUF: Mutex<[u8; BUFFER]> = Mutex::new([0; BUFFER]);

/// Formats `event` as one protocol line into `out`; returns its length.
/// Fails when the line does not fit.
pub fn format<E: Event>(event: &E, out: &mut [u8]) -> Option<usize> {
    let head = PREFIX.len() + r#"{"ev":""#.len() + E::NAME.len();
    let body_at = head + 1; // room for the ',' that replaces the body's '{'
    let n = serde_json_core::to_slice(event, out.get_mut(body_at..)?).ok()?;
    let body_len = n - 1; // without its '{'
    let mut w = Cursor { buf: out, at: 0 };
    w.put(PREFIX.as_bytes())?;
    w.put(br#"{"ev":""#)?;
    w.put(E::NAME.as_bytes())?;
    w.put(b"\"")?;
    // `w.at == body_at`: the next byte replaces the body's '{'.
    if body_len > 1 {
        w.put(b",")?;
        w.at += body_len;
    } else {
        w.put(b"}")?;
    }
    w.put(b"\n")?;
    Some(w.at)
}

struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        self.buf
            .get_mut(self.at..self.at + bytes.len())?
            .copy_from_slice(bytes);
        self.at += bytes.len();
        Some(())
    }
}

/// Bad input the kernel cannot go on with, or can go on without (`fatal`).
#[derive(Serialize)]
struct Error<'a> {
    stage: &'a str,
    message: &'a str,
    fatal: bool,
}
impl Event for Error<'_> {
    const NAME: &'static str = "error";
}

/// Reports an `error` event: what went wrong, and in which stage.
pub fn error(stage: &str, message: &str, fatal: bool) {
    emit(&Error {
        stage,
        message,
        fatal,
    });
}

#[derive(Serialize)]
struct Overflow<'a> {
    event: &'a str,
}
impl Event for Overflow<'_> {
    const NAME: &'static str = "event-overflow";
}

/// Writes `event` to the console as one line.
pub fn emit<E: Event>(event: &E) {
    emit_with(event, false);
}

/// Like `emit`, from a path that ends the run (see `serial::with_forced`).
pub fn emit_fatal<E: Event>(event: &E) {
    if BUF.is_locked() {
        // SAFETY: fatal paths never return to the interrupted writer.
        unsafe { BUF.force_unlock() };
    }
    emit_with(event, true);
}

fn emit_with<E: Event>(event: &E, forced: bool) {
    let mut buf = BUF.lock();
    let len =
        format(event, &mut buf[..]).or_else(|| format(&Overflow { event: E::NAME }, &mut buf[..]));
    if let Some(n) = len {
        let write = |uart: &mut serial::Uart| uart.write(&buf[..n]);
        if forced {
            serial::with_forced(write)
        } else {
            serial::with(write)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Sample<'a> {
        name: &'a str,
        addr: Hex,
        n: u32,
    }
    impl Event for Sample<'_> {
        const NAME: &'static str = "sample";
    }

    #[derive(Serialize)]
    struct Empty {}
    impl Event for Empty {
        const NAME: &'static str = "empty";
    }

    fn line<E: Event>(e: &E, size: usize) -> Option<String> {
        let mut buf = vec![0u8; size];
        format(e, &mut buf).map(|n| String::from_utf8(buf[..n].to_vec()).unwrap())
    }

    #[test]
    fn formats_name_first_then_fields() {
        let e = Sample {
            name: "a\"b",
            addr: Hex(0xffff_ffff_ffff_f000),
            n: 7,
        };
        assert_eq!(
            line(&e, 256).unwrap(),
            "@sv {\"ev\":\"sample\",\"name\":\"a\\\"b\",\"addr\":\"0xfffffffffffff000\",\"n\":7}\n"
        );
    }

    #[test]
    fn formats_an_event_without_fields() {
        assert_eq!(line(&Empty {}, 64).unwrap(), "@sv {\"ev\":\"empty\"}\n");
    }

    #[test]
    fn refuses_a_line_that_does_not_fit() {
        let e = Sample {
            name: "long enough to overflow",
            addr: Hex(0),
            n: 0,
        };
        assert!(line(&e, 40).is_none());
    }
}
