//! `multipart/form-data` bodies as recorded: split into parts (for redaction before storage and
//! for schema inference), and put back together after a part was redacted.
//!
//! Lenient on purpose: a recorded body may be cut at the recording limit, so a last part without
//! its closing boundary is still returned (marked [`Part::complete`] `false`). A body that is not
//! multipart at all gives `None`, never a panic.
use memchr::memmem;

/// One part of a multipart body, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// The form field name (`name=` of `Content-Disposition`), empty when absent.
    pub name: String,
    /// The file name, when the part is a file upload.
    pub filename: Option<String>,
    /// The part's `Content-Type`, lower case without parameters; empty when absent.
    pub content_type: String,
    /// The part's header block as sent (without the blank line after it).
    pub head: &'a [u8],
    /// The part's content.
    pub data: &'a [u8],
    /// False when the body ended before this part's closing boundary (a cut recording).
    pub complete: bool,
}

/// The `boundary` parameter of a `multipart/*` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let (media, params) = content_type.split_once(';')?;
    if !media.trim().to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty() && value.len() <= 200).then_some(value)
    })
}

/// Whether a content type is `multipart/form-data`.
pub fn is_form_data(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("multipart/form-data")
}

/// The parts of `body`, or `None` when it holds no `--boundary` line.
pub fn parse<'a>(boundary: &str, body: &'a [u8]) -> Option<Vec<Part<'a>>> {
    let delimiter = format!("--{boundary}");
    let finder = memmem::Finder::new(delimiter.as_bytes());
    let first = finder.find(body)?;
    let mut parts = Vec::new();
    let mut at = first + delimiter.len();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            break;
        }
        // The rest of the boundary line (transport padding, then CRLF).
        let Some(line_end) = memchr::memchr(b'\n', rest) else {
            break;
        };
        let start = at + line_end + 1;
        let (data_end, next, complete) = match next_delimiter(&finder, body, start) {
            Some((data_end, next)) => (data_end, next + delimiter.len(), true),
            None => (body.len(), body.len(), false),
        };
        parts.push(part(&body[start..data_end], complete));
        if !complete {
            break;
        }
        at = next;
    }
    Some(parts)
}

/// Where the part starting at `from` ends (before the CRLF preceding the delimiter) and where
/// the delimiter starts.
fn next_delimiter(finder: &memmem::Finder<'_>, body: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut search = from;
    loop {
        let found = search + finder.find(&body[search..])?;
        // A delimiter only counts at the start of a line.
        if found == from || body[..found].ends_with(b"\n") {
            let mut end = found;
            if body[..end].ends_with(b"\n") {
                end -= 1;
            }
            if end > from && body[..end].ends_with(b"\r") {
                end -= 1;
            }
            return Some((end.max(from), found));
        }
        search = found + 1;
    }
}

/// One part's head and content.
fn part(raw: &[u8], complete: bool) -> Part<'_> {
    let (head, data) = match memmem::find(raw, b"\r\n\r\n") {
        Some(at) => (&raw[..at], &raw[at + 4..]),
        None => match memmem::find(raw, b"\n\n") {
            Some(at) => (&raw[..at], &raw[at + 2..]),
            None => (raw, &raw[raw.len()..]),
        },
    };
    let text = String::from_utf8_lossy(head);
    let mut name = String::new();
    let mut filename = None;
    let mut content_type = String::new();
    for line in text.lines() {
        let Some((header, value)) = line.split_once(':') else {
            continue;
        };
        if header.trim().eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                match param.split_once('=') {
                    Some((key, v)) if key.trim().eq_ignore_ascii_case("name") => {
                        name = unquote(v);
                    }
                    Some((key, v)) if key.trim().eq_ignore_ascii_case("filename") => {
                        filename = Some(unquote(v));
                    }
                    _ => {}
                }
            }
        } else if header.trim().eq_ignore_ascii_case("content-type") {
            content_type = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
        }
    }
    Part {
        name,
        filename,
        content_type,
        head,
        data,
        complete,
    }
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_string()
}

/// Writes `parts` back as a body with `boundary`; `replace(index)` gives new content for a part.
pub fn rebuild<'a>(
    boundary: &str,
    parts: &[Part<'a>],
    mut replace: impl FnMut(usize) -> Option<Vec<u8>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(part.head);
        out.extend_from_slice(b"\r\n\r\n");
        match replace(index) {
            Some(data) => out.extend_from_slice(&data),
            None => out.extend_from_slice(part.data),
        }
        if !part.complete {
            return out;
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    out
}

/// The name of an indexed part as a template: `files[3]` → `files[n]`.
pub fn name_template(name: &str) -> std::borrow::Cow<'_, str> {
    if let Some(open) = name.rfind('[') {
        let inside = &name[open + 1..];
        if let Some(digits) = inside.strip_suffix(']') {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return format!("{}[n]", &name[..open]).into();
            }
        }
    }
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{\"content\":\"hi\"}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n";

    #[test]
    fn parts_with_names_files_and_types() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"XyZ\""),
            Some("XyZ")
        );
        assert_eq!(boundary("application/json; boundary=XyZ"), None);
        let parts = parse("XyZ", BODY).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "payload_json");
        assert_eq!(parts[0].content_type, "application/json");
        assert_eq!(parts[0].data, b"{\"content\":\"hi\"}");
        assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
        assert_eq!(parts[1].data, b"\x89PNG");
        assert!(parts.iter().all(|p| p.complete));
        assert_eq!(rebuild("XyZ", &parts, |_| None), BODY);
        assert_eq!(name_template("files[12]"), "files[n]");
        assert_eq!(name_template("payload_json"), "payload_json");
    }

    #[test]
    fn cut_and_bad_bodies_never_panic() {
        for cut in 0..BODY.len() {
            if let Some(parts) = parse("XyZ", &BODY[..cut]) {
                let _ = rebuild("XyZ", &parts, |_| Some(b"x".to_vec()));
            }
        }
        assert!(parse("XyZ", b"no boundary here").is_none());
        let cut = parse("XyZ", &BODY[..120]).unwrap();
        assert!(!cut.last().unwrap().complete);
    }
}
