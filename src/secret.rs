//! `Secret`: a credential that never shows itself.
//!
//! Debug, Display and Serialize print a placeholder, the bytes are zeroed on drop, and equality is
//! checked in constant time. The only way to read the value is [`Secret::expose`], which signing code
//! calls. Deserialize takes a string and refuses anything else without repeating the value: a secret
//! written without quotes in a config file (`secret_key = 73914402189733`) must not come back in the
//! error that names its line.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret key (Tencent SecretKey, Alibaba AccessKeySecret).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret's value, for signing only. Never log or render it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is empty (a configuration error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What every rendering of a secret shows instead of it.
const PLACEHOLDER: &str = "***";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({PLACEHOLDER})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PLACEHOLDER)
    }
}

/// A structure holding a secret can be serialized (to a log line, a debug dump) without showing it.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(PLACEHOLDER)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

/// Reads a secret from a string; any other value is refused by its kind alone.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        // `any`, so that a format never words its own type error with the value in it.
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    /// serde's own message repeats a number or a boolean; this one names only its kind.
    fn refuse<E: de::Error>(kind: &str) -> Result<Secret, E> {
        Err(E::custom(format!(
            "a secret must be a string in quotes, not {kind} (the value is not repeated here in case it is the secret)"
        )))
    }
}

impl Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret written as a string in quotes")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret::new(value))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Secret, E> {
        Ok(Secret::new(value))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Self::refuse("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        Self::refuse("an integer")
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        Self::refuse("an integer")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        Self::refuse("an integer")
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        Self::refuse("an integer")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Self::refuse("a number")
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Self::refuse("bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
        assert!(!format!("{s:?}").contains("Gu5t"));
        assert!(!format!("{s}").contains("Gu5t"));
        assert_eq!(s.expose(), "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
    }

    #[test]
    fn serialize_hides_the_value() {
        #[derive(Serialize)]
        struct Holder {
            key: Secret,
        }
        let json = serde_json::to_string(&Holder { key: Secret::new("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE") }).unwrap();
        assert_eq!(json, r#"{"key":"***"}"#);
    }

    #[test]
    fn deserialize_takes_a_string_and_never_repeats_anything_else() {
        let s: Secret = serde_json::from_str(r#""Gu5t9xGARNpq""#).unwrap();
        assert_eq!(s.expose(), "Gu5t9xGARNpq");
        for (json, value) in
            [("73914402189733", "73914402189733"), ("-7391440", "7391440"), ("739.144", "739.144"), ("true", "true")]
        {
            let e = serde_json::from_str::<Secret>(json).unwrap_err().to_string();
            assert!(!e.contains(value), "{e}");
            assert!(e.contains("a secret must be a string"), "{e}");
        }
    }

    #[test]
    fn zeroize_clears_the_value() {
        let mut s = Secret::new("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
        s.zeroize();
        assert!(s.is_empty(), "zeroize leaves nothing of the value");
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(Secret::new("a"), Secret::new("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert_ne!(Secret::new("a"), Secret::new("ab"));
    }
}
