//! Detection: which dialect a request speaks ([`crate::dialect::detect()`]), and the [`Reply`] its answer
//! will need (dialect, action, format, request id), put into the request's extensions before anything
//! else reads it. A request that carries evidence of a dialect, even without its credential, is answered
//! in that dialect from here on; one whose dialect cannot be told (no evidence, or a tie) gets a
//! plain-text 400 saying why: there is no dialect to answer in.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service};

use super::request_id::RequestId;
use super::respond::{plain, raw_request};
use crate::audit::AuditHandle;
use crate::dialect::{self, Reply};
use crate::mapping::Mappings;

/// Detects the dialect of every request.
#[derive(Debug, Clone)]
pub struct DetectLayer {
    maps: Arc<Mappings>,
}

impl DetectLayer {
    /// Detects with the versions and services of `maps`.
    pub fn new(maps: Arc<Mappings>) -> DetectLayer {
        DetectLayer { maps }
    }
}

impl<S> Layer<S> for DetectLayer {
    type Service = Detect<S>;
    fn layer(&self, inner: S) -> Detect<S> {
        Detect { inner, maps: self.maps.clone() }
    }
}

/// The detection service.
#[derive(Debug, Clone)]
pub struct Detect<S> {
    inner: S,
    maps: Arc<Mappings>,
}

impl<S> Service<Request<Bytes>> for Detect<S>
where
    S: Service<Request<Bytes>, Response = Response<Full<Bytes>>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Bytes>) -> Self::Future {
        let audit = req.extensions().get::<AuditHandle>().cloned().unwrap_or_default();
        match reply_for(&req, &self.maps) {
            Ok(reply) => {
                audit.update(|e| {
                    e.dialect = Some(reply.dialect.name().into());
                    e.action = Some(reply.wire_action.clone());
                });
                req.extensions_mut().insert(reply);
                Box::pin(self.inner.call(req))
            }
            Err(why) => {
                audit.update(|e| {
                    e.code = "Undetected".into();
                    e.message = Some(why.clone());
                });
                Box::pin(std::future::ready(Ok(plain(StatusCode::BAD_REQUEST, &why))))
            }
        }
    }
}

/// The decision: the reply a request will get, or why its dialect cannot be told.
pub fn reply_for(req: &Request<Bytes>, maps: &Mappings) -> Result<Reply, String> {
    let raw = raw_request(req, req.body());
    let found = dialect::detect(&raw, maps).map_err(|why| why.to_string())?;
    let request_id = req.extensions().get::<RequestId>().cloned().unwrap_or_default();
    Ok(dialect::reply(found.dialect, &raw, maps, request_id.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;

    #[test]
    fn replies_carry_the_dialect_and_the_request_id() {
        let maps = Mappings::embedded().unwrap();
        let mut req = Request::builder()
            .uri("/?AccessKeyId=testid&Action=AttachKeyPair&Format=XML")
            .header("host", "ecs.aliyuncs.com")
            .body(Bytes::new())
            .unwrap();
        req.extensions_mut().insert(RequestId("R-1".into()));
        let reply = reply_for(&req, &maps).unwrap();
        assert_eq!(
            (reply.dialect, reply.request_id.as_str(), reply.wire_action.as_str()),
            (Dialect::AliyunEcs, "R-1", "AttachKeyPair")
        );
        let unsigned = Request::builder().uri("/?Action=AttachKeyPair").body(Bytes::new()).unwrap();
        assert_eq!(reply_for(&unsigned, &maps).unwrap().dialect, Dialect::AliyunEcs, "an ECS action is evidence");
        let nothing = Request::builder().uri("/?Foo=bar").body(Bytes::new()).unwrap();
        assert!(reply_for(&nothing, &maps).unwrap_err().contains("no evidence"));
    }
}
