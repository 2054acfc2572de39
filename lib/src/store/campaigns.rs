//! Campaigns and their enrollments in the table (issue 14): defining and editing a campaign,
//! its status changes (each with its audit entry), the dialer's lease and tick chain, enrolling
//! leads in pages, and the three transitions of a lead under the dialer — claiming a dial (a
//! concurrency slot, the pacer's stamp, the attempt), recording the call it made, and settling
//! it — each one transaction, so the campaign's figures always equal its enrollments.

use super::records::{AuditRecord, CampaignRecord, EndedAttempt, EnrollmentRecord, LeadRecord};
use super::{Index, Item, ListQuery, Page, Store, Tx, TxError, keys, n, s};
use crate::domain::{CampaignStatus, EnrollmentStatus, PausedReason};
use crate::error::{Error, Result};
use crate::ids::{CallId, CampaignId, EstablishmentId, LeadId};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use std::collections::HashMap;

/// Why a dialer transaction did not apply.
#[derive(Debug)]
pub enum DialerConflict {
    /// The lease is no longer ours, or (for a claim) the campaign stopped running.
    Campaign,
    /// The enrollment is not where the dialer read it (a stale index read).
    Enrollment,
    /// The establishment is at its limit of campaign calls in flight.
    EstablishmentFull,
    /// A lead being enrolled is taken by another campaign, or gone.
    Lead,
}

/// A lead moving from one enrollment state to another under the dialer.
#[derive(Debug)]
pub struct Transition<'a> {
    /// The enrollment as it will be (status, attempts, next attempt).
    pub enrollment: &'a EnrollmentRecord,
    /// Its status and attempt count as read (the write's condition).
    pub was: (EnrollmentStatus, u32),
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `q` narrowed to the items whose `status` is `status`, when one is given (the cursor is
/// bound to the filter).
fn with_status<'a>(q: ListQuery<'a>, status: Option<&str>) -> ListQuery<'a> {
    match status {
        None => q,
        Some(status) => q.filtered(
            super::Filter {
                expression: "#status = :status".into(),
                names: names(&[("#status", "status")]),
                values: HashMap::from([(":status".to_owned(), s(status))]),
            },
            &format!("status={status}"),
        ),
    }
}

fn attr(value: &impl serde::Serialize) -> Result<AttributeValue> {
    Ok(serde_dynamo::to_attribute_value(value)?)
}

impl Store {
    /// The item of a campaign: the record plus its index attributes.
    fn campaign_item(c: &CampaignRecord) -> Result<Item> {
        let mut item = Self::item(&keys::campaign(&c.id), c)?;
        item.insert(
            keys::GSI1PK.into(),
            s(keys::campaigns_index(&c.establishment_id)),
        );
        item.insert(
            keys::GSI1SK.into(),
            s(keys::campaign_sort(&c.created_at, &c.id)),
        );
        Ok(item)
    }

    /// The item of an enrollment: the record plus the dialer's index entry while it waits
    /// (by due time).
    fn enrollment_item(e: &EnrollmentRecord) -> Result<Item> {
        let mut item = Self::item(&keys::enrollment(&e.campaign_id, &e.lead_id), e)?;
        if let Some((pk, sk)) = Self::enrollment_index(e) {
            item.insert(keys::GSI2PK.into(), s(pk));
            item.insert(keys::GSI2SK.into(), s(sk));
        }
        Ok(item)
    }

    fn enrollment_index(e: &EnrollmentRecord) -> Option<(String, String)> {
        match e.status {
            EnrollmentStatus::Queued | EnrollmentStatus::RetryWait => Some((
                keys::enrollments_due_index(&e.campaign_id),
                keys::due_sort(e.next_attempt_at.map_or(0, |t| t.unix_millis()), &e.lead_id),
            )),
            _ => None,
        }
    }

