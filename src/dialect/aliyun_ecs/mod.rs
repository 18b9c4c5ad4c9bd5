//! Alibaba Cloud ECS, RPC style, version 2014-05-26: `AttachKeyPair` / `DetachKeyPair` and the look-ups
//! `DescribeKeyPairs` / `DescribeInstances`, answered in JSON or XML.
//!
//! Implements `shared/reference/protocols.md` section 5 and the two schemes of `signing.md` that ECS
//! accepts on path `/`: the RPC signature (section 4: `AccessKeyId`, `Signature`, `SignatureNonce`,
//! `Timestamp` ... as parameters, from the query and a form body merged) and ACS3-HMAC-SHA256 (section 5:
//! an `Authorization` header and `x-acs-*` headers, business parameters in the query or a form body).
//!
//! - [`auth_material`], [`decode_request`] and [`reply`] read a caller's request (`inbound.rs`);
//! - [`encode_response`] answers it, and [`decode_response`] reads ECS's own answer back (`response.rs`);
//! - [`encode_request`] builds a signed request for ECS (`outbound.rs`).
//!
//! Lists are RPC-style in both directions: `InstanceIds` is one JSON-array string (`["i-a", "i-b"]`), and
//! reply lists are wrapped twice (`Results.Result[]`, `<Results><Result>..</Result></Results>`). Errors
//! are HTTP 4xx/5xx with `{"RequestId","HostId","Code","Message","Recommend"}` (or `<Error>`), rendered
//! through `mappings/errors/aliyun_ecs.toml`; a failed signature ends its message with
//! `server string to sign is:<string to sign>`, which the SDKs read back.

mod body;
mod inbound;
mod outbound;
mod response;
mod xml;

pub use inbound::{auth_material, decode_request, reply};
pub use outbound::encode_request;
pub use response::{decode_response, encode_response, total_count};

use crate::dialect::Dialect;
use crate::model::{Code, Fault};

/// The dialect every table look-up here uses.
const DIALECT: Dialect = Dialect::AliyunEcs;

/// Wire parameter names (query or form body).
pub(crate) mod param {
    pub(crate) const ACTION: &str = "Action";
    pub(crate) const VERSION: &str = "Version";
    pub(crate) const FORMAT: &str = "Format";
    pub(crate) const ACCESS_KEY_ID: &str = "AccessKeyId";
    pub(crate) const SIGNATURE: &str = "Signature";
    pub(crate) const SIGNATURE_METHOD: &str = "SignatureMethod";
    pub(crate) const SIGNATURE_VERSION: &str = "SignatureVersion";
    pub(crate) const SIGNATURE_NONCE: &str = "SignatureNonce";
    pub(crate) const TIMESTAMP: &str = "Timestamp";
    pub(crate) const REGION_ID: &str = "RegionId";
    pub(crate) const KEY_PAIR_NAME: &str = "KeyPairName";
    pub(crate) const INSTANCE_IDS: &str = "InstanceIds";
    pub(crate) const PAGE_SIZE: &str = "PageSize";
    pub(crate) const PAGE_NUMBER: &str = "PageNumber";
    pub(crate) const MAX_RESULTS: &str = "MaxResults";
    /// `ImportKeyPair`'s public key.
    pub(crate) const PUBLIC_KEY_BODY: &str = "PublicKeyBody";
    /// The one instance of `StartInstance`, `StopInstance` and `RebootInstance`.
    pub(crate) const INSTANCE_ID: &str = "InstanceId";
    /// `StopInstance` and `RebootInstance`: stop without waiting for the guest.
    pub(crate) const FORCE_STOP: &str = "ForceStop";
}

/// Wire header names, lower case.
pub(crate) mod header {
    pub(crate) const AUTHORIZATION: &str = "authorization";
    pub(crate) const HOST: &str = "host";
    pub(crate) const ACCEPT: &str = "accept";
    pub(crate) const ACTION: &str = "x-acs-action";
    pub(crate) const VERSION: &str = "x-acs-version";
    pub(crate) const DATE: &str = "x-acs-date";
    pub(crate) const NONCE: &str = "x-acs-signature-nonce";
    pub(crate) const CONTENT_SHA256: &str = "x-acs-content-sha256";
    pub(crate) const CONTENT_TYPE: &str = "content-type";
}

/// Reply field names.
pub(crate) mod field {
    pub(crate) const REQUEST_ID: &str = "RequestId";
    pub(crate) const HOST_ID: &str = "HostId";
    pub(crate) const CODE: &str = "Code";
    pub(crate) const MESSAGE: &str = "Message";
    pub(crate) const RECOMMEND: &str = "Recommend";
    pub(crate) const KEY_PAIR_NAME: &str = "KeyPairName";
    pub(crate) const TOTAL_COUNT: &str = "TotalCount";
    pub(crate) const FAIL_COUNT: &str = "FailCount";
    pub(crate) const PAGE_NUMBER: &str = "PageNumber";
    pub(crate) const PAGE_SIZE: &str = "PageSize";
    pub(crate) const NEXT_TOKEN: &str = "NextToken";
    pub(crate) const RESULTS: &str = "Results";
    pub(crate) const RESULT: &str = "Result";
    pub(crate) const INSTANCE_ID: &str = "InstanceId";
    pub(crate) const SUCCESS: &str = "Success";
    pub(crate) const KEY_PAIRS: &str = "KeyPairs";
    pub(crate) const KEY_PAIR: &str = "KeyPair";
    pub(crate) const INSTANCES: &str = "Instances";
    pub(crate) const INSTANCE: &str = "Instance";
    pub(crate) const STATUS: &str = "Status";
    pub(crate) const OS_TYPE: &str = "OSType";
    pub(crate) const OS_NAME: &str = "OSName";
    pub(crate) const KEY_PAIR_FINGER_PRINT: &str = "KeyPairFingerPrint";
    pub(crate) const PUBLIC_KEY: &str = "PublicKey";
    /// The lower-camel-case spellings the tea SDK also reads in an error.
    pub(crate) const CODE_LOWER: &str = "code";
    pub(crate) const MESSAGE_LOWER: &str = "message";
    pub(crate) const REQUEST_ID_LOWER: &str = "requestId";
    /// The root of an XML error reply.
    pub(crate) const ERROR: &str = "Error";
    /// The elements that repeat inside a list wrapper.
    pub(crate) const LIST_ITEMS: &[&str] = &[RESULT, KEY_PAIR, INSTANCE];
}

