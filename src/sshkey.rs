//! OpenSSH public keys as the clouds take them (`ssh-ed25519 AAAA... comment`): parsed and checked
//! (the algorithm named in front is the one inside the key's blob), compared by their blob (a comment
//! is not part of the key), and fingerprinted as ECS reports them (MD5 of the blob, colon-separated hex,
//! RFC 4716) and as `ssh-keygen -l` prints them today (`SHA256:` and unpadded base64).
//!
//! Key replication imports the same public key on another cloud and checks the fingerprint the target
//! reports against the one computed here; the simulator computes the targets' fingerprints with it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// The key algorithms the clouds import.
pub const ALGORITHMS: [&str; 5] =
    ["ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"];

/// The longest public key line accepted (an RSA 16384-bit key is about 2,800 characters).
const MAX_LEN: usize = 16 * 1024;

/// A parsed OpenSSH public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The algorithm (`ssh-ed25519`, ...).
    pub algorithm: String,
    /// The key's wire blob (what the base64 decodes to).
    pub blob: Vec<u8>,
}

impl PublicKey {
    /// Parses `algorithm base64 [comment]`; the error says what is wrong without repeating the key.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        if text.len() > MAX_LEN {
            return Err(format!("a public key is at most {MAX_LEN} characters"));
        }
        let mut parts = text.split_whitespace();
        let (Some(algorithm), Some(encoded)) = (parts.next(), parts.next()) else {
            return Err("a public key is written as its type, its base64 and an optional comment".to_owned());
        };
        if !ALGORITHMS.contains(&algorithm) {
            return Err(format!("the key type is not one the clouds import ({})", ALGORITHMS.join(", ")));
        }
        let blob = STANDARD.decode(encoded).map_err(|_| "the key's base64 cannot be read".to_owned())?;
        let named = blob
            .get(..4)
            .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
            .and_then(|n| blob.get(4..4 + n));
        if named != Some(algorithm.as_bytes()) {
            return Err("the key's blob does not hold the key type named in front of it".to_owned());
        }
        if blob.len() < 4 + algorithm.len() + 16 {
            return Err("the key's blob is too short to hold a key".to_owned());
        }
        Ok(PublicKey { algorithm: algorithm.to_owned(), blob })
    }

    /// The MD5 fingerprint, colon-separated lower-case hex (`89:f0:ba:...`), as ECS reports it.
    pub fn md5_fingerprint(&self) -> String {
        let digest = Md5::digest(&self.blob);
        digest.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// The SHA-256 fingerprint as `ssh-keygen -l` prints it (`SHA256:...`).
    pub fn sha256_fingerprint(&self) -> String {
        format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&self.blob)))
    }

    /// The key as one line, without a comment.
    pub fn to_line(&self) -> String {
        format!("{} {}", self.algorithm, STANDARD.encode(&self.blob))
    }
}

/// True when two fingerprints name the same key: the same hex digits, whatever the case and the
/// separators.
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    let digits =
        |s: &str| s.chars().filter(char::is_ascii_hexdigit).map(|c| c.to_ascii_lowercase()).collect::<String>();
    let (a, b) = (digits(a), digits(b));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ed25519 key made by `ssh-keygen -t ed25519` (public half only), and its fingerprints as
    /// `ssh-keygen -l -E md5` and `ssh-keygen -l` print them.
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlRvCD87zZ8Ex6txR2mnmo6TDnq+biIpIXrcfJqPYcx k1@crossgate-demo";
    const MD5: &str = "5b:32:ac:f2:f6:06:dd:e2:04:f2:4a:10:5c:f1:8e:2b";
    const SHA256: &str = "SHA256:dVweT1TTwboF96KZExJ5nGJk99Rihj3k3Xoz4TbmdKY";

    #[test]
    fn a_public_key_parses_and_is_fingerprinted() {
        let key = PublicKey::parse(ED25519).unwrap();
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert_eq!(key.blob.len(), 51);
        assert_eq!(key.md5_fingerprint(), MD5);
        assert_eq!(key.sha256_fingerprint(), SHA256);
        assert!(same_fingerprint(MD5, &MD5.to_uppercase().replace(':', "")));
        assert!(!same_fingerprint(MD5, &MD5.replace("5b", "5c")));
        // The comment is not part of the key.
        assert_eq!(PublicKey::parse(&key.to_line()).unwrap(), key);
    }

    #[test]
    fn what_is_not_a_public_key_is_refused_without_repeating_it() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIGlRvCD87zZ8Ex6txR2mnmo6TDnq+biIpIXrcfJqPYcx",
            "ssh-ed25519 !!!notbase64",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGlRvCD87zZ8Ex6txR2mnmo6TDnq+biIpIXrcfJqPYcx",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
        ] {
            let err = PublicKey::parse(bad).unwrap_err();
            assert!(!err.contains("AAAA"), "{err}");
        }
        assert!(!same_fingerprint("", ""));
    }
}
