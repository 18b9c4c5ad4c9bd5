//! Admission: the last step before a request may reach an upstream. Its admission record (who, what,
//! and the replay key it spent) is stored first; only then does the request go on. When the record
//! cannot be stored (disk full, file gone, permission), the request is refused in the caller's dialect
//! and nothing is forwarded, unless the operator chose `[audit] on_failure = "forward"`.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Request;
use tower::{Layer, Service};

use super::kept::Kept;

use crate::audit::{AuditHandle, AuditSink, Phase};
use crate::config::OnAuditFailure;
use crate::model::{Code, Fault};

/// Where admission records go, and what an unwritable audit does.
#[derive(Debug, Clone)]
pub struct AdmitLayer {
    sink: Arc<dyn AuditSink>,
    on_failure: OnAuditFailure,
}

impl AdmitLayer {
    /// Admits into `sink`.
    pub fn new(sink: Arc<dyn AuditSink>, on_failure: OnAuditFailure) -> AdmitLayer {
        AdmitLayer { sink, on_failure }
    }
}

impl<S: Clone> Layer<S> for AdmitLayer {
    type Service = Admit<S>;
    fn layer(&self, inner: S) -> Admit<S> {
        Admit { inner: Kept::new(inner), cfg: self.clone() }
    }
}

/// The admission service. The inner service is called once the admission is stored: a copy per thread,
/// not a clone per request.
#[derive(Debug, Clone)]
pub struct Admit<S> {
    inner: Kept<S>,
    cfg: AdmitLayer,
}

impl<S> Service<Request<Bytes>> for Admit<S>
where
    S: Service<Request<Bytes>, Error = Fault> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Fault;
    type Future = BoxFuture<'static, Result<S::Response, Fault>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        // The inner service is made ready when the admission is stored and it is called (`Kept`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let audit = req.extensions().get::<AuditHandle>().cloned().unwrap_or_default();
        let cfg = self.cfg.clone();
        let ready = self.inner.mine();
        Box::pin(async move {
            audit.update(|e| e.phase = Phase::Admitted);
            if let Err(e) = audit.read(|entry| cfg.sink.submit(entry)).await {
                match cfg.on_failure {
                    OnAuditFailure::Refuse => {
                        audit.update(|e| e.phase = Phase::Refused);
                        tracing::error!(error = %e, "Request refused: its admission could not be audited.");
                        return Err(Fault::gateway(
                            Code::Internal,
                            "The audit trail cannot be written, so nothing was forwarded; retry later.",
                        ));
                    }
                    OnAuditFailure::Forward => {
                        tracing::error!(error = %e, "Admission not audited; forwarding as configured.");
                    }
                }
            }
            ready.call(req).await
        })
    }
}
