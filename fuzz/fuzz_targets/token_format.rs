//! The token parser: never panics; what it accepts round-trips exactly and has the shape.
#![no_main]

use app::tokens::server::format::{parse, PREFIX_LEN, TOKEN_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(token) = parse(text) {
        assert_eq!(token.expose(), text);
        assert_eq!(text.len(), TOKEN_LEN);
        assert_eq!(token.prefix().len(), PREFIX_LEN);
        assert!(!format!("{token:?}").contains(token.secret()), "Debug shows no secret");
    }
});
