//! The audit trail's JSON API: `/api/audit` (records matching the filters of `crossgate audit query`,
//! given as query parameters: `since`, `until`, `caller`, `instance`, `key`, `action`, `upstream`,
//! `result`, `request_id`, `phase`, `limit`) and `/api/audit/verify` (the hash chain's state).
//!
//! ```json
//! {"records": [{"request_id": "...", "phase": "completed", ...}], "count": 1, "limit": 100}
//! {"intact": true, "records": 42, "segments": 1, "head": "9f2c...", "summary": "verified 42 records ..."}
//! {"intact": false, "position": 7, "request_id": "...", "place": "...", "summary": "record 7 (...) was edited: ..."}
//! ```
//!
//! A bad filter is a 400 naming the parameter; a trail that cannot be read is a 503 saying why.

use http::{Response, StatusCode};
use serde_json::json;

use super::{OpenTrail, error, json};
use crate::audit::query::Filter;
use crate::clock::{Clock, SystemClock};
use crate::layer::ResBody;

/// The most records one answer holds.
pub const MAX_LIMIT: usize = 5_000;

/// Reads a filter from a query string.
pub fn filter(query: &str, now_ms: u64) -> Result<Filter, String> {
    let mut filter = Filter::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if value.is_empty() {
            continue; // an empty form field filters nothing
        }
        filter.set(&name, &value, now_ms)?;
    }
    if filter.limit == 0 || filter.limit > MAX_LIMIT {
        return Err(format!("limit: use 1 to {MAX_LIMIT}"));
    }
    Ok(filter)
}

/// Runs `work` on the trail, off the serving threads.
async fn on_trail<T: Send + 'static>(
    trail: OpenTrail,
    work: impl FnOnce(&mut dyn crate::audit::query::Trail) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(move || work(trail()?.as_mut()))
        .await
        .unwrap_or_else(|e| Err(format!("the trail could not be read: {e}")))
}

/// `/api/audit`.
pub async fn records(trail: OpenTrail, query: &str) -> Response<ResBody> {
    let filter = match filter(query, SystemClock.now_ms()) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let limit = filter.limit;
    match on_trail(trail, move |t| t.query(&filter)).await {
        Ok(found) => json(StatusCode::OK, &json!({ "records": found, "count": found.len(), "limit": limit })),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// `/api/audit/verify`.
pub async fn verify(trail: OpenTrail) -> Response<ResBody> {
    match on_trail(trail, |t| t.verify()).await {
        Ok(Ok(checked)) => json(
            StatusCode::OK,
            &json!({
                "intact": true,
                "records": checked.records,
                "segments": checked.segments,
                "unchained": checked.unchained,
                "head": checked.head,
                "summary": checked.to_string(),
            }),
        ),
        Ok(Err(broken)) => json(
            StatusCode::OK,
            &json!({
                "intact": false,
                "position": broken.position,
                "request_id": broken.request_id,
                "place": broken.place,
                "summary": broken.to_string(),
            }),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::query::Verdict;

    #[test]
    fn query_parameters_become_a_filter_and_bad_ones_are_named() {
        let now = 10 * 3_600_000;
        let f = filter("caller=demo&since=1h&result=ok&request_id=R%2D1&limit=5&key=", now).unwrap();
        assert_eq!(f.caller.as_deref(), Some("demo"));
        assert_eq!(f.since_ms, Some(9 * 3_600_000));
        assert_eq!(f.result, Some(Verdict::Ok));
        assert_eq!(f.request_id.as_deref(), Some("R-1"));
        assert_eq!((f.limit, f.key), (5, None));
        assert!(filter("result=maybe", now).unwrap_err().starts_with("result:"));
        assert!(filter("colour=red", now).unwrap_err().contains("no filter"));
        assert!(filter("limit=0", now).unwrap_err().starts_with("limit"));
        assert!(filter("limit=lots", now).unwrap_err().starts_with("limit"));
    }
}
