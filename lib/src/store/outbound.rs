//! Outbound calls' requests: what placing one reads (one BatchGetItem), and the idempotency
//! record a request's `Idempotency-Key` holds (`OUTREQ#…`): the call it made, or the refusal
//! it met; released only when the provider surely did not act on the request.

use super::records::{
    CallRecord, EstablishmentRecord, EstablishmentRuntimeRecord, OutboundRequestRecord, StoredError,
};
use super::{Store, Tx, TxError, keys, n, s};
use crate::domain::{CallStatus, E164};
use crate::error::{Error, Result};
use crate::ids::EstablishmentId;
use crate::time::Timestamp;
use std::collections::HashMap;

impl Store {
    /// What an earlier outbound request with this idempotency key did.
    pub async fn outbound_request(
        &self,
        est: &EstablishmentId,
        key: &str,
    ) -> Result<Option<OutboundRequestRecord>> {
        self.get(&keys::outbound_request(est, key)).await
    }

    /// An outbound call the provider did not take: the call fails with `error`, and the
    /// request's idempotency record either remembers the error (the same request would fail
    /// the same way) or, for a `retryable` failure, is released so a retry places a new call.
    pub async fn fail_outbound(
        &self,
        call: &CallRecord,
        key: Option<&str>,
        error: &StoredError,
        retryable: bool,
    ) -> Result<()> {
        let status = CallStatus::Failed;
        let mut items = Tx::new().with(
            "call",
            self.update(
                &keys::call(&call.id),
                &format!(
                    "SET #status = :status, status_rank = :rank, final_status = :status, \
                     end_reason = :reason, ended_at = :now, updated_at = :now{}",
                    keys::REMOVE_LIVE
                ),
                None,
                HashMap::from([("#status".to_owned(), "status".to_owned())]),
                HashMap::from([
                    (":status".to_owned(), s(status.as_str())),
                    (":rank".to_owned(), n(status.rank())),
                    (":reason".to_owned(), s(&error.code)),
                    (":now".to_owned(), s(Timestamp::now().to_string())),
                ]),
            )?,
        );
        if let Some(key) = key {
            let request = keys::outbound_request(&call.establishment_id, key);
            let ours = HashMap::from([(":call".to_owned(), s(call.id.as_str()))]);
            items.add(
                "request",
                if retryable {
                    self.delete(&request, "call_id = :call", HashMap::new(), ours)?
                } else {
                    let mut values = ours;
                    values.insert(":e".to_owned(), serde_dynamo::to_attribute_value(error)?);
                    self.update(
                        &request,
                        "SET #error = :e",
                        Some("call_id = :call"),
                        HashMap::from([("#error".to_owned(), "error".to_owned())]),
                        values,
                    )?
                },
            );
        }
        self.transact(items).await.map_err(|e| match e {
            TxError::Conditions(_) => Error::internal("outbound request record changed meanwhile"),
            TxError::Other(e) => e,
        })
    }
}

/// What placing an outbound call reads, in one BatchGetItem.
#[derive(Debug)]
pub struct OutboundContext {
    pub establishment: Option<EstablishmentRecord>,
    pub agent: Option<super::records::AgentRecord>,
    pub runtime: Option<EstablishmentRuntimeRecord>,
    /// The callee is on the establishment's do-not-call list.
    pub do_not_call: bool,
    /// An earlier request with the same idempotency key.
    pub request: Option<OutboundRequestRecord>,
}

impl Store {
    /// The establishment, the agent, the runtime slot, the callee's do-not-call entry and the
    /// idempotency record, in one round trip.
    pub async fn outbound_context(
        &self,
        est: &EstablishmentId,
        agent: &crate::ids::AgentId,
        callee: &E164,
        idempotency_key: Option<&str>,
    ) -> Result<OutboundContext> {
        let est_key = keys::establishment(est);
        let agent_key = keys::agent(agent);
        let runtime_key = keys::establishment_runtime(est);
        let dnc_key = keys::do_not_call(est, callee);
        let mut wanted = vec![
            est_key.clone(),
            agent_key.clone(),
            runtime_key.clone(),
            dnc_key.clone(),
        ];
        if let Some(key) = idempotency_key {
            wanted.push(keys::outbound_request(est, key));
        }
        let mut context = OutboundContext {
            establishment: None,
            agent: None,
            runtime: None,
            do_not_call: false,
            request: None,
        };
        for (key, item) in self.batch_get(&wanted).await? {
            if key == est_key {
                context.establishment = Some(Self::record(item)?);
            } else if key == agent_key {
                context.agent = Some(Self::record(item)?);
            } else if key == runtime_key {
                context.runtime = Some(Self::record(item)?);
            } else if key == dnc_key {
                context.do_not_call = true;
            } else {
                context.request = Some(Self::record(item)?);
            }
        }
        Ok(context)
    }
}
