//! Untrusted text made safe for a terminal.
//!
//! Names, commands and messages that come from an image, a layer or a guest may carry bytes a
//! terminal acts on: escape sequences that recolour, move the cursor, retitle the window or
//! answer back, and bidirectional overrides that make text read differently than it is.
//! Everything vmc prints from such a source goes through [`escape`] (one line) or
//! [`escape_lines`] (keeps line breaks), which write those characters as visible escapes in
//! the style of Rust's `escape_debug`: `\n`, `\r`, `\t`, `\x1b` for the other C0 controls and
//! DEL, `\u{9b}` for C1 controls and Unicode format controls, and `\xNN` for each byte of
//! invalid UTF-8. Printable text, including non-ASCII letters, is kept as it is.
//!
//! Backslashes are kept, so escaping is idempotent: a message that already quotes a name with
//! `{:?}` can be escaped again as a whole without doubling its escapes.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `text` on one line with every control character and format control escaped.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_with(text, false)
}

/// Like [`escape`], but line feeds stay line breaks (for multi-line messages such as a guest's
/// last console output).
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_with(text, true)
}

/// `bytes` as [`escape`] shows them, with each byte of invalid UTF-8 written as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape(chunk.valid()));
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// A path as [`escape_bytes`] shows it (a path's bytes need not be UTF-8).
pub fn escape_path(path: &Path) -> String {
    escape_bytes(path.as_os_str().as_bytes())
}

fn escape_with(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe(c) && !(keep_newlines && c == '\n');
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !needs(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Whether a terminal could act on `c` or show it as something else: C0 controls, DEL, C1
/// controls (a UTF-8 terminal may take U+009B as CSI), and the invisible format controls that
/// reorder or hide text (bidirectional overrides and isolates, zero-width characters, line and
/// paragraph separators, the byte-order mark, interlinear annotations).
fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}')
}

/// `value` as compact JSON safe for a terminal. serde_json escapes C0 controls only; this
/// also writes DEL, C1 and format controls as `\uXXXX` (still the same JSON string).
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    write_json(value, serde_json::ser::CompactFormatter)
}

/// `value` as pretty-printed JSON safe for a terminal, as [`to_json`] escapes it.
pub fn to_json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    write_json(value, serde_json::ser::PrettyFormatter::new())
}

fn write_json<T, F>(value: &T, layout: F) -> serde_json::Result<String>
where
    T: serde::Serialize + ?Sized,
    F: serde_json::ser::Formatter,
{
    let mut bytes = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut bytes, TerminalSafeJson(layout));
    value.serialize(&mut serializer)?;
    // serde_json hands the formatter UTF-8 only, and the escapes are ASCII.
    Ok(String::from_utf8(bytes).expect("serde_json writes UTF-8"))
}

/// A serde_json formatter that lays out like `F` and escapes the unsafe characters of string
/// fragments.
struct TerminalSafeJson<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for TerminalSafeJson<F> {
    fn write_string_fragment<W: std::io::Write + ?Sized>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (index, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..index])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = index + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: std::io::Write + ?Sized>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }

    fn end_array<W: std::io::Write + ?Sized>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }

    fn begin_array_value<W: std::io::Write + ?Sized>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn end_array_value<W: std::io::Write + ?Sized>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }

    fn begin_object<W: std::io::Write + ?Sized>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }

    fn end_object<W: std::io::Write + ?Sized>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }

    fn begin_object_key<W: std::io::Write + ?Sized>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn begin_object_value<W: std::io::Write + ?Sized>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }

    fn end_object_value<W: std::io::Write + ?Sized>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(escape("red\u{1b}[31m"), "red\\x1b[31m");
        assert_eq!(escape("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(escape("\u{7f}\u{0}\u{7}"), "\\x7f\\x00\\x07");
        assert_eq!(escape("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(escape("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(
            escape("zero\u{200b}width\u{feff}"),
            "zero\\u{200b}width\\u{feff}"
        );
    }

    #[test]
    fn printable_text_is_kept_and_borrowed() {
        for text in [
            "busybox:latest",
            "Grüße, 世界 🙂",
            "C:\\path \"quoted\"",
            "",
        ] {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn escaping_is_idempotent() {
        let once = escape("exec: \"x\\u{1b}\": \u{1b}[2J\u{9b}");
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn lines_keep_their_breaks_only() {
        assert_eq!(
            escape_lines("one\ntwo\u{1b}]0;t\u{7}\r\n"),
            "one\ntwo\\x1b]0;t\\x07\\r\n"
        );
    }

    #[test]
    fn invalid_utf8_bytes_are_shown_as_hex() {
        assert_eq!(
            escape_bytes(b"ok\xff\xfe\x1b\xc3\xa9"),
            "ok\\xff\\xfe\\x1bé"
        );
        // A character cut off at the end of a truncated message.
        assert_eq!(escape_bytes(b"caf\xc3"), "caf\\xc3");
        assert_eq!(
            escape_path(Path::new(std::ffi::OsStr::from_bytes(b"/a/\x1b\x80"))),
            "/a/\\x1b\\x80"
        );
    }

    #[test]
    fn json_escapes_what_serde_json_leaves_raw() {
        let value = serde_json::json!({"cmd": ["\u{1b}[31m", "\u{9b}\u{7f}", "é\u{202e}"]});
        let json = to_json_pretty(&value).unwrap();
        assert!(!json.chars().any(|c| is_unsafe(c) && c != '\n'), "{json:?}");
        assert!(json.contains("\\u001b[31m") && json.contains("\\u009b\\u007f"));
        assert_eq!(
            json,
            serde_json::to_string_pretty(&value)
                .unwrap()
                .replace('\u{9b}', "\\u009b")
                .replace('\u{7f}', "\\u007f")
                .replace('\u{202e}', "\\u202e")
        );
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, value);
        let compact = to_json(&value).unwrap();
        assert_eq!(
            compact,
            r#"{"cmd":["\u001b[31m","\u009b\u007f","é\u202e"]}"#
        );
    }
}
