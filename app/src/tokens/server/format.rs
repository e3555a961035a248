//! The token string: `qh_<prefix>_<secret>`. An 8-character `[a-z0-9]` prefix, then a
//! 40-character `[A-Za-z0-9]` secret: 34 random characters and a 6-character base62
//! CRC32 of everything before it. Parsing checks the shape and the checksum, so typos
//! and made-up strings are turned away without a database read.

use rand::{seq::IndexedRandom, RngExt};

pub const TOKEN_LEN: usize = 3 + PREFIX_LEN + 1 + SECRET_LEN;
pub const PREFIX_LEN: usize = 8;
pub const SECRET_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;
const RANDOM_LEN: usize = 34;
const CHECKSUM_LEN: usize = 6;

const PREFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A token that has the right shape and checksum. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedToken {
    prefix: String,
    secret: String,
}

impl std::fmt::Debug for ParsedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ParsedToken(qh_{}_…)", self.prefix)
    }
}

impl ParsedToken {
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The part that is hashed with bcrypt; handle with care.
    pub fn secret(&self) -> &str {
        &self.secret
    }
    /// The full token, for the one response that reveals it.
    pub fn expose(&self) -> String {
        format!("qh_{}_{}", self.prefix, self.secret)
    }
}

/// Base62 of a CRC32, left-padded to 6 characters (62^6 > 2^32).
fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

pub fn random_prefix() -> String {
    let mut rng = rand::rng();
    (0..PREFIX_LEN).map(|_| *PREFIX_ALPHABET.choose(&mut rng).expect("non-empty") as char).collect()
}

/// A new token with the given prefix, its secret from the OS-seeded CSPRNG.
pub fn generate(prefix: &str) -> ParsedToken {
    let mut rng = rand::rng();
    let random: String = (0..RANDOM_LEN).map(|_| BASE62[rng.random_range(0..BASE62.len())] as char).collect();
    let sum = checksum(&format!("qh_{prefix}_{random}"));
    ParsedToken { prefix: prefix.to_string(), secret: format!("{random}{sum}") }
}

/// Shape and checksum; `None` for anything else.
pub fn parse(token: &str) -> Option<ParsedToken> {
    if token.len() != TOKEN_LEN || !token.is_ascii() {
        return None;
    }
    let rest = token.strip_prefix("qh_")?;
    let (prefix, secret) = rest.split_at(PREFIX_LEN);
    let secret = secret.strip_prefix('_')?;
    let prefix_ok = prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret.bytes().all(|b| b.is_ascii_alphanumeric());
    if !prefix_ok || !secret_ok || secret.len() != SECRET_LEN {
        return None;
    }
    let (random, sum) = secret.split_at(RANDOM_LEN);
    if checksum(&format!("qh_{prefix}_{random}")) != sum {
        return None;
    }
    Some(ParsedToken { prefix: prefix.to_string(), secret: secret.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_tokens_match_the_published_pattern_and_parse() {
        for _ in 0..200 {
            let token = generate(&random_prefix()).expose();
            assert_eq!(token.len(), TOKEN_LEN);
            let (head, secret) = token.split_at(12);
            assert!(head.starts_with("qh_") && head.ends_with('_'));
            assert!(head[3..11].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
            assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()) && secret.len() == 40);
            assert_eq!(parse(&token).map(|t| t.expose()), Some(token));
        }
    }

    #[test]
    fn secrets_differ() {
        let a = generate("abcdefgh");
        let b = generate("abcdefgh");
        assert_ne!(a.secret(), b.secret());
    }

    #[test]
    fn a_known_checksum_is_stable() {
        // Secret scanners re-implement this: keep it fixed.
        // CRC32("123456789") is the standard check value 0xCBF43926.
        assert_eq!(checksum("123456789"), "3jZRME");
        assert_eq!(checksum(""), "000000");
    }

    #[test]
    fn debug_hides_the_secret() {
        let t = generate("abcdefgh");
        assert!(!format!("{t:?}").contains(t.secret()));
    }

    proptest! {
        #[test]
        fn any_single_character_change_is_rejected(pos in 12usize..TOKEN_LEN, c in "[A-Za-z0-9]") {
            let token = generate(&random_prefix()).expose();
            let mut bytes = token.clone().into_bytes();
            let replacement = c.as_bytes()[0];
            prop_assume!(bytes[pos] != replacement);
            bytes[pos] = replacement;
            let changed = String::from_utf8(bytes).unwrap();
            // CRC32 catches every single-character change.
            prop_assert!(parse(&changed).is_none());
        }

        #[test]
        fn arbitrary_strings_never_panic_and_rarely_parse(s in ".{0,80}") {
            if let Some(t) = parse(&s) {
                prop_assert_eq!(t.expose(), s);
            }
        }

        #[test]
        fn well_shaped_random_strings_fail_the_checksum(prefix in "[a-z0-9]{8}", secret in "[A-Za-z0-9]{40}") {
            let token = format!("qh_{prefix}_{secret}");
            let expected = checksum(&token[..TOKEN_LEN - CHECKSUM_LEN]);
            prop_assert_eq!(parse(&token).is_some(), secret.ends_with(&expected));
        }

        #[test]
        fn every_generated_token_round_trips(prefix in "[a-z0-9]{8}") {
            let token = generate(&prefix);
            prop_assert_eq!(parse(&token.expose()), Some(token));
        }
    }
}
