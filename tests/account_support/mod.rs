//! RFC 6238 codes computed on the test side (independently of the server) for the account
//! route tests.
#![allow(dead_code)]

/// A base32 TOTP secret the tests enable.
pub(crate) const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|b| *b == c).expect("base32") as u32;
        buffer = ((buffer << 5) | value) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The RFC 6238 (HMAC-SHA1, 30 s, 6 digits) code of a base32 secret now.
pub(crate) fn totp_now(secret: &str) -> String {
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        &base32_decode(secret),
    );
    let step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30;
    let tag = ring::hmac::sign(&key, &step.to_be_bytes());
    let d = tag.as_ref();
    let offset = (d[19] & 0x0f) as usize;
    let word = u32::from_be_bytes([
        d[offset] & 0x7f,
        d[offset + 1],
        d[offset + 2],
        d[offset + 3],
    ]);
    format!("{:06}", word % 1_000_000)
}