/// How every ACS3 Authorization value starts (the algorithm family; `ACS3-HMAC-SHA256` is the one known).
const ACS3_PREFIX: &str = "ACS3-";
/// `SignatureVersion` of the RPC scheme.
const SIGNATURE_VERSION_1_0: &str = "1.0";
/// `Format` values (case-insensitive inbound).
const FORMAT_JSON: &str = "JSON";
const FORMAT_XML: &str = "XML";
/// `OSType` values.
const OS_LINUX: &str = "linux";
const OS_WINDOWS: &str = "windows";
/// Content types the SDKs expect (the tea SDK reads an XML error only with exactly this type).
const CONTENT_TYPE_JSON: &str = "application/json;charset=utf-8";
const CONTENT_TYPE_XML: &str = "text/xml;charset=utf-8";
/// The media type of a form body.
const FORM_MEDIA_TYPE: &str = "application/x-www-form-urlencoded";
/// The per-instance `Code` and `Message` of a success.
const RESULT_OK_CODE: &str = "200";
const RESULT_OK_MESSAGE: &str = "successful";

/// `YYYY-MM-DDThh:mm:ssZ` (UTC) -> Unix seconds. Anything else is refused with a message that gives the
/// format; ECS answers it as an expired/malformed time stamp.
fn parse_timestamp(name: &str, value: &str) -> Result<i64, Fault> {
    let bad = || {
        Fault::caller(
            Code::TimestampExpired,
            format!("`{name}` must be a UTC time formatted as YYYY-MM-DDThh:mm:ssZ, e.g. 2024-05-01T08:00:00Z."),
        )
    };
    if !super::is_iso8601_utc(value) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| value.get(range).and_then(|s| s.parse::<u16>().ok()).ok_or_else(bad);
    let month = time::Month::try_from(u8::try_from(num(5..7)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let small = |n: u16| u8::try_from(n).map_err(|_| bad());
    let date = time::Date::from_calendar_date(i32::from(num(0..4)?), month, small(num(8..10)?)?).map_err(|_| bad())?;
    let clock =
        time::Time::from_hms(small(num(11..13)?)?, small(num(14..16)?)?, small(num(17..19)?)?).map_err(|_| bad())?;
    Ok(date.with_time(clock).assume_utc().unix_timestamp())
}

/// Unix seconds -> `YYYY-MM-DDThh:mm:ssZ`.
fn format_timestamp(secs: i64) -> Result<String, Fault> {
    let t = time::OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| Fault::gateway(Code::Internal, format!("the timestamp {secs} is out of range")))?;
    if !(0..=9999).contains(&t.year()) {
        return Err(Fault::gateway(Code::Internal, format!("the timestamp {secs} has no four-digit year")));
    }
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// `json.dumps(list)` as Python writes it (the SDKs' form of `InstanceIds`): `["a", "b"]`, with `", "`
/// between entries and non-ASCII escaped as `\uXXXX`.
fn python_json_list(items: &[String]) -> String {
    let mut out = String::with_capacity(items.iter().map(|s| s.len() + 4).sum::<usize>() + 2);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        for c in item.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
                c => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_strictly() {
        assert_eq!(parse_timestamp("Timestamp", "2024-05-01T08:00:00Z").unwrap(), 1_714_550_400);
        assert_eq!(parse_timestamp("Timestamp", "2024-05-01T23:59:59Z").unwrap(), 1_714_607_999);
        for bad in [
            "",
            "2024-05-01 08:00:00Z",
            "2024-05-01T08:00:00",
            "2024-05-01T08:00:00+08:00",
            "2024-13-01T08:00:00Z",
            "2024-02-30T08:00:00Z",
            "2024-05-01T24:00:00Z",
            "+024-05-01T08:00:00Z",
            "2024-05-01T08:00:00z",
            "1714550400",
        ] {
            let fault = parse_timestamp("Timestamp", bad).unwrap_err();
            assert_eq!(fault.code(), Code::TimestampExpired, "{bad}");
            assert!(fault.message().contains("YYYY-MM-DDThh:mm:ssZ"), "{bad}");
        }
    }

    #[test]
    fn timestamps_format_back() {
        assert_eq!(format_timestamp(1_714_550_400).unwrap(), "2024-05-01T08:00:00Z");
        assert_eq!(format_timestamp(0).unwrap(), "1970-01-01T00:00:00Z");
        assert!(format_timestamp(i64::MAX).is_err());
        assert!(format_timestamp(-100_000_000_000).is_err());
    }

    #[test]
    fn lists_are_written_as_python_does() {
        let ids = ["i-a".to_owned(), "i-b".to_owned()];
        assert_eq!(python_json_list(&ids), r#"["i-a", "i-b"]"#);
        assert_eq!(python_json_list(&[]), "[]");
        assert_eq!(python_json_list(&["a\"é\u{1F600}\u{1}".to_owned()]), r#"["a\"\u00e9\ud83d\ude00\u0001"]"#);
    }
}
