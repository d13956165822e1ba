//! Erlang External Term Format (version 131) as Discord's gateway uses it, to and from JSON values.
//!
//! Encoding follows erlpack: `null`/`true`/`false` are the atoms `nil`/`true`/`false`, strings are
//! binaries, integers the smallest of SMALL_INTEGER / INTEGER / SMALL_BIG, floats NEW_FLOAT, arrays
//! proper lists, objects maps with binary keys. Decoding also takes what real encoders emit besides
//! (STRING_EXT, other atoms as strings, tuples, old floats, large bigs, compressed terms).
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The version byte every ETF term starts with.
pub const VERSION: u8 = 131;

const NEW_FLOAT_EXT: u8 = 70;
const COMPRESSED: u8 = 80;
const SMALL_INTEGER_EXT: u8 = 97;
const INTEGER_EXT: u8 = 98;
const FLOAT_EXT: u8 = 99;
const ATOM_EXT: u8 = 100;
const SMALL_TUPLE_EXT: u8 = 104;
const LARGE_TUPLE_EXT: u8 = 105;
const NIL_EXT: u8 = 106;
const STRING_EXT: u8 = 107;
const LIST_EXT: u8 = 108;
const BINARY_EXT: u8 = 109;
const SMALL_BIG_EXT: u8 = 110;
const LARGE_BIG_EXT: u8 = 111;
const SMALL_ATOM_EXT: u8 = 115;
const MAP_EXT: u8 = 116;
const ATOM_UTF8_EXT: u8 = 118;
const SMALL_ATOM_UTF8_EXT: u8 = 119;

/// Why a term could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EtfError {
    /// The input has no bytes.
    #[error("ETF input is empty")]
    Empty,
    /// The first byte is not the ETF version (131); it is this byte.
    #[error("ETF term starts with byte {0}, expected version 131")]
    BadVersion(u8),
    /// The input ends inside a term.
    #[error("ETF term ends early at byte {offset}")]
    UnexpectedEnd {
        /// Byte offset in the input.
        offset: usize,
    },
    /// A tag this codec does not decode.
    #[error("ETF tag {tag} at byte {offset} is not supported")]
    UnsupportedTag {
        /// The tag byte.
        tag: u8,
        /// Byte offset in the input.
        offset: usize,
    },
    /// A map key is an atom (gateway clients send binaries).
    #[error("ETF map key at byte {offset} is an atom; gateway clients must send binary keys")]
    AtomKey {
        /// Byte offset in the input.
        offset: usize,
    },
    /// A map key is not a binary, atom or integer.
    #[error("ETF map key at byte {offset} is not a binary, atom or integer")]
    BadKey {
        /// Byte offset in the input.
        offset: usize,
    },
    /// A string is not UTF-8.
    #[error("ETF {what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// What kind of string (atom, binary, ...).
        what: &'static str,
        /// Byte offset in the input.
        offset: usize,
    },
    /// An integer does not fit in 64 bits.
    #[error("ETF integer at byte {offset} does not fit in 64 bits")]
    IntegerOutOfRange {
        /// Byte offset in the input.
        offset: usize,
    },
    /// A float is NaN or infinite.
    #[error("ETF float at byte {offset} is not a finite number")]
    BadFloat {
        /// Byte offset in the input.
        offset: usize,
    },
    /// A list's tail is not nil.
    #[error("ETF list at byte {offset} is improper (its tail is not nil)")]
    ImproperList {
        /// Byte offset in the input.
        offset: usize,
    },
    /// Terms nest deeper than this many levels.
    #[error("ETF term nests deeper than {0} levels")]
    TooDeep(usize),
    /// A compressed term declares more bytes than allowed.
    #[error("ETF term declares {declared} bytes uncompressed, over the limit of {limit}")]
    TooLarge {
        /// Declared uncompressed size.
        declared: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A compressed term does not inflate.
    #[error("ETF compressed term is corrupt: {0}")]
    Compressed(String),
    /// This many bytes follow the term.
    #[error("ETF term is followed by {0} unexpected bytes")]
    TrailingBytes(usize),
    /// A value ETF cannot express (e.g. a non-finite float).
    #[error("value cannot be ETF-encoded: {0}")]
    Unencodable(String),
    /// The JSON input to convert is invalid.
    #[error("JSON input is invalid: {0}")]
    Json(String),
}

/// How strictly terms are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Accept atom map keys (Discord's server sends them; clients must not: 4002).
    pub allow_atom_keys: bool,
    /// Accept integer map keys, turned into decimal strings (JSON objects only have string keys).
    pub allow_integer_keys: bool,
    /// Deepest nesting of lists, tuples and maps accepted.
    pub max_depth: usize,
    /// Largest uncompressed size a COMPRESSED term may declare.
    pub max_uncompressed_size: usize,
}

