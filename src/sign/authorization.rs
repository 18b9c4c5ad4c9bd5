//! The `Authorization` header of TC3 and ACS3 (`shared/reference/signing.md` §3 step 9 and verify step 1,
//! §5 step 8 and verify): `ALGORITHM Credential=…<sep>SignedHeaders=a;b<sep>Signature=hex`.
//!
//! Both schemes read it the same way, so it is read here once: [`split_fields`] checks the algorithm name and
//! splits the three fields (any order, spaces around them allowed), [`signed_header_names`] splits the
//! SignedHeaders list, and [`compose_header`] writes the header with the scheme's separator (`", "` for TC3,
//! `","` for ACS3). What differs stays with the scheme: the algorithm name, what the Credential holds
//! (TC3's `SecretId/Date/service/tc3_request`, ACS3's bare AccessKeyId), and the scheme's own error
//! type, declared with [`authorization_error!`] so that the faults every header can have are written once.

/// Why the fields of an Authorization header could not be split: the faults every scheme shares. Each
/// scheme's error type converts from it variant for variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The header does not start with the algorithm name and a space.
    Algorithm,
    /// A comma-separated field has no `=`.
    Malformed,
    /// A field other than Credential, SignedHeaders and Signature.
    UnknownField,
    /// A field appears twice.
    Duplicate(&'static str),
    /// A field is absent or empty.
    Missing(&'static str),
    /// SignedHeaders has an empty name.
    SignedHeaders,
}

/// Declares a scheme's Authorization error enum: the variants written in the call (an `Algorithm`
/// variant among them, whose message names the scheme's algorithm) followed by the faults every header
/// can have (`Malformed`, `UnknownField`, `Duplicate`, `Missing`, `SignedHeaders`), and its conversion
/// from [`Fault`]. The messages never repeat the header's values.
macro_rules! authorization_error {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($own:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
        $vis enum $name {
            $($own)*
            /// A comma-separated field has no `=`.
            #[error("Authorization has a field without `=`")]
            Malformed,
            /// A field other than Credential, SignedHeaders and Signature.
            #[error("Authorization has an unknown field")]
            UnknownField,
            /// A field appears twice.
            #[error("Authorization repeats {0}")]
            Duplicate(&'static str),
            /// A field is absent or empty.
            #[error("Authorization lacks {0}")]
            Missing(&'static str),
            /// SignedHeaders has an empty name.
            #[error("Authorization SignedHeaders has an empty name")]
            SignedHeaders,
        }

        impl From<$crate::sign::authorization::Fault> for $name {
            fn from(fault: $crate::sign::authorization::Fault) -> Self {
                use $crate::sign::authorization::Fault;
                match fault {
                    Fault::Algorithm => $name::Algorithm,
                    Fault::Malformed => $name::Malformed,
                    Fault::UnknownField => $name::UnknownField,
                    Fault::Duplicate(field) => $name::Duplicate(field),
                    Fault::Missing(field) => $name::Missing(field),
                    Fault::SignedHeaders => $name::SignedHeaders,
                }
            }
        }
    };
}
pub(crate) use authorization_error;

/// The three fields of an Authorization header, borrowed from it and not yet read further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    /// The Credential value, as the scheme defines it.
    pub(crate) credential: &'a str,
    /// The SignedHeaders value: names joined with `;` (see [`signed_header_names`]).
    pub(crate) signed_headers: &'a str,
    /// The Signature value.
    pub(crate) signature: &'a str,
}

/// Splits `ALGORITHM Credential=…,SignedHeaders=…,Signature=…`: the algorithm name, then (after at least
/// one space) comma-separated `name=value` fields in any order, each trimmed.
///
/// # Errors
/// [`Fault::Algorithm`] when the header does not start with `algorithm` and a space; [`Fault::Missing`]
/// (Credential) when nothing follows it; [`Fault::Malformed`], [`Fault::UnknownField`],
/// [`Fault::Missing`] and [`Fault::Duplicate`] for the fields. It never panics.
pub(crate) fn split_fields<'a>(value: &'a str, algorithm: &str) -> Result<Fields<'a>, Fault> {
    let rest = value.trim().strip_prefix(algorithm).ok_or(Fault::Algorithm)?;
    if rest.is_empty() {
        return Err(Fault::Missing("Credential"));
    }
    if !rest.starts_with(' ') {
        return Err(Fault::Algorithm);
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (name, value) = field.trim().split_once('=').ok_or(Fault::Malformed)?;
        let (slot, name) = match name {
            "Credential" => (&mut credential, "Credential"),
            "SignedHeaders" => (&mut signed_headers, "SignedHeaders"),
            "Signature" => (&mut signature, "Signature"),
            _ => return Err(Fault::UnknownField),
        };
        if value.is_empty() {
            return Err(Fault::Missing(name));
        }
        if slot.replace(value).is_some() {
            return Err(Fault::Duplicate(name));
        }
    }
    Ok(Fields {
        credential: credential.ok_or(Fault::Missing("Credential"))?,
        signed_headers: signed_headers.ok_or(Fault::Missing("SignedHeaders"))?,
        signature: signature.ok_or(Fault::Missing("Signature"))?,
    })
}

