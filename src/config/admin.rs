//! `[admin]`: the operators' listener (metrics, the audit trail's API and page), separate from the
//! callers' listener.
//!
//! ```toml
//! [admin]
//! listen = "127.0.0.1:9090"     # loopback unless said otherwise
//! token = "${ADMIN_TOKEN}"      # every route then needs `Authorization: Bearer <token>`
//! ```
//!
//! A listener on an address other than loopback must have a token: the trail names callers, instances
//! and keys, and is not for anyone who can reach the port.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    listen: Option<String>,
    token: Option<Secret>,
}

/// The admin listener.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The bearer token every route requires, if any.
    pub token: Option<Secret>,
}

/// The default admin address.
const DEFAULT_LISTEN: &str = "127.0.0.1:9090";

/// Checks `[admin]`; `expand` resolves `${VAR}` in the token.
pub(super) fn admin(raw: RawAdmin, expand: &dyn Fn(&str) -> Result<String, String>) -> Result<AdminConfig, String> {
    let text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = text
        .parse()
        .map_err(|_| format!("`listen = \"{text}\"` is not an address; write it like \"{DEFAULT_LISTEN}\""))?;
    let token = match raw.token {
        None => None,
        Some(token) => {
            let value = expand(token.expose())
                .map_err(|var| format!("environment variable `{var}` is not set; export it or write the token"))?;
            if value.len() < 16 {
                return Err("`token` is shorter than 16 characters; use a long random value".to_owned());
            }
            Some(Secret::new(value))
        }
    };
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(format!(
            "`listen = \"{listen}\"` serves the audit trail beyond this machine; set `token = \"${{ADMIN_TOKEN}}\"` \
             or listen on 127.0.0.1"
        ));
    }
    Ok(AdminConfig { listen, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str, env: &[(&str, &str)]) -> Result<AdminConfig, String> {
        let raw: RawAdmin = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        let expand = |v: &str| -> Result<String, String> {
            match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                Some(name) => env.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()).ok_or(name.to_owned()),
                None => Ok(v.to_owned()),
            }
        };
        admin(raw, &expand)
    }

    #[test]
    fn loopback_by_default_and_a_public_address_needs_a_token() {
        let c = parse("", &[]).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.token.is_none());
        let err = parse("listen = \"0.0.0.0:9090\"", &[]).unwrap_err();
        assert!(err.contains("token"), "{err}");
        let c = parse("listen = \"0.0.0.0:9090\"\ntoken = \"${T}\"", &[("T", "0123456789abcdef0")]).unwrap();
        assert_eq!(c.token.unwrap().expose(), "0123456789abcdef0");
        let err = parse("token = \"${T}\"", &[]).unwrap_err();
        assert!(err.contains("`T` is not set"), "{err}");
        let err = parse("token = \"short\"", &[]).unwrap_err();
        assert!(err.contains("16 characters") && !err.contains("short\""), "{err}");
        assert!(parse("listen = \"nowhere\"", &[]).unwrap_err().contains("not an address"));
    }
}
