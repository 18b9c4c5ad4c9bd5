//! Key look-ups read every page: one sent with no page of its own is read page by page, at the
//! dialect's largest page (Tencent `Offset`/`Limit` of 100, ECS `PageNumber`/`PageSize` of 50), until
//! the reply's `TotalCount` entries have come or a page comes back short, at most [`MAX_PAGES`] pages.
//! Each page is a call of its own (quota, breaker, retries); all share the call's deadline.

use tokio::time::Instant;

use super::Upstream;
use super::retry::Attempt;
use crate::clock::Clock;
use crate::mapping::Mappings;
use crate::model::{Answer, Code, Fault, Operation, Outcome, Page};

/// The most pages one look-up reads.
pub const MAX_PAGES: usize = 20;

impl Upstream {
    /// Every key pair matching `op`, read page by page. The outcome carries the first page's RequestId.
    pub(crate) async fn every_page(
        &self,
        op: &Operation,
        maps: &Mappings,
        clock: &dyn Clock,
        deadline: Instant,
        log: &mut Vec<Attempt>,
    ) -> Result<Outcome, Fault> {
        let size = maps.limits(self.dialect()).lookup_keys;
        let mut found = Vec::new();
        let mut request_id = None;
        for number in 0..MAX_PAGES {
            let mut page_op = op.clone();
            page_op.page = Some(Page { offset: number * size, limit: size });
            let answered = self.attempts(&page_op, maps, clock, deadline, log).await?;
            let Answer::KeyPairs(keys) = answered.outcome.answer else {
                return Err(Fault::upstream(
                    Code::Internal,
                    format!("The upstream `{}` answered a key look-up with something else.", self.config.name),
                    None,
                ));
            };
            request_id.get_or_insert(answered.outcome.request_id);
            let short = keys.len() < size;
            found.extend(keys);
            if short || answered.total.is_some_and(|total| found.len() >= total) {
                let request_id = request_id.unwrap_or_default();
                return Ok(Outcome { request_id, answer: Answer::KeyPairs(found) });
            }
        }
        Err(Fault::upstream(
            Code::Internal,
            format!(
                "The upstream `{}` holds more than {} key pairs matching the look-up; crossgate reads at most {MAX_PAGES} \
                 pages of {size}.",
                self.config.name,
                MAX_PAGES * size
            ),
            None,
        ))
    }
}