/// The names of a SignedHeaders value, split on `;`, as presented.
///
/// # Errors
/// [`Fault::SignedHeaders`] when a name is empty (`host;`, `;host`, `a;;b`).
pub(crate) fn signed_header_names(list: &str) -> Result<Vec<&str>, Fault> {
    let names: Vec<&str> = list.split(';').collect();
    if names.iter().any(|name| name.is_empty()) {
        return Err(Fault::SignedHeaders);
    }
    Ok(names)
}

/// The header value: `ALGORITHM Credential=` + the `credential` parts joined with `/`, then
/// `SignedHeaders=` and `Signature=`, each field after the first preceded by `separator`.
pub(crate) fn compose_header(
    algorithm: &str,
    credential: &[&str],
    separator: &str,
    signed_headers: &str,
    signature: &str,
) -> String {
    let credential_len: usize = credential.iter().map(|part| part.len() + 1).sum();
    let mut out = String::with_capacity(
        algorithm.len() + 36 + 2 * separator.len() + credential_len + signed_headers.len() + signature.len(),
    );
    out.push_str(algorithm);
    // " Credential=" + id ("/" + scope part)*
    out.push_str(" Credential=");
    for (i, part) in credential.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(part);
    }
    // sep + "SignedHeaders=" + names
    out.push_str(separator);
    out.push_str("SignedHeaders=");
    out.push_str(signed_headers);
    // sep + "Signature=" + hex
    out.push_str(separator);
    out.push_str("Signature=");
    out.push_str(signature);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reads_the_fields_in_any_order() {
        let want = Fields { credential: "a/b", signed_headers: "host", signature: "ab" };
        for header in [
            "ALG Credential=a/b,SignedHeaders=host,Signature=ab",
            " ALG  Signature=ab , Credential=a/b, SignedHeaders=host ",
        ] {
            assert_eq!(split_fields(header, "ALG"), Ok(want), "{header}");
        }
        assert_eq!(split_fields("ALGX Credential=a", "ALG"), Err(Fault::Algorithm));
        assert_eq!(split_fields("ALG", "ALG"), Err(Fault::Missing("Credential")));
    }

    #[test]
    fn signed_header_names_refuse_empty_names() {
        assert_eq!(signed_header_names("content-type;host"), Ok(vec!["content-type", "host"]));
        for list in ["", "host;", ";host", "a;;b"] {
            assert_eq!(signed_header_names(list), Err(Fault::SignedHeaders), "{list:?}");
        }
    }

    #[test]
    fn compose_joins_the_credential_and_uses_the_separator() {
        assert_eq!(
            compose_header("ALG", &["id", "2024-05-01", "cvm", "tc3_request"], ", ", "host", "ab"),
            "ALG Credential=id/2024-05-01/cvm/tc3_request, SignedHeaders=host, Signature=ab"
        );
        assert_eq!(
            compose_header("ALG", &["id"], ",", "a;b", "cd"),
            "ALG Credential=id,SignedHeaders=a;b,Signature=cd"
        );
    }
}
