//! Fuzz input read as an HTTP message in the golden-file form (`tests/golden/*/*/request.http`), so the
//! fuzzer starts from real client requests: a start line (`METHOD /path?query HTTP/1.1` or
//! `HTTP/1.1 STATUS`), `Name: value` header lines, an empty line, then the body bytes exactly. Anything
//! that is not that form still reads: a missing start line gives empty fields, and a header hyper could
//! not carry is left out, as a real server would never see it.

use crossgate::dialect::{RawRequest, WireRequest};
use http::{HeaderMap, HeaderName, HeaderValue};

/// An HTTP message read from a fuzz input, owned, lending itself out as a [`RawRequest`].
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// The method (requests) or the protocol (`HTTP/1.1`, replies).
    pub method: String,
    /// The path without the query (requests) or the status text (replies).
    pub path: String,
    /// The raw query, without `?`.
    pub query: String,
    /// The headers hyper would have accepted.
    pub headers: HeaderMap,
    /// The body, exactly.
    pub body: Vec<u8>,
}

impl Message {
    /// Reads `data` as a start line, header lines and a body (see the module docs). Never fails.
    pub fn parse(data: &[u8]) -> Message {
        let (head, body) = match find(data, b"\n\n") {
            Some(at) => (&data[..at], &data[at + 2..]),
            None => (data, &[][..]),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.lines();
        let mut start = lines.next().unwrap_or("").split(' ');
        let method = start.next().unwrap_or("").to_owned();
        let target = start.next().unwrap_or("");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = HeaderMap::new();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name.trim().as_bytes()), HeaderValue::from_str(value.trim()))
            {
                headers.append(name, value);
            }
        }
        Message { method, path: path.to_owned(), query: query.to_owned(), headers, body: body.to_vec() }
    }

    /// What a server receives when a client sends `wire`.
    pub fn from_wire(wire: &WireRequest) -> Message {
        let mut headers = HeaderMap::new();
        for (name, value) in &wire.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("the codec writes valid header names");
            let value = HeaderValue::from_str(value).expect("the codec writes valid header values");
            headers.append(name, value);
        }
        if !headers.contains_key("host") {
            headers.insert("host", HeaderValue::from_str(&wire.host).expect("the codec writes a valid host"));
        }
        Message {
            method: wire.method.to_owned(),
            path: wire.path.to_owned(),
            query: wire.query.clone(),
            headers,
            body: wire.body.clone(),
        }
    }

    /// The raw view a codec reads.
    pub fn raw(&self) -> RawRequest<'_> {
        RawRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    /// The status of a reply's start line (`HTTP/1.1 404`), 200 when it has none.
    pub fn status(&self) -> u16 {
        self.path.parse().ok().filter(|s| (100..600).contains(s)).unwrap_or(200)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
