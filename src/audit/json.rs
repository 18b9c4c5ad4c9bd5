//! An audit record's JSON, written in one pass: compact, fields in the order [`AuditEntry`] declares
//! them, byte for byte what serde_json writes for the same record (a property test holds the two
//! equal), so readers parse it with serde as before.
//!
//! Written by hand because it runs twice per request on every store: serde_json escapes each field name
//! again for every record and scans every value byte by byte, where here the names are written as the
//! constants they are and values are scanned eight bytes at a time.

use super::{AuditEntry, InstanceAudit, Phase, ShadowDifference, UpstreamCall, query::phase_name};

/// The record's JSON, appended to `out`.
fn write_entry(out: &mut Vec<u8>, entry: &AuditEntry) {
    // Destructured whole, so a field added to the record cannot be left out here.
    let AuditEntry {
        phase,
        time,
        request_id,
        upstream_request_ids,
        caller,
        source,
        dialect,
        action,
        upstreams,
        upstream_actions,
        instances,
        keys,
        keys_translated,
        results,
        upstream_calls,
        steps,
        shadow_differences,
        shadow_requests,
        code,
        kind,
        fault_source,
        message,
        status,
        latency_ms,
        replay_key,
        replay_until,
    } = entry;
    out.extend_from_slice(b"{\"phase\":");
    write_phase(out, *phase);
    out.extend_from_slice(b",\"time\":");
    write_str(out, time);
    out.extend_from_slice(b",\"request_id\":");
    write_str(out, request_id);
    out.extend_from_slice(b",\"upstream_request_ids\":");
    write_strs(out, upstream_request_ids);
    out.extend_from_slice(b",\"caller\":");
    write_opt_str(out, caller.as_deref());
    out.extend_from_slice(b",\"source\":");
    write_opt_str(out, source.as_deref());
    out.extend_from_slice(b",\"dialect\":");
    write_opt_str(out, dialect.as_deref());
    out.extend_from_slice(b",\"action\":");
    write_opt_str(out, action.as_deref());
    out.extend_from_slice(b",\"upstreams\":");
    write_strs(out, upstreams);
    out.extend_from_slice(b",\"upstream_actions\":");
    write_strs(out, upstream_actions);
    out.extend_from_slice(b",\"instances\":");
    write_strs(out, instances);
    out.extend_from_slice(b",\"keys\":");
    write_strs(out, keys);
    out.extend_from_slice(b",\"keys_translated\":");
    write_strs(out, keys_translated);
    out.extend_from_slice(b",\"results\":");
    write_list(out, results, write_result);
    out.extend_from_slice(b",\"upstream_calls\":");
    write_list(out, upstream_calls, write_call);
    if !steps.is_empty() {
        out.extend_from_slice(b",\"steps\":");
        write_strs(out, steps);
    }
    if !shadow_differences.is_empty() {
        out.extend_from_slice(b",\"shadow_differences\":");
        write_list(out, shadow_differences, write_difference);
    }
    if !shadow_requests.is_empty() {
        out.extend_from_slice(b",\"shadow_requests\":");
        write_strs(out, shadow_requests);
    }
    out.extend_from_slice(b",\"code\":");
    write_str(out, code);
    out.extend_from_slice(b",\"kind\":");
    write_opt_str(out, kind.as_deref());
    out.extend_from_slice(b",\"fault_source\":");
    write_opt_str(out, fault_source.as_deref());
    out.extend_from_slice(b",\"message\":");
    write_opt_str(out, message.as_deref());
    out.extend_from_slice(b",\"status\":");
    write_int(out, *status);
    out.extend_from_slice(b",\"latency_ms\":");
    write_f64(out, *latency_ms);
    if let Some(key) = replay_key {
        out.extend_from_slice(b",\"replay_key\":");
        write_str(out, key);
    }
    if let Some(until) = replay_until {
        out.extend_from_slice(b",\"replay_until\":");
        write_int(out, *until);
    }
    out.push(b'}');
}