impl DecodeOptions {
    /// Accepts everything real encoders emit: for payloads sent by a server, and for recording.
    pub const LENIENT: DecodeOptions = DecodeOptions {
        allow_atom_keys: true,
        allow_integer_keys: true,
        max_depth: 128,
        max_uncompressed_size: 64 << 20,
    };
    /// What Discord accepts from a client: map keys must be binaries.
    pub const CLIENT_STRICT: DecodeOptions = DecodeOptions {
        allow_atom_keys: false,
        allow_integer_keys: false,
        max_depth: 128,
        max_uncompressed_size: 64 << 20,
    };
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions::LENIENT
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Encodes a JSON value as an ETF term (with the version byte).
pub fn encode(value: &Value) -> Result<Vec<u8>, EtfError> {
    let mut out = Vec::with_capacity(256);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Appends a JSON value as an ETF term (with the version byte) to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) -> Result<(), EtfError> {
    out.push(VERSION);
    encode_term(value, out)
}

/// Appends one term without the version byte, for callers assembling a larger term.
pub fn encode_term(value: &Value, out: &mut Vec<u8>) -> Result<(), EtfError> {
    match value {
        Value::Null => write_atom(out, b"nil"),
        Value::Bool(true) => write_atom(out, b"true"),
        Value::Bool(false) => write_atom(out, b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_binary(out, s.as_bytes())?,
        Value::Array(items) => {
            if items.is_empty() {
                out.push(NIL_EXT);
            } else {
                out.push(LIST_EXT);
                out.extend_from_slice(&len_u32(items.len())?.to_be_bytes());
                for item in items {
                    encode_term(item, out)?;
                }
                out.push(NIL_EXT);
            }
        }
        Value::Object(map) => {
            write_map_header(out, map.len())?;
            for (key, item) in map {
                write_binary(out, key.as_bytes())?;
                encode_term(item, out)?;
            }
        }
    }
    Ok(())
}

fn len_u32(len: usize) -> Result<u32, EtfError> {
    u32::try_from(len).map_err(|_| EtfError::Unencodable(format!("length {len} exceeds 2^32-1")))
}

/// Appends an atom (latin-1 short atom, which every decoder reads).
pub(crate) fn write_atom(out: &mut Vec<u8>, name: &[u8]) {
    out.push(SMALL_ATOM_EXT);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
}

/// Appends a MAP_EXT header for `len` pairs.
pub(crate) fn write_map_header(out: &mut Vec<u8>, len: usize) -> Result<(), EtfError> {
    out.push(MAP_EXT);
    out.extend_from_slice(&len_u32(len)?.to_be_bytes());
    Ok(())
}

/// Appends a BINARY_EXT.
pub(crate) fn write_binary(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), EtfError> {
    out.push(BINARY_EXT);
    out.extend_from_slice(&len_u32(bytes.len())?.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends an unsigned integer in its smallest encoding.
pub(crate) fn write_u64(out: &mut Vec<u8>, value: u64) {
    if value <= u8::MAX as u64 {
        out.push(SMALL_INTEGER_EXT);
        out.push(value as u8);
    } else if value <= i32::MAX as u64 {
        out.push(INTEGER_EXT);
        out.extend_from_slice(&(value as i32).to_be_bytes());
    } else {
        write_small_big(out, 0, value);
    }
}

/// Appends a signed integer in its smallest encoding.
pub(crate) fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        write_u64(out, value as u64);
    } else if value >= i32::MIN as i64 {
        out.push(INTEGER_EXT);
        out.extend_from_slice(&(value as i32).to_be_bytes());
    } else {
        write_small_big(out, 1, value.unsigned_abs());
    }
}

fn write_small_big(out: &mut Vec<u8>, sign: u8, magnitude: u64) {
    let digits = magnitude.to_le_bytes();
    let used = 8 - (magnitude.leading_zeros() / 8) as usize;
    out.push(SMALL_BIG_EXT);
    out.push(used as u8);
    out.push(sign);
    out.extend_from_slice(&digits[..used]);
}

fn write_f64(out: &mut Vec<u8>, value: f64) -> Result<(), EtfError> {
    if !value.is_finite() {
        return Err(EtfError::Unencodable(format!("float {value}")));
    }
    out.push(NEW_FLOAT_EXT);
    out.extend_from_slice(&value.to_be_bytes());
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), EtfError> {
    if let Some(u) = n.as_u64() {
        write_u64(out, u);
    } else if let Some(i) = n.as_i64() {
        write_i64(out, i);
    } else if let Some(f) = n.as_f64() {
        write_f64(out, f)?;
    } else {
        return Err(EtfError::Unencodable(format!("number {n}")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// JSON text straight to ETF, without building a `Value` (the proxy's and fan-out's hot path).

/// Transcodes JSON text to an ETF term appended to `out`, without an intermediate `Value`.
pub fn json_to_etf(json: &[u8], out: &mut Vec<u8>) -> Result<(), EtfError> {
    let start = out.len();
    out.push(VERSION);
    let mut de = serde_json::Deserializer::from_slice(json);
    let result = TranscodeTerm { out: &mut *out }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = result {
        out.truncate(start);
        return Err(EtfError::Json(e.to_string()));
    }
    Ok(())
}

struct TranscodeTerm<'a> {
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for TranscodeTerm<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TranscodeTerm<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        write_atom(self.out, b"nil");
        Ok(())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        write_atom(self.out, if v { b"true" } else { b"false" });
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        write_u64(self.out, v);
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        write_i64(self.out, v);
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        write_f64(self.out, v).map_err(E::custom)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        write_binary(self.out, v.as_bytes()).map_err(E::custom)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let header = self.out.len();
        self.out.push(LIST_EXT);
        self.out.extend_from_slice(&[0; 4]);
        let mut count: u32 = 0;
        while let Some(()) = seq.next_element_seed(TranscodeTerm {
            out: &mut *self.out,
        })? {
            count += 1;
        }
        if count == 0 {
            self.out.truncate(header);
        } else {
            self.out[header + 1..header + 5].copy_from_slice(&count.to_be_bytes());
        }
        self.out.push(NIL_EXT);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let header = self.out.len();
        self.out.push(MAP_EXT);
        self.out.extend_from_slice(&[0; 4]);
        let mut count: u32 = 0;
        // A key is transcoded like any term: JSON keys only ever visit as strings (binaries).
        while let Some(()) = map.next_key_seed(TranscodeTerm {
            out: &mut *self.out,
        })? {
            map.next_value_seed(TranscodeTerm {
                out: &mut *self.out,
            })?;
            count += 1;
        }
        self.out[header + 1..header + 5].copy_from_slice(&count.to_be_bytes());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decodes one whole ETF term (version byte included) into a JSON value.
pub fn decode(bytes: &[u8], options: &DecodeOptions) -> Result<Value, EtfError> {
    let (value, used) = decode_prefix(bytes, options)?;
    if used != bytes.len() {
        return Err(EtfError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// Decodes the term at the start of `bytes`; returns it and how many bytes it took.
pub fn decode_prefix(bytes: &[u8], options: &DecodeOptions) -> Result<(Value, usize), EtfError> {
    let mut sink = ValueSink::default();
    let used = parse_versioned(bytes, options, &mut sink)?;
    Ok((sink.finish(), used))
}

/// Transcodes one whole ETF term to compact JSON text appended to `out`, without a `Value`.
pub fn etf_to_json(
    bytes: &[u8],
    options: &DecodeOptions,
    out: &mut Vec<u8>,
) -> Result<(), EtfError> {
    let start = out.len();
    let mut sink = JsonSink { out: &mut *out };
    let result = parse_versioned(bytes, options, &mut sink).and_then(|used| {
        if used == bytes.len() {
            Ok(())
        } else {
            Err(EtfError::TrailingBytes(bytes.len() - used))
        }
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn parse_versioned<S: Sink>(
    bytes: &[u8],
    options: &DecodeOptions,
    sink: &mut S,
) -> Result<usize, EtfError> {
    let Some(&first) = bytes.first() else {
        return Err(EtfError::Empty);
    };
    if first != VERSION {
        return Err(EtfError::BadVersion(first));
    }
    if bytes.get(1) == Some(&COMPRESSED) {
        let mut reader = Reader {
            bytes,
            pos: 2,
            options,
        };
        let declared = reader.u32()? as usize;
        if declared > options.max_uncompressed_size {
            return Err(EtfError::TooLarge {
                declared,
                limit: options.max_uncompressed_size,
            });
        }
        let (inflated, used) = inflate_exact(&bytes[6..], declared)?;
        let mut inner = Reader {
            bytes: &inflated,
            pos: 0,
            options,
        };
        inner.term(sink, 0)?;
        if inner.pos != inflated.len() {
            return Err(EtfError::TrailingBytes(inflated.len() - inner.pos));
        }
        return Ok(6 + used);
    }
    let mut reader = Reader {
        bytes,
        pos: 1,
        options,
    };
    reader.term(sink, 0)?;
    Ok(reader.pos)
}

/// Inflates a zlib stream that must produce exactly `size` bytes; returns them and the input used.
fn inflate_exact(input: &[u8], size: usize) -> Result<(Vec<u8>, usize), EtfError> {
    let mut inflater = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(size.clamp(64, 1 << 20));
    loop {
        if out.len() == out.capacity() {
            if out.len() > size {
                break;
            }
            out.reserve((size + 1 - out.len()).min(1 << 20));
        }
        let consumed = inflater.total_in() as usize;
        let status = inflater
            .decompress_vec(
                &input[consumed..],
                &mut out,
                flate2::FlushDecompress::Finish,
            )
            .map_err(|e| EtfError::Compressed(e.to_string()))?;
        match status {
            flate2::Status::StreamEnd => break,
            flate2::Status::Ok => continue,
            flate2::Status::BufError => {
                if out.len() < out.capacity() {
                    return Err(EtfError::Compressed("data ends early".into()));
                }
            }
        }
    }
    if out.len() != size {
        return Err(EtfError::Compressed(format!(
            "inflated to more or fewer than the declared {size} bytes"
        )));
    }
    Ok((out, inflater.total_in() as usize))
}

/// Receives decoded terms in document order.
trait Sink {
    fn null(&mut self);
    fn boolean(&mut self, value: bool);
    fn int(&mut self, value: i64);
    fn uint(&mut self, value: u64);
    fn float(&mut self, value: f64);
    fn string(&mut self, value: &str);
    /// A binary that must be UTF-8 text; sinks may fuse the check with their own work.
    fn binary(&mut self, bytes: &[u8], offset: usize) -> Result<(), EtfError> {
        self.string(utf8(bytes, "binary", offset)?);
        Ok(())
    }
    fn begin_array(&mut self, len: usize);
    fn array_item(&mut self, index: usize);
    fn end_array(&mut self);
    fn begin_object(&mut self, len: usize);
    fn key(&mut self, index: usize, key: &str);
    /// A binary map key that must be UTF-8 text.
    fn binary_key(&mut self, index: usize, bytes: &[u8], offset: usize) -> Result<(), EtfError> {
        self.key(index, utf8(bytes, "map key", offset)?);
        Ok(())
    }
    fn end_object(&mut self);
}

struct Reader<'a, 'o> {
    bytes: &'a [u8],
    pos: usize,
    options: &'o DecodeOptions,
}

/// A decoded map key: a borrowed string, text we had to build, or a binary not yet checked for UTF-8.
enum Key<'a> {
    Borrowed(&'a str),
    Owned(String),
    Binary(&'a [u8], usize),
}

fn utf8<'a>(bytes: &'a [u8], what: &'static str, offset: usize) -> Result<&'a str, EtfError> {
    std::str::from_utf8(bytes).map_err(|_| EtfError::InvalidUtf8 { what, offset })
}

impl<'a> Reader<'a, '_> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EtfError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(EtfError::UnexpectedEnd {
                offset: self.bytes.len(),
            })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, EtfError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, EtfError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, EtfError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    /// Rejects element counts the remaining input cannot possibly hold, before allocating for them.
    fn check_count(&self, count: usize, min_bytes_each: usize) -> Result<(), EtfError> {
        if count.saturating_mul(min_bytes_each) > self.remaining() {
            return Err(EtfError::UnexpectedEnd {
                offset: self.bytes.len(),
            });
        }
        Ok(())
    }

    /// NEW_FLOAT_EXT's body: an IEEE 754 double, big-endian; must be finite.
    fn new_float(&mut self, offset: usize) -> Result<f64, EtfError> {
        let b = self.take(8)?;
        let value = f64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        if !value.is_finite() {
            return Err(EtfError::BadFloat { offset });
        }
        Ok(value)
    }

    /// FLOAT_EXT's body: 31 bytes of NUL-padded `%.20e` text; must be finite.
    fn text_float(&mut self, offset: usize) -> Result<f64, EtfError> {
        let b = self.take(31)?;
        let text = std::str::from_utf8(b)
            .map_err(|_| EtfError::BadFloat { offset })?
            .trim_end_matches('\0')
            .trim();
        let value: f64 = text.parse().map_err(|_| EtfError::BadFloat { offset })?;
        if !value.is_finite() {
            return Err(EtfError::BadFloat { offset });
        }
        Ok(value)
    }

    /// Opens an array and reads `len` element terms into it (list and tuple bodies); the caller
    /// closes it, after a list's tail.
    fn elements<S: Sink>(
        &mut self,
        sink: &mut S,
        len: usize,
        depth: usize,
    ) -> Result<(), EtfError> {
        self.check_count(len, 1)?;
        self.enter(depth)?;
        sink.begin_array(len);
        for index in 0..len {
            sink.array_item(index);
            self.term(sink, depth + 1)?;
        }
        Ok(())
    }

    fn term<S: Sink>(&mut self, sink: &mut S, depth: usize) -> Result<(), EtfError> {
        let offset = self.pos;
        let tag = self.u8()?;
        match tag {
            SMALL_INTEGER_EXT => sink.uint(self.u8()? as u64),
            INTEGER_EXT => {
                let b = self.take(4)?;
                sink.int(i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64);
            }
            SMALL_BIG_EXT => {
                let n = self.u8()? as usize;
                self.big(sink, n, offset)?;
            }
            LARGE_BIG_EXT => {
                let n = self.u32()? as usize;
                self.big(sink, n, offset)?;
            }
            NEW_FLOAT_EXT => sink.float(self.new_float(offset)?),
            FLOAT_EXT => sink.float(self.text_float(offset)?),
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                let name = self.atom_body(tag, offset)?;
                match name {
                    Key::Borrowed("nil") => sink.null(),
                    Key::Borrowed("true") => sink.boolean(true),
                    Key::Borrowed("false") => sink.boolean(false),
                    Key::Borrowed(s) => sink.string(s),
                    Key::Owned(s) => sink.string(&s),
                    Key::Binary(bytes, offset) => sink.binary(bytes, offset)?,
                }
            }
            BINARY_EXT => {
                let len = self.u32()? as usize;
                let body = self.take(len)?;
                sink.binary(body, offset)?;
            }
            STRING_EXT => {
                // Erlang's term_to_binary writes any list of small integers this way.
                let len = self.u16()? as usize;
                let body = self.take(len)?;
                if depth >= self.options.max_depth {
                    return Err(EtfError::TooDeep(self.options.max_depth));
                }
                sink.begin_array(len);
                for (index, &byte) in body.iter().enumerate() {
                    sink.array_item(index);
                    sink.uint(byte as u64);
                }
                sink.end_array();
            }
            NIL_EXT => {
                sink.begin_array(0);
                sink.end_array();
            }
            LIST_EXT => {
                let len = self.u32()? as usize;
                self.elements(sink, len, depth)?;
                let tail = self.pos;
                if self.u8()? != NIL_EXT {
                    return Err(EtfError::ImproperList { offset: tail });
                }
                sink.end_array();
            }
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => {
                let len = if tag == SMALL_TUPLE_EXT {
                    self.u8()? as usize
                } else {
                    self.u32()? as usize
                };
                self.elements(sink, len, depth)?;
                sink.end_array();
            }
            MAP_EXT => {
                let len = self.u32()? as usize;
                self.check_count(len, 2)?;
                self.enter(depth)?;
                sink.begin_object(len);
                for index in 0..len {
                    match self.key()? {
                        Key::Borrowed(k) => sink.key(index, k),
                        Key::Owned(k) => sink.key(index, &k),
                        Key::Binary(bytes, offset) => sink.binary_key(index, bytes, offset)?,
                    }
                    self.term(sink, depth + 1)?;
                }
                sink.end_object();
            }
            _ => return Err(EtfError::UnsupportedTag { tag, offset }),
        }
        Ok(())
    }

    fn enter(&self, depth: usize) -> Result<(), EtfError> {
        if depth >= self.options.max_depth {
            return Err(EtfError::TooDeep(self.options.max_depth));
        }
        Ok(())
    }

    fn atom_body(&mut self, tag: u8, offset: usize) -> Result<Key<'a>, EtfError> {
        let len = match tag {
            ATOM_EXT | ATOM_UTF8_EXT => self.u16()? as usize,
            _ => self.u8()? as usize,
        };
        let body = self.take(len)?;
        if tag == ATOM_UTF8_EXT || tag == SMALL_ATOM_UTF8_EXT || body.is_ascii() {
            Ok(Key::Borrowed(utf8(body, "atom", offset)?))
        } else {
            // Latin-1 atoms: every byte is the code point.
            Ok(Key::Owned(body.iter().map(|&b| b as char).collect()))
        }
    }

    fn key(&mut self) -> Result<Key<'a>, EtfError> {
        let offset = self.pos;
        let tag = self.u8()?;
        match tag {
            BINARY_EXT => {
                let len = self.u32()? as usize;
                let body = self.take(len)?;
                Ok(Key::Binary(body, offset))
            }
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                if !self.options.allow_atom_keys {
                    return Err(EtfError::AtomKey { offset });
                }
                self.atom_body(tag, offset)
            }
            SMALL_INTEGER_EXT | INTEGER_EXT | SMALL_BIG_EXT | LARGE_BIG_EXT
                if self.options.allow_integer_keys =>
            {
                self.pos = offset;
                let mut number = ValueSink::default();
                self.term(&mut number, 0)?;
                Ok(Key::Owned(number.finish().to_string()))
            }
            _ => Err(EtfError::BadKey { offset }),
        }
    }

    fn big<S: Sink>(&mut self, sink: &mut S, n: usize, offset: usize) -> Result<(), EtfError> {
        let sign = self.u8()?;
        let digits = self.take(n)?;
        let mut magnitude: u64 = 0;
        for (i, &digit) in digits.iter().enumerate() {
            if digit == 0 {
                continue;
            }
            if i >= 8 {
                return Err(EtfError::IntegerOutOfRange { offset });
            }
            magnitude |= (digit as u64) << (8 * i);
        }
        if sign == 0 {
            sink.uint(magnitude);
        } else if magnitude <= i64::MAX as u64 + 1 {
            sink.int((magnitude as i128).wrapping_neg() as i64);
        } else {
            return Err(EtfError::IntegerOutOfRange { offset });
        }
        Ok(())
    }
}

/// Builds a `serde_json::Value` from parse events.
#[derive(Default)]
struct ValueSink {
    stack: Vec<Partial>,
    done: Option<Value>,
}

enum Partial {
    Array(Vec<Value>),
    Object(Map<String, Value>, String),
}

impl ValueSink {
    fn push(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.done = Some(value),
            Some(Partial::Array(items)) => items.push(value),
            Some(Partial::Object(map, key)) => {
                map.insert(std::mem::take(key), value);
            }
        }
    }
    fn finish(self) -> Value {
        self.done.unwrap_or(Value::Null)
    }
}

impl Sink for ValueSink {
    fn null(&mut self) {
        self.push(Value::Null);
    }
    fn boolean(&mut self, value: bool) {
        self.push(Value::Bool(value));
    }
    fn int(&mut self, value: i64) {
        self.push(Value::from(value));
    }
    fn uint(&mut self, value: u64) {
        self.push(Value::from(value));
    }
    fn float(&mut self, value: f64) {
        self.push(Number::from_f64(value).map_or(Value::Null, Value::Number));
    }
    fn string(&mut self, value: &str) {
        self.push(Value::String(value.to_owned()));
    }
    fn begin_array(&mut self, len: usize) {
        self.stack.push(Partial::Array(Vec::with_capacity(len)));
    }
    fn array_item(&mut self, _index: usize) {}
    fn end_array(&mut self) {
        if let Some(Partial::Array(items)) = self.stack.pop() {
            self.push(Value::Array(items));
        }
    }
    fn begin_object(&mut self, len: usize) {
        self.stack
            .push(Partial::Object(Map::with_capacity(len), String::new()));
    }
    fn key(&mut self, _index: usize, key: &str) {
        if let Some(Partial::Object(_, pending)) = self.stack.last_mut() {
            key.clone_into(pending);
        }
    }
    fn end_object(&mut self) {
        if let Some(Partial::Object(map, _)) = self.stack.pop() {
            self.push(Value::Object(map));
        }
    }
}

/// Whether bytes are printable ASCII needing no JSON escape: then they are valid UTF-8 too.
fn is_plain_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
}

fn write_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}

/// Writes a JSON string literal. Most gateway strings are plain ASCII: one scan, one copy.
fn write_json_string(out: &mut Vec<u8>, value: &str) {
    if is_plain_ascii(value.as_bytes()) {
        write_quoted(out, value.as_bytes());
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

/// Writes an ETF binary as a JSON string literal, checking it is UTF-8 in the same scan.
fn write_json_binary(
    out: &mut Vec<u8>,
    bytes: &[u8],
    what: &'static str,
    offset: usize,
) -> Result<(), EtfError> {
    if is_plain_ascii(bytes) {
        write_quoted(out, bytes);
    } else {
        let _ = serde_json::to_writer(&mut *out, utf8(bytes, what, offset)?);
    }
    Ok(())
}

/// Writes compact JSON text from parse events.
struct JsonSink<'a> {
    out: &'a mut Vec<u8>,
}

impl JsonSink<'_> {
    fn scalar<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        // Writing plain scalars into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, value);
    }
}

impl Sink for JsonSink<'_> {
    fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }
    fn boolean(&mut self, value: bool) {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }
    fn int(&mut self, value: i64) {
        self.scalar(&value);
    }
    fn uint(&mut self, value: u64) {
        self.scalar(&value);
    }
    fn float(&mut self, value: f64) {
        self.scalar(&value);
    }
    fn string(&mut self, value: &str) {
        write_json_string(self.out, value);
    }
    fn binary(&mut self, bytes: &[u8], offset: usize) -> Result<(), EtfError> {
        write_json_binary(self.out, bytes, "binary", offset)
    }
    fn binary_key(&mut self, index: usize, bytes: &[u8], offset: usize) -> Result<(), EtfError> {
        if index > 0 {
            self.out.push(b',');
        }
        write_json_binary(self.out, bytes, "map key", offset)?;
        self.out.push(b':');
        Ok(())
    }
    fn begin_array(&mut self, _len: usize) {
        self.out.push(b'[');
    }
    fn array_item(&mut self, index: usize) {
        if index > 0 {
            self.out.push(b',');
        }
    }
    fn end_array(&mut self) {
        self.out.push(b']');
    }
    fn begin_object(&mut self, _len: usize) {
        self.out.push(b'{');
    }
    fn key(&mut self, index: usize, key: &str) {
        if index > 0 {
            self.out.push(b',');
        }
        write_json_string(self.out, key);
        self.out.push(b':');
    }
    fn end_object(&mut self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lenient(bytes: &[u8]) -> Result<Value, EtfError> {
        decode(bytes, &DecodeOptions::LENIENT)
    }

    #[test]
    fn encodes_like_erlpack() {
        assert_eq!(encode(&json!(null)).unwrap(), b"\x83s\x03nil");
        assert_eq!(encode(&json!(true)).unwrap(), b"\x83s\x04true");
        assert_eq!(encode(&json!(7)).unwrap(), b"\x83a\x07");
        assert_eq!(encode(&json!(-1)).unwrap(), b"\x83b\xff\xff\xff\xff");
        assert_eq!(encode(&json!("hi")).unwrap(), b"\x83m\x00\x00\x00\x02hi");
        assert_eq!(encode(&json!([])).unwrap(), b"\x83j");
        assert_eq!(encode(&json!([1])).unwrap(), b"\x83l\x00\x00\x00\x01a\x01j");
        assert_eq!(
            encode(&json!({"a": 1})).unwrap(),
            b"\x83t\x00\x00\x00\x01m\x00\x00\x00\x01aa\x01"
        );
        // A snowflake: SMALL_BIG with 8 little-endian digits.
        assert_eq!(
            encode(&json!(175928847299117063u64)).unwrap(),
            [&b"\x83n\x08\x00"[..], &175928847299117063u64.to_le_bytes()].concat()
        );
        assert_eq!(
            encode(&json!(1.5)).unwrap(),
            [&b"\x83F"[..], &1.5f64.to_be_bytes()].concat()
        );
    }

    #[test]
    fn integer_boundaries_round_trip() {
        for v in [
            0i64,
            255,
            256,
            i32::MAX as i64,
            i32::MAX as i64 + 1,
            i32::MIN as i64,
            i32::MIN as i64 - 1,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(
                lenient(&encode(&json!(v)).unwrap()).unwrap(),
                json!(v),
                "{v}"
            );
        }
        assert_eq!(
            lenient(&encode(&json!(u64::MAX)).unwrap()).unwrap(),
            json!(u64::MAX)
        );
    }

    #[test]
    fn decodes_other_encoders_forms() {
        // STRING_EXT is a list of small integers.
        assert_eq!(
            lenient(b"\x83k\x00\x03\x01\x02\x03").unwrap(),
            json!([1, 2, 3])
        );
        // Atoms other than nil/true/false become strings, in every atom encoding.
        assert_eq!(lenient(b"\x83d\x00\x02ok").unwrap(), json!("ok"));
        assert_eq!(lenient(b"\x83w\x02ok").unwrap(), json!("ok"));
        assert_eq!(lenient(b"\x83v\x00\x03nil").unwrap(), json!(null));
        // Tuples become arrays.
        assert_eq!(lenient(b"\x83h\x02a\x01a\x02").unwrap(), json!([1, 2]));
        // LARGE_BIG with redundant zero digits.
        assert_eq!(
            lenient(b"\x83o\x00\x00\x00\x0a\x01\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00").unwrap(),
            json!(-5)
        );
        // Old FLOAT_EXT text.
        let mut old = b"\x83c".to_vec();
        let mut text = b"1.50000000000000000000e+00".to_vec();
        text.resize(31, 0);
        old.extend_from_slice(&text);
        assert_eq!(lenient(&old).unwrap(), json!(1.5));
    }

    #[test]
    fn atom_keys_are_rejected_only_when_strict() {
        let atom_keyed = b"\x83t\x00\x00\x00\x01s\x02opa\x01";
        assert_eq!(lenient(atom_keyed).unwrap(), json!({"op": 1}));
        assert_eq!(
            decode(atom_keyed, &DecodeOptions::CLIENT_STRICT),
            Err(EtfError::AtomKey { offset: 6 })
        );
        let int_keyed = b"\x83t\x00\x00\x00\x01a\x05a\x01";
        assert_eq!(lenient(int_keyed).unwrap(), json!({"5": 1}));
        assert_eq!(
            decode(int_keyed, &DecodeOptions::CLIENT_STRICT),
            Err(EtfError::BadKey { offset: 6 })
        );
    }

    #[test]
    fn bad_input_gets_clear_errors() {
        assert_eq!(lenient(b""), Err(EtfError::Empty));
        assert_eq!(lenient(b"{}"), Err(EtfError::BadVersion(b'{')));
        assert_eq!(
            lenient(b"\x83m\x00\x00\x00\x05ab"),
            Err(EtfError::UnexpectedEnd { offset: 8 })
        );
        assert_eq!(lenient(b"\x83a\x01a\x02"), Err(EtfError::TrailingBytes(2)));
        assert_eq!(
            lenient(b"\x83Z"),
            Err(EtfError::UnsupportedTag {
                tag: b'Z',
                offset: 1
            })
        );
        assert_eq!(
            lenient(b"\x83m\x00\x00\x00\x01\xff"),
            Err(EtfError::InvalidUtf8 {
                what: "binary",
                offset: 1
            })
        );
        assert_eq!(
            lenient(b"\x83l\x00\x00\x00\x01a\x01a\x02"),
            Err(EtfError::ImproperList { offset: 8 })
        );
        assert_eq!(
            lenient(b"\x83n\x09\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01"),
            Err(EtfError::IntegerOutOfRange { offset: 1 })
        );
        // A list claiming 2^32-1 elements fails before allocating for them.
        assert!(matches!(
            lenient(b"\x83l\xff\xff\xff\xffj"),
            Err(EtfError::UnexpectedEnd { .. })
        ));
        let nan = [&b"\x83F"[..], &f64::NAN.to_be_bytes()].concat();
        assert_eq!(lenient(&nan), Err(EtfError::BadFloat { offset: 1 }));
    }

    #[test]
    fn depth_is_limited() {
        let mut deep = vec![VERSION];
        for _ in 0..200 {
            deep.extend_from_slice(b"l\x00\x00\x00\x01");
        }
        // One NIL closes the innermost list, then one tail NIL per enclosing list.
        deep.extend(std::iter::repeat_n(NIL_EXT, 201));
        assert_eq!(lenient(&deep), Err(EtfError::TooDeep(128)));
    }

    #[test]
    fn compressed_terms_decode_with_a_size_limit() {
        use std::io::Write as _;
        let inner = encode(&json!({"op": 0, "d": "x".repeat(100)})).unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&inner[1..]).unwrap();
        let body = zlib.finish().unwrap();
        let mut term = vec![VERSION, COMPRESSED];
        term.extend_from_slice(&((inner.len() - 1) as u32).to_be_bytes());
        term.extend_from_slice(&body);
        assert_eq!(
            lenient(&term).unwrap(),
            json!({"op": 0, "d": "x".repeat(100)})
        );
        let small = DecodeOptions {
            max_uncompressed_size: 10,
            ..DecodeOptions::LENIENT
        };
        assert!(matches!(
            decode(&term, &small),
            Err(EtfError::TooLarge { .. })
        ));
        // Lying about the size is an error, not a truncation.
        term[5] += 1;
        assert!(matches!(lenient(&term), Err(EtfError::Compressed(_))));
    }

    #[test]
    fn transcoders_agree_with_value_paths() {
        let value = json!({"op": 0, "t": "MESSAGE_CREATE", "s": 3, "d": {
            "id": "175928847299117063", "n": -12345678901i64, "f": 0.25, "e": [], "z": null,
            "nested": [[1, "two", {"three": true}]], "esc": "quote\" slash\\ nl\n \u{1F600}"}});
        let text = serde_json::to_vec(&value).unwrap();
        let mut etf = Vec::new();
        json_to_etf(&text, &mut etf).unwrap();
        assert_eq!(etf, encode(&value).unwrap());
        let mut back = Vec::new();
        etf_to_json(&etf, &DecodeOptions::LENIENT, &mut back).unwrap();
        assert_eq!(back, text);
        assert!(json_to_etf(b"{\"a\":", &mut etf).is_err());
    }
}
