//! Decodes arbitrary bytes as ETF (strict and lenient, to values and straight to JSON) and
//! re-encodes whatever decodes. Must never panic; a decoded value must re-encode and decode equal.
#![no_main]
use discord_mitm::gateway::etf::{self, DecodeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = etf::decode(data, &DecodeOptions::CLIENT_STRICT);
    let mut json = Vec::new();
    let _ = etf::etf_to_json(data, &DecodeOptions::LENIENT, &mut json);
    if let Ok(value) = etf::decode(data, &DecodeOptions::LENIENT) {
        let again = etf::encode(&value).expect("decoded values re-encode");
        assert_eq!(etf::decode(&again, &DecodeOptions::LENIENT).ok(), Some(value));
    }
    let mut term = Vec::new();
    let _ = etf::json_to_etf(data, &mut term);
});