/// The record's JSON.
pub fn entry_bytes(entry: &AuditEntry) -> Vec<u8> {
    let mut json = Vec::with_capacity(1024);
    write_entry(&mut json, entry);
    json
}

/// The record's JSON as text, for the stores that keep it as a string.
pub fn entry_text(entry: &AuditEntry) -> String {
    // Whole strings and ASCII only were written: this is always UTF-8.
    String::from_utf8(entry_bytes(entry)).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_result(out: &mut Vec<u8>, result: &InstanceAudit) {
    let InstanceAudit { instance, translated, upstream, outcome } = result;
    out.extend_from_slice(b"{\"instance\":");
    write_str(out, instance);
    out.extend_from_slice(b",\"translated\":");
    write_str(out, translated);
    out.extend_from_slice(b",\"upstream\":");
    write_str(out, upstream);
    out.extend_from_slice(b",\"outcome\":");
    write_str(out, outcome);
    out.push(b'}');
}

fn write_call(out: &mut Vec<u8>, call: &UpstreamCall) {
    let UpstreamCall { upstream, action, attempt, ending, status, fault, elapsed_ms } = call;
    out.extend_from_slice(b"{\"upstream\":");
    write_str(out, upstream);
    out.extend_from_slice(b",\"action\":");
    write_str(out, action);
    out.extend_from_slice(b",\"attempt\":");
    write_int(out, *attempt);
    out.extend_from_slice(b",\"ending\":");
    write_str(out, ending);
    out.extend_from_slice(b",\"status\":");
    match status {
        Some(status) => write_int(out, *status),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"fault\":");
    write_opt_str(out, fault.as_deref());
    out.extend_from_slice(b",\"elapsed_ms\":");
    write_int(out, *elapsed_ms);
    out.push(b'}');
}

fn write_difference(out: &mut Vec<u8>, difference: &ShadowDifference) {
    let ShadowDifference { shadow, kind, subject, primary, shadow_value } = difference;
    out.extend_from_slice(b"{\"shadow\":");
    write_str(out, shadow);
    out.extend_from_slice(b",\"kind\":");
    write_str(out, kind);
    out.extend_from_slice(b",\"subject\":");
    write_str(out, subject);
    out.extend_from_slice(b",\"primary\":");
    write_str(out, primary);
    out.extend_from_slice(b",\"shadow_value\":");
    write_str(out, shadow_value);
    out.push(b'}');
}

fn write_phase(out: &mut Vec<u8>, phase: Phase) {
    out.push(b'"');
    out.extend_from_slice(phase_name(phase).as_bytes());
    out.push(b'"');
}

fn write_list<T>(out: &mut Vec<u8>, items: &[T], write: fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

fn write_strs(out: &mut Vec<u8>, items: &[String]) {
    write_list(out, items, |out, s| write_str(out, s));
}

fn write_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn write_f64(out: &mut Vec<u8>, x: f64) {
    // serde_json's own formatting (shortest round-trip digits, `null` when not finite): the one value
    // whose form is not obvious is left to it.
    serde_json::to_writer(&mut *out, &x).expect("a number written into memory");
}

/// `s` as a JSON string: quoted, with `"`, `\` and the control characters escaped as serde_json
/// escapes them (short forms where JSON has one, `\u00XX` otherwise); everything else as it is.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let chunk = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("eight bytes"));
            if !any_to_escape(chunk) {
                i += 8;
                continue;
            }
        }
        let byte = bytes[i];
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0C => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1F => b'u',
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xF)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any of the eight bytes of `chunk` is `"`, `\` or below 0x20 (exact: no byte is flagged
/// wrongly when none is, the usual test for a zero byte applied three times).
fn any_to_escape(chunk: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    below(chunk ^ (ONES * u64::from(b'"')), 1) | below(chunk ^ (ONES * u64::from(b'\\')), 1) | below(chunk, 0x20) != 0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Strings that reach every branch: plain ASCII runs, quotes, backslashes, every control
    /// character, DEL and non-ASCII text.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9:._ -]{0,40}",
            proptest::collection::vec(
                prop_oneof![
                    Just('"'),
                    Just('\\'),
                    (0u8..0x20).prop_map(char::from),
                    Just('\u{7f}'),
                    Just('é'),
                    Just('键'),
                    Just('a')
                ],
                0..24,
            )
            .prop_map(|cs| cs.into_iter().collect()),
            any::<String>(),
        ]
    }

    fn texts() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(text(), 0..3)
    }

    fn maybe() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    fn result() -> impl Strategy<Value = InstanceAudit> {
        (text(), text(), text(), text()).prop_map(|(instance, translated, upstream, outcome)| InstanceAudit {
            instance,
            translated,
            upstream,
            outcome,
        })
    }

    fn call() -> impl Strategy<Value = UpstreamCall> {
        (text(), text(), any::<u32>(), text(), any::<Option<u16>>(), maybe(), any::<u64>()).prop_map(
            |(upstream, action, attempt, ending, status, fault, elapsed_ms)| UpstreamCall {
                upstream,
                action,
                attempt,
                ending,
                status,
                fault,
                elapsed_ms,
            },
        )
    }

    fn difference() -> impl Strategy<Value = ShadowDifference> {
        (text(), text(), text(), text(), text()).prop_map(|(shadow, kind, subject, primary, shadow_value)| {
            ShadowDifference { shadow, kind, subject, primary, shadow_value }
        })
    }

    fn entry() -> impl Strategy<Value = AuditEntry> {
        let who = (
            prop_oneof![Just(Phase::Refused), Just(Phase::Admitted), Just(Phase::Completed)],
            text(),
            text(),
            texts(),
            maybe(),
            maybe(),
            maybe(),
            maybe(),
        );
        let what = (
            texts(),
            texts(),
            texts(),
            texts(),
            texts(),
            proptest::collection::vec(result(), 0..3),
            proptest::collection::vec(call(), 0..3),
            texts(),
            proptest::collection::vec(difference(), 0..2),
            texts(),
        );
        let end = (
            text(),
            maybe(),
            maybe(),
            maybe(),
            any::<u16>(),
            prop_oneof![any::<f64>(), Just(0.0), Just(0.140307), Just(f64::NAN), Just(f64::INFINITY)],
            maybe(),
            any::<Option<i64>>(),
        );
        (who, what, end).prop_map(|(who, what, end)| {
            let (phase, time, request_id, upstream_request_ids, caller, source, dialect, action) = who;
            let (
                upstreams,
                upstream_actions,
                instances,
                keys,
                keys_translated,
                results,
                upstream_calls,
                steps,
                shadow_differences,
                shadow_requests,
            ) = what;
            let (code, kind, fault_source, message, status, latency_ms, replay_key, replay_until) = end;
            AuditEntry {
                phase,
                time,
                request_id,
                upstream_request_ids,
                caller,
                source,
                dialect,
                action,
                upstreams,
                upstream_actions,
                instances,
                keys,
                keys_translated,
                results,
                upstream_calls,
                steps,
                shadow_differences,
                shadow_requests,
                code,
                kind,
                fault_source,
                message,
                status,
                latency_ms,
                replay_key,
                replay_until,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn writes_what_serde_json_writes(entry in entry()) {
            let mut ours = Vec::new();
            write_entry(&mut ours, &entry);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&entry).unwrap());
        }

        #[test]
        fn escapes_strings_as_serde_json_does(s in text()) {
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn the_eight_byte_test_flags_exactly_the_bytes_to_escape() {
        for byte in 0..=u8::MAX {
            for at in 0..8 {
                let mut chunk = *b"abcdefgh";
                chunk[at] = byte;
                let flagged = any_to_escape(u64::from_le_bytes(chunk));
                assert_eq!(flagged, byte < 0x20 || byte == b'"' || byte == b'\\', "byte {byte:#04x} at {at}");
            }
        }
    }
}
