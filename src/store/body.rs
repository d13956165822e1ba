//! Undoing `Content-Encoding` so recordings hold readable bodies.
use std::io::Read;

use super::records::BodyRecord;

/// Builds the record of a body: decoded from `encoding` when possible, cut at `limit` bytes.
pub fn decode(
    encoding: Option<&str>,
    wire: Vec<u8>,
    wire_size: u64,
    truncated: bool,
    limit: usize,
) -> BodyRecord {
    let encoding = encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e != "identity");
    let Some(encoding_name) = encoding.clone() else {
        return BodyRecord {
            data: wire,
            encoding: None,
            wire_size,
            truncated,
            decode_error: None,
        };
    };
    if truncated {
        // A cut compressed stream cannot be decoded reliably; keep the wire bytes.
        return BodyRecord {
            data: wire,
            encoding,
            wire_size,
            truncated,
            decode_error: Some("body exceeded the recording limit; kept compressed".into()),
        };
    }
    // Content-Encoding lists codings in the order applied: undo them last to first.
    let mut data = wire;
    let mut cut = false;
    for coding in encoding_name.split(',').map(str::trim).rev() {
        match decode_one(coding, &data, limit) {
            Ok((decoded, was_cut)) => {
                data = decoded;
                cut |= was_cut;
            }
            Err(err) => {
                return BodyRecord {
                    data,
                    encoding,
                    wire_size,
                    truncated,
                    decode_error: Some(format!("{coding}: {err}")),
                }
            }
        }
    }
    BodyRecord {
        data,
        encoding,
        wire_size,
        truncated: cut,
        decode_error: None,
    }
}

fn decode_one(coding: &str, data: &[u8], limit: usize) -> Result<(Vec<u8>, bool), String> {
    let reader: Box<dyn Read + '_> = match coding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(data)),
        // "deflate" is zlib-wrapped per the RFC, but some servers send raw deflate.
        "deflate" if data.first().is_some_and(|b| b & 0x0f == 8) => {
            Box::new(flate2::read::ZlibDecoder::new(data))
        }
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(data)),
        "br" => Box::new(brotli_decompressor::Decompressor::new(data, 8192)),
        "zstd" => Box::new(zstd::stream::read::Decoder::new(data).map_err(|e| e.to_string())?),
        other => return Err(format!("unknown content coding `{other}`")),
    };
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    let cut = out.len() > limit;
    out.truncate(limit);
    Ok((out, cut))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = br#"{"id":"81384788765712384","name":"general"}"#;

    #[test]
    fn decodes_every_coding() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(TEXT).unwrap();
        let zl = zl.finish().unwrap();
        let zs = zstd::encode_all(TEXT, 3).unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(TEXT).unwrap();
        }
        for (coding, wire) in [("gzip", gz), ("deflate", zl), ("zstd", zs), ("br", br)] {
            let size = wire.len() as u64;
            let record = decode(Some(coding), wire, size, false, 1 << 20);
            assert_eq!(record.data, TEXT, "{coding}");
            assert_eq!(record.encoding.as_deref(), Some(coding));
            assert_eq!(record.decode_error, None);
        }
    }

    #[test]
    fn garbage_keeps_wire_bytes_and_says_why() {
        let record = decode(Some("gzip"), b"not gzip".to_vec(), 8, false, 1024);
        assert_eq!(record.data, b"not gzip");
        assert!(record.decode_error.unwrap().starts_with("gzip:"));
    }
}
