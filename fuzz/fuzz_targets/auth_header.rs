//! The Authorization header: never panics; a token it takes is a trimmed piece of the
//! header after a Bearer or ApiKey scheme.
#![no_main]

use app::tokens::server::auth::token_from_header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(token) = token_from_header(Some(text)) {
        assert!(text.contains(token));
        assert_eq!(token, token.trim());
        let scheme = text.trim().split(' ').next().unwrap_or_default().to_ascii_lowercase();
        assert!(scheme == "bearer" || scheme == "apikey", "scheme {scheme:?}");
    }
});