    /// A put of the whole item, for a transaction.
    fn put_item(
        &self,
        item: Item,
        condition: &str,
        attr_names: HashMap<String, String>,
        values: Item,
    ) -> Result<TransactWriteItem> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names((!attr_names.is_empty()).then_some(attr_names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Creates a campaign, with its audit entry.
    pub async fn create_campaign(&self, c: &CampaignRecord, audit: &AuditRecord) -> Result<()> {
        let tx = Tx::new()
            .with(
                "campaign",
                self.put_item(
                    Self::campaign_item(c)?,
                    "attribute_not_exists(pk)",
                    HashMap::new(),
                    Item::new(),
                )?,
            )
            .with("audit", self.audit_item(audit)?);
        self.transact(tx).await.map_err(|e| match e {
            TxError::Conditions(_) => Error::Conflict("campaign id collision; retry".into()),
            TxError::Other(e) => e,
        })
    }

    /// A campaign (consistent read).
    pub async fn campaign(&self, id: &CampaignId) -> Result<Option<CampaignRecord>> {
        self.get(&keys::campaign(id)).await
    }

    /// An establishment's campaigns, newest first; with `status`, only those (the page may
    /// then hold fewer than `limit` while its cursor goes on).
    pub async fn campaigns_page(
        &self,
        est: &EstablishmentId,
        status: Option<CampaignStatus>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<CampaignRecord>> {
        let pk = keys::campaigns_index(est);
        let q = with_status(
            ListQuery::gsi1(&pk).newest_first(),
            status.map(CampaignStatus::as_str),
        );
        self.list_page(&q, limit, cursor).await
    }

    /// Changes a campaign on a member's account (its definition, or its status), with the
    /// audit entry, if it is still at `version` and in one of `from`: `sets` are the
    /// attributes written (the version moves by one), `removes` those cleared; `Ok(false)`
    /// otherwise. Only these attributes are written, so the dialer's own (figures, lease,
    /// pacer) are never overwritten by an edit made while it settles calls.
    pub async fn update_campaign(
        &self,
        c: &CampaignRecord,
        from: &[CampaignStatus],
        sets: &[(&str, AttributeValue)],
        removes: &[&str],
        audit: &AuditRecord,
    ) -> Result<bool> {
        let mut set = vec!["version = :next".to_owned(), "updated_at = :now".to_owned()];
        let mut values = HashMap::from([
            (":v".to_owned(), n(c.version)),
            (":next".to_owned(), n(c.version + 1)),
            (":now".to_owned(), s(Timestamp::now().to_string())),
        ]);
        let mut attr_names = names(&[("#status", "status")]);
        for (i, (name, value)) in sets.iter().enumerate() {
            attr_names.insert(format!("#a{i}"), (*name).to_owned());
            set.push(format!("#a{i} = :a{i}"));
            values.insert(format!(":a{i}"), value.clone());
        }
        let mut allowed = Vec::new();
        for (i, status) in from.iter().enumerate() {
            values.insert(format!(":s{i}"), s(status.as_str()));
            allowed.push(format!(":s{i}"));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let tx = Tx::new()
            .with(
                "campaign",
                self.update(
                    &keys::campaign(&c.id),
                    &expression,
                    Some(&format!(
                        "version = :v AND #status IN ({})",
                        allowed.join(", ")
                    )),
                    attr_names,
                    values,
                )?,
            )
            .with("audit", self.audit_item(audit)?);
        match self.transact(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(f)) if f.has("campaign") => Ok(false),
            Err(TxError::Conditions(_)) => Err(Error::internal("audit id collision")),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// The attributes that put a campaign in the index of campaigns the dialer has work for.
    pub fn active_index(id: &CampaignId) -> [(&'static str, AttributeValue); 2] {
        [
            (keys::GSI2PK, s(keys::ACTIVE_CAMPAIGNS_INDEX)),
            (keys::GSI2SK, s(id.as_str())),
        ]
    }

    /// A page of leads matching `filter` in creation order after the index sort key
    /// `after`, with the sort key of the last one read (to resume after).
    pub async fn leads_matching(
        &self,
        est: &EstablishmentId,
        filter: &crate::domain::LeadFilter,
        after: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<LeadRecord>, Option<String>)> {
        let pk = match filter.status {
            Some(status) => keys::leads_by_status_index(est, status),
            None => keys::leads_index(est),
        };
        let index = if filter.status.is_some() {
            Index::Gsi2
        } else {
            Index::Gsi1
        };
        let from = after.map_or_else(|| "0".to_owned(), |a| format!("{a}\u{0}"));
        let q = ListQuery::index(index, &pk).between(&from, "\u{10FFFF}");
        let (items, next) = self.query_page(&q, limit, None).await?;
        let last = items
            .last()
            .and_then(|i| i.get(index.attributes().1))
            .and_then(|v| v.as_s().ok())
            .cloned();
        let leads: Vec<LeadRecord> = items.into_iter().map(Self::record).collect::<Result<_>>()?;
        let matching = leads
            .into_iter()
            .filter(|l| {
                filter
                    .import_job_id
                    .as_ref()
                    .is_none_or(|j| l.import_job_id.as_ref() == Some(j))
            })
            .collect();
        Ok((matching, if next.is_some() { last } else { None }))
    }

    /// What the dialer reads about the establishment each step, in one BatchGetItem: the
    /// establishment (policy and limit), its runtime slot, and its campaign calls in flight.
    pub async fn dialer_context(
        &self,
        est: &EstablishmentId,
    ) -> Result<(
        Option<super::records::EstablishmentRecord>,
        Option<super::records::EstablishmentRuntimeRecord>,
        u32,
    )> {
        let (est_key, runtime_key, slots_key) = (
            keys::establishment(est),
            keys::establishment_runtime(est),
            keys::dial_slots(est),
        );
        let (mut e, mut r, mut in_flight) = (None, None, 0);
        for (key, item) in self
            .batch_get(&[est_key.clone(), runtime_key.clone(), slots_key])
            .await?
        {
            if key == est_key {
                e = Some(Self::record(item)?);
            } else if key == runtime_key {
                r = Some(Self::record(item)?);
            } else {
                in_flight = item
                    .get("in_flight")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
        }
        Ok((e, r, in_flight))
    }

    /// The calls of `ids` that exist (one BatchGetItem per 100).
    pub async fn calls_by_id(&self, ids: &[CallId]) -> Result<Vec<super::records::CallRecord>> {
        let wanted: Vec<_> = ids.iter().map(keys::call).collect();
        self.batch_get(&wanted)
            .await?
            .into_iter()
            .map(|(_, item)| Self::record(item))
            .collect()
    }

    /// A page of a campaign's enrollments, in lead order; with `status`, only those.
    pub async fn enrollments_page(
        &self,
        id: &CampaignId,
        status: Option<EnrollmentStatus>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<EnrollmentRecord>> {
        let pk = keys::campaign_partition(id);
        let to = format!("{}\u{10FFFF}", keys::ENROLLMENT_PREFIX);
        let q = with_status(
            ListQuery::table(&pk).between(keys::ENROLLMENT_PREFIX, &to),
            status.map(EnrollmentStatus::as_str),
        );
        self.list_page(&q, limit, cursor).await
    }

    /// One enrollment.
    pub async fn enrollment(
        &self,
        id: &CampaignId,
        lead: &LeadId,
    ) -> Result<Option<EnrollmentRecord>> {
        self.get(&keys::enrollment(id, lead)).await
    }

    /// The campaigns the dialer still has work for (the sweeper ticks them).
    pub async fn active_campaigns(&self) -> Result<Vec<CampaignRecord>> {
        self.query_all(&ListQuery::index(Index::Gsi2, keys::ACTIVE_CAMPAIGNS_INDEX))
            .await
    }

    /// Takes the dialer's lease on a campaign for `token` until `until_ms`, if no one holds
    /// it (or the holder's has lapsed at `now_ms`) and, when `seq` is given, the tick chain is
    /// at `seq`: the campaign as it is then, or `None`.
    pub async fn take_dialer_lease(
        &self,
        id: &CampaignId,
        seq: Option<u64>,
        token: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<CampaignRecord>> {
        let mut condition = "attribute_exists(pk) AND (attribute_not_exists(lease_until_ms) \
                             OR lease_until_ms < :now)"
            .to_owned();
        let mut values = HashMap::from([
            (":now".to_owned(), n(now_ms)),
            (":until".to_owned(), n(until_ms)),
            (":token".to_owned(), s(token)),
        ]);
        if let Some(seq) = seq {
            condition.push_str(" AND tick_seq = :seq");
            values.insert(":seq".into(), n(seq));
        }
        let request = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(keys::campaign(id).attrs()))
            .update_expression("SET lease_token = :token, lease_until_ms = :until")
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew);
        match super::retry::on_conflict(|| request.clone().send()).await {
            Ok(out) => out.attributes.map(Self::record).transpose(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease back and moves the tick chain to `next_seq`, noting when the next
    /// tick is due (epoch ms) so the sweeper can tell a broken chain; `false` when the lease
    /// was no longer `token`'s.
    pub async fn end_dialer_lease(
        &self,
        id: &CampaignId,
        token: &str,
        next_seq: u64,
        tick_due_ms: Option<i64>,
    ) -> Result<bool> {
        let mut values = HashMap::from([
            (":token".to_owned(), s(token)),
            (":seq".to_owned(), n(next_seq)),
        ]);
        let set = match tick_due_ms {
            Some(due) => {
                values.insert(":due".into(), n(due));
                "SET tick_seq = :seq, tick_due_ms = :due REMOVE lease_token, lease_until_ms"
            }
            None => "SET tick_seq = :seq REMOVE lease_token, lease_until_ms, tick_due_ms",
        };
        self.update_if(
            &keys::campaign(id),
            set,
            "lease_token = :token",
            HashMap::new(),
            values,
        )
        .await
    }

    /// The campaign item's part of a dialer transaction: its figures (and whatever `extra`
    /// sets), if the lease is still `token`'s and, when `running` is asked, it is running.
    fn dialer_campaign_update(
        &self,
        c: &CampaignRecord,
        token: &str,
        running: bool,
        extra: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem> {
        let mut sets = vec![
            "progress = :progress".to_owned(),
            "updated_at = :now".to_owned(),
        ];
        let mut values = HashMap::from([
            (":progress".to_owned(), attr(&c.progress)?),
            (":now".to_owned(), s(Timestamp::now().to_string())),
            (":token".to_owned(), s(token)),
        ]);
        for (i, (name, value)) in extra.iter().enumerate() {
            sets.push(format!("{name} = :x{i}"));
            values.insert(format!(":x{i}"), value.clone());
        }
        let mut condition = "lease_token = :token".to_owned();
        let mut attr_names = HashMap::new();
        if running {
            condition.push_str(" AND #status = :running");
            values.insert(":running".into(), s(CampaignStatus::Running.as_str()));
            attr_names.insert("#status".to_owned(), "status".to_owned());
        }
        self.update(
            &keys::campaign(&c.id),
            &format!("SET {}", sets.join(", ")),
            Some(&condition),
            attr_names,
            values,
        )
    }

    /// The enrollment's part of a dialer transaction: written whole, if it is still as read.
    fn enrollment_write(&self, t: &Transition<'_>) -> Result<TransactWriteItem> {
        self.put_item(
            Self::enrollment_item(t.enrollment)?,
            "attribute_exists(pk) AND #status = :was AND attempt_count = :count",
            names(&[("#status", "status")]),
            HashMap::from([
                (":was".to_owned(), s(t.was.0.as_str())),
                (":count".to_owned(), n(t.was.1)),
            ]),
        )
    }

    /// The establishment's campaign calls in flight moved by `delta` (+1 only while under
    /// `limit`). The counter item is created by its first use.
    fn slots_update(
        &self,
        est: &EstablishmentId,
        delta: i64,
        limit: u32,
    ) -> Result<TransactWriteItem> {
        let mut values = HashMap::from([(":d".to_owned(), n(delta))]);
        let condition = (delta > 0).then(|| {
            values.insert(":limit".into(), n(limit));
            "attribute_not_exists(in_flight) OR in_flight < :limit".to_owned()
        });
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(keys::dial_slots(est).attrs()))
            .update_expression("ADD in_flight :d")
            .set_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Enrolls a page of leads: each new enrollment (created only if absent), each dialable
    /// lead marked as this campaign's (only if no other campaign has it), and the campaign's
    /// figures and resume point, under the lease.
    pub async fn enroll_page(
        &self,
        c: &CampaignRecord,
        token: &str,
        entries: &[(EnrollmentRecord, Option<&LeadRecord>)],
    ) -> std::result::Result<(), DialerError> {
        let mut extra = vec![("enrolled_all", AttributeValue::Bool(c.enrolled_all))];
        if let Some(through) = &c.enrolled_through {
            extra.push(("enrolled_through", s(through.as_str())));
        }
        let mut tx = Tx::new().with(
            "campaign",
            self.dialer_campaign_update(c, token, true, &extra)?,
        );
        for (enrollment, lead) in entries {
            tx.add(
                "enrollment",
                self.put_item(
                    Self::enrollment_item(enrollment)?,
                    "attribute_not_exists(pk)",
                    HashMap::new(),
                    Item::new(),
                )?,
            );
            if let Some(lead) = lead {
                tx.add(
                    "lead",
                    self.update(
                        &keys::lead(&lead.id),
                        "SET active_campaign_id = :c, campaign_ids = \
                         list_append(if_not_exists(campaign_ids, :empty), :cl), \
                         version = version + :one",
                        Some("attribute_not_exists(active_campaign_id)"),
                        HashMap::new(),
                        HashMap::from([
                            (":c".to_owned(), s(c.id.as_str())),
                            (":cl".to_owned(), AttributeValue::L(vec![s(c.id.as_str())])),
                            (":empty".to_owned(), AttributeValue::L(Vec::new())),
                            (":one".to_owned(), n(1)),
                        ]),
                    )?,
                );
            }
        }
        self.transact(tx).await.map_err(|e| match e {
            TxError::Conditions(f) if f.has("campaign") => {
                DialerError::Conflict(DialerConflict::Campaign)
            }
            TxError::Conditions(f) if f.has("lead") => DialerError::Conflict(DialerConflict::Lead),
            TxError::Conditions(_) => DialerError::Conflict(DialerConflict::Enrollment),
            TxError::Other(e) => DialerError::Other(e),
        })
    }

    /// The leads' items as they are now (to redo an enrollment page another campaign raced).
    pub async fn leads_by_id(&self, ids: &[LeadId]) -> Result<Vec<LeadRecord>> {
        let wanted: Vec<_> = ids.iter().map(keys::lead).collect();
        self.batch_get(&wanted)
            .await?
            .into_iter()
            .map(|(_, item)| Self::record(item))
            .collect()
    }

    /// The enrollments waiting to be dialed, earliest due first (at most `limit`).
    pub async fn enrollments_due(
        &self,
        id: &CampaignId,
        limit: i32,
    ) -> Result<Vec<EnrollmentRecord>> {
        let pk = keys::enrollments_due_index(id);
        let q = ListQuery::index(Index::Gsi2, &pk);
        let (items, _) = self.query_page(&q, limit, None).await?;
        items.into_iter().map(Self::record).collect()
    }

    /// The enrollments of `leads` in campaign `id` (one BatchGetItem per 100).
    pub async fn enrollments_of(
        &self,
        id: &CampaignId,
        leads: &[LeadId],
    ) -> Result<Vec<EnrollmentRecord>> {
        let wanted: Vec<_> = leads.iter().map(|l| keys::enrollment(id, l)).collect();
        self.batch_get(&wanted)
            .await?
            .into_iter()
            .map(|(_, item)| Self::record(item))
            .collect()
    }

    /// Whether each of `numbers` is on the establishment's do-not-call list (one BatchGet).
    pub async fn on_do_not_call_lists(
        &self,
        est: &EstablishmentId,
        numbers: &[crate::domain::E164],
    ) -> Result<Vec<crate::domain::E164>> {
        let wanted: Vec<_> = numbers.iter().map(|e| keys::do_not_call(est, e)).collect();
        let found = self.batch_get(&wanted).await?;
        Ok(numbers
            .iter()
            .zip(&wanted)
            .filter(|(_, key)| found.iter().any(|(k, _)| k == *key))
            .map(|(e, _)| e.clone())
            .collect())
    }

    /// Claims a dial: the lead moves to `dialing` with its new attempt, the campaign's figures
    /// and pacer stamp move, and the establishment's count of calls in flight takes a slot
    /// (under `est_limit`) — only while the campaign runs under our lease.
    pub async fn claim_dial(
        &self,
        c: &CampaignRecord,
        token: &str,
        t: &Transition<'_>,
        est_limit: u32,
    ) -> std::result::Result<(), DialerError> {
        let mut extra = vec![("dialing_leads", attr(&c.dialing_leads)?)];
        if let Some(us) = c.last_dial_us {
            extra.push(("last_dial_us", n(us)));
        }
        let tx = Tx::new()
            .with(
                "campaign",
                self.dialer_campaign_update(c, token, true, &extra)?,
            )
            .with("enrollment", self.enrollment_write(t)?)
            .with(
                "slots",
                self.slots_update(&c.establishment_id, 1, est_limit)?,
            );
        self.dialer_tx(tx).await
    }

    /// Settles a lead under the lease: the enrollment as it is now (its attempt's outcome, its
    /// next state), the campaign's figures and breaker window, and, when it held one, the
    /// slot given back.
    pub async fn settle_enrollment(
        &self,
        c: &CampaignRecord,
        token: &str,
        t: &Transition<'_>,
        frees_slot: bool,
    ) -> std::result::Result<(), DialerError> {
        let extra = [
            ("recent_attempts", attr(&c.recent_attempts)?),
            ("dialing_leads", attr(&c.dialing_leads)?),
        ];
        let mut tx = Tx::new()
            .with(
                "campaign",
                self.dialer_campaign_update(c, token, false, &extra)?,
            )
            .with("enrollment", self.enrollment_write(t)?);
        if frees_slot {
            tx.add("slots", self.slots_update(&c.establishment_id, -1, 0)?);
        }
        self.dialer_tx(tx).await
    }

    /// Records the call a claimed dial made (or the error it met) on the enrollment's
    /// attempt; `false` when the attempt is no longer in flight.
    pub async fn record_dial(
        &self,
        id: &CampaignId,
        lead: &LeadId,
        attempt: u32,
        call: &CallId,
    ) -> Result<bool> {
        let index = attempt.saturating_sub(1);
        self.update_if(
            &keys::enrollment(id, lead),
            &format!("SET attempts[{index}].call_id = :call, updated_at = :now"),
            "attribute_exists(pk) AND #status = :dialing AND attempt_count = :n",
            names(&[("#status", "status")]),
            HashMap::from([
                (":call".to_owned(), s(call.as_str())),
                (":now".to_owned(), s(Timestamp::now().to_string())),
                (":dialing".to_owned(), s(EnrollmentStatus::Dialing.as_str())),
                (":n".to_owned(), n(attempt)),
            ]),
        )
        .await
    }

    /// Records that the outbound path refused attempt `attempt` for good (`code`): the next
    /// step settles it; `false` when the attempt is no longer in flight.
    pub async fn refuse_dial(
        &self,
        id: &CampaignId,
        lead: &LeadId,
        attempt: u32,
        code: &str,
        message: &str,
    ) -> Result<bool> {
        let index = attempt.saturating_sub(1);
        self.update_if(
            &keys::enrollment(id, lead),
            &format!(
                "SET attempts[{index}].refused = :code, attempts[{index}].#error = :message, \
                 updated_at = :now"
            ),
            "attribute_exists(pk) AND #status = :dialing AND attempt_count = :n",
            names(&[("#status", "status"), ("#error", "error")]),
            HashMap::from([
                (":code".to_owned(), s(code)),
                (":message".to_owned(), s(message)),
                (":now".to_owned(), s(Timestamp::now().to_string())),
                (":dialing".to_owned(), s(EnrollmentStatus::Dialing.as_str())),
                (":n".to_owned(), n(attempt)),
            ]),
        )
        .await
    }

    /// Moves a campaign between statuses on the dialer's own account (the circuit breaker,
    /// the runtime's state, completion), under the lease and only from `from`: the fields
    /// `extra` sets change with it. `false` when the campaign moved meanwhile.
    pub async fn dialer_status(
        &self,
        c: &CampaignRecord,
        token: &str,
        from: CampaignStatus,
        to: CampaignStatus,
        reason: Option<PausedReason>,
        extra: &[(&str, AttributeValue)],
    ) -> Result<bool> {
        let mut set = vec![
            "#status = :to".to_owned(),
            "updated_at = :now".to_owned(),
            "version = version + :one".to_owned(),
        ];
        let mut values = HashMap::from([
            (":to".to_owned(), s(to.as_str())),
            (":from".to_owned(), s(from.as_str())),
            (":now".to_owned(), s(Timestamp::now().to_string())),
            (":one".to_owned(), n(1)),
            (":token".to_owned(), s(token)),
        ]);
        for (i, (name, value)) in extra.iter().enumerate() {
            set.push(format!("{name} = :x{i}"));
            values.insert(format!(":x{i}"), value.clone());
        }
        let mut remove = Vec::new();
        match reason {
            Some(r) => {
                set.push("paused_reason = :reason".into());
                values.insert(":reason".into(), attr(&r)?);
            }
            None => remove.push("paused_reason"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.update_if(
            &keys::campaign(&c.id),
            &expression,
            "attribute_exists(pk) AND lease_token = :token AND #status = :from",
            names(&[("#status", "status")]),
            values,
        )
        .await
    }

    /// Takes a campaign that is over and has no call in flight out of the active index.
    pub async fn retire_campaign(&self, id: &CampaignId, token: &str) -> Result<bool> {
        self.update_if(
            &keys::campaign(id),
            "REMOVE gsi2pk, gsi2sk",
            "attribute_exists(pk) AND lease_token = :token AND progress.dialing = :zero",
            HashMap::new(),
            HashMap::from([(":token".to_owned(), s(token)), (":zero".to_owned(), n(0))]),
        )
        .await
    }

    /// Lets go of a lead the campaign is done with (another campaign may take it); after a
    /// conversation a `new` lead becomes `contacted`. Best effort: a lead deleted or edited
    /// meanwhile is left as it is.
    pub async fn release_lead(
        &self,
        id: &CampaignId,
        lead: &LeadId,
        est: &EstablishmentId,
        contacted: bool,
    ) -> Result<()> {
        let released = self
            .update_if(
                &keys::lead(lead),
                "REMOVE active_campaign_id SET version = version + :one",
                "attribute_exists(pk) AND active_campaign_id = :c",
                HashMap::new(),
                HashMap::from([(":c".to_owned(), s(id.as_str())), (":one".to_owned(), n(1))]),
            )
            .await?;
        if released && contacted {
            let new = crate::domain::LeadStatus::New;
            let to = crate::domain::LeadStatus::Contacted;
            self.update_if(
                &keys::lead(lead),
                "SET #status = :to, gsi2pk = :pk, version = version + :one, updated_at = :now",
                "attribute_exists(pk) AND #status = :new",
                names(&[("#status", "status")]),
                HashMap::from([
                    (":to".to_owned(), s(to.as_str())),
                    (":new".to_owned(), s(new.as_str())),
                    (":pk".to_owned(), s(keys::leads_by_status_index(est, to))),
                    (":one".to_owned(), n(1)),
                    (":now".to_owned(), s(Timestamp::now().to_string())),
                ]),
            )
            .await?;
        }
        Ok(())
    }

    /// Applies a dialer transaction, telling which item's condition failed.
    async fn dialer_tx(&self, tx: Tx) -> std::result::Result<(), DialerError> {
        self.transact(tx).await.map_err(|e| match e {
            TxError::Conditions(f) if f.has("campaign") => {
                DialerError::Conflict(DialerConflict::Campaign)
            }
            TxError::Conditions(f) if f.has("enrollment") => {
                DialerError::Conflict(DialerConflict::Enrollment)
            }
            TxError::Conditions(_) => DialerError::Conflict(DialerConflict::EstablishmentFull),
            TxError::Other(e) => DialerError::Other(e),
        })
    }
}

/// A dialer write that did not apply: a condition (which one), or an error.
#[derive(Debug)]
pub enum DialerError {
    Conflict(DialerConflict),
    Other(Error),
}

impl From<Error> for DialerError {
    fn from(e: Error) -> Self {
        DialerError::Other(e)
    }
}

/// Records an ended attempt in the breaker's window.
pub fn remember(recent: &mut Vec<EndedAttempt>, ended: EndedAttempt, window_secs: i64) {
    let since = ended.at.unix() - window_secs;
    recent.retain(|a| a.at.unix() > since);
    recent.push(ended);
}
