//! Leads (`LEAD#{lead}` / `LEAD`) and their imports (`IMPORT#{imp}`: the job and its row
//! errors). A lead's key comes from its establishment and number (`LeadId::of`), so the key
//! itself keeps a number to one lead; every write is conditional on the version it read. An
//! import commits each batch of rows (their leads, their errors, and the job's counters and
//! resume point) in one `TransactWriteItems`, so a worker that dies between batches leaves
//! counters that match exactly what was written.

use super::records::{AuditRecord, ImportFailure, ImportJobRecord, LeadRecord, UserRecord};
use super::{Failed, Index, Item, ListQuery, Page, Store, Tx, TxError, keys, n, s};
use crate::domain::{E164, ImportStatus, LeadStatus};
use crate::error::{Error, Result};
use crate::ids::{EstablishmentId, ImportJobId, LeadId};
use crate::leads::rows::RowError;
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// How a list of leads is narrowed (`GET /leads`).
#[derive(Clone, Debug, Default)]
pub struct LeadQuery {
    pub status: Option<LeadStatus>,
    pub campaign_id: Option<String>,
    pub search: Option<LeadSearch>,
}

/// A prefix search over an establishment's leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeadSearch {
    /// Numbers starting with this (`+3312`).
    Phone(String),
    /// Names starting with this (already in [`keys::search_name`] form).
    Name(String),
}

/// A lead an import writes: new, or replacing the version it read.
#[derive(Clone, Debug)]
pub enum LeadWrite {
    Create(LeadRecord),
    Update(LeadRecord),
}

/// How many rows of a batch ended which way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub processed: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

/// One batch of an import, committed whole or not at all.
#[derive(Debug)]
pub struct ImportBatch<'a> {
    pub job: &'a ImportJobRecord,
    /// The file row of the batch's last row: the job's new resume point.
    pub last_row: u64,
    pub leads: Vec<LeadWrite>,
    pub errors: Vec<RowError>,
    pub counts: ImportCounts,
}

/// Why a batch did not commit.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchConflict {
    /// A lead changed since it was read (another import, an operator): read them again.
    LeadsChanged,
    /// The job is no longer where this worker thinks (another worker moved it on, or it
    /// ended): stop.
    JobMoved,
}

/// The item of `lead` with its key and index attributes.
fn lead_item(lead: &LeadRecord) -> Result<Item> {
    let mut item = Store::item(&keys::lead(&lead.id), lead)?;
    let est = &lead.establishment_id;
    let sort = keys::lead_sort(&lead.created_at, &lead.id);
    item.insert(keys::GSI1PK.into(), s(keys::leads_index(est)));
    item.insert(keys::GSI1SK.into(), s(sort.clone()));
    item.insert(
        keys::GSI2PK.into(),
        s(keys::leads_by_status_index(est, lead.status)),
    );
    item.insert(keys::GSI2SK.into(), s(sort));
    item.insert(keys::GSI3PK.into(), s(keys::lead_phones_index(est)));
    item.insert(keys::GSI3SK.into(), s(lead.phone_e164.as_str()));
    if let Some(name) = lead
        .name
        .as_deref()
        .filter(|n| !keys::search_name(n).is_empty())
    {
        item.insert(keys::GSI4PK.into(), s(keys::lead_names_index(est)));
        item.insert(keys::GSI4SK.into(), s(keys::lead_name_sort(name, &lead.id)));
    }
    Ok(item)
}

/// A put of `lead` for a transaction: a create when `previous` is `None`, else conditional on
/// the version read.
fn lead_put(store: &Store, lead: &LeadRecord, previous: Option<u64>) -> Result<TransactWriteItem> {
    let put = Put::builder()
        .table_name(store.table())
        .set_item(Some(lead_item(lead)?));
    let put = match previous {
        None => put.condition_expression("attribute_not_exists(pk)"),
        Some(version) => put
            .condition_expression("version = :read")
            .expression_attribute_values(":read", n(version)),
    };
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(Error::internal)?)
        .build())
}

impl Store {
    /// A lead by id.
    pub async fn lead(&self, id: &LeadId) -> Result<Option<LeadRecord>> {
        self.get(&keys::lead(id)).await
    }

    /// Replaces `lead` if it is still at version `read` (its `version` must be `read + 1`);
    /// `Ok(false)` when it changed or vanished meanwhile.
    pub async fn replace_lead(&self, lead: &LeadRecord, read: u64) -> Result<bool> {
        let tx = Tx::new().with("lead", lead_put(self, lead, Some(read))?);
        match self.transact(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Deletes `lead` (at the version read) with its audit entry; `Ok(false)` when it changed
    /// or vanished meanwhile.
    pub async fn delete_lead(&self, lead: &LeadRecord, actor: &UserRecord) -> Result<bool> {
        let tx = Tx::new()
            .with(
                "lead",
                self.delete(
                    &keys::lead(&lead.id),
                    "version = :read",
                    HashMap::new(),
                    HashMap::from([(":read".to_owned(), n(lead.version))]),
                )?,
            )
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    &lead.establishment_id,
                    actor,
                    "lead.deleted",
                    ("lead", lead.id.as_str()),
                    json!({ "phone_e164": lead.phone_e164, "status": lead.status }),
                    serde_json::Value::Null,
                ))?,
            );
        match self.transact(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Turns the establishment's lead for `e164`, if there is one, to `do_not_call` (its
    /// number was just added to the list); one conditional UpdateItem.
    pub async fn mark_lead_do_not_call(&self, est: &EstablishmentId, e164: &E164) -> Result<()> {
        let status = LeadStatus::DoNotCall;
        self.update_if(
            &keys::lead(&LeadId::of(est, e164)),
            "SET #status = :status, gsi2pk = :index, updated_at = :now, version = version + :one",
            "attribute_exists(pk) AND #status <> :status",
            HashMap::from([("#status".to_owned(), "status".to_owned())]),
            HashMap::from([
                (":status".to_owned(), s(status.as_str())),
                (
                    ":index".to_owned(),
                    s(keys::leads_by_status_index(est, status)),
                ),
                (":now".to_owned(), s(Timestamp::now().to_string())),
                (":one".to_owned(), n(1)),
            ]),
        )
        .await
        .map(drop)
    }

    /// Whether `e164` is on the establishment's do-not-call list.
    pub async fn on_do_not_call_list(&self, est: &EstablishmentId, e164: &E164) -> Result<bool> {
        Ok(self
            .get::<serde_json::Value>(&keys::do_not_call(est, e164))
            .await?
            .is_some())
    }

    /// A page of the establishment's leads: newest first (by status through `gsi2`), or, for
    /// a search, in number or name order through the keys-only `gsi3` / `gsi4` and a
    /// BatchGetItem. A search page may hold fewer than `limit` leads when a status or
    /// campaign also narrows it; its cursor goes on.
    pub async fn leads_page(
        &self,
        est: &EstablishmentId,
        query: &LeadQuery,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<LeadRecord>> {
        let Some(search) = &query.search else {
            let pk = match query.status {
                Some(status) => keys::leads_by_status_index(est, status),
                None => keys::leads_index(est),
            };
            let index = if query.status.is_some() {
                Index::Gsi2
            } else {
                Index::Gsi1
            };
            let mut q = ListQuery::index(index, &pk).newest_first();
            if let Some(campaign) = &query.campaign_id {
                q = q.filtered(
                    super::Filter {
                        expression: "contains(campaign_ids, :campaign)".into(),
                        names: HashMap::new(),
                        values: HashMap::from([(":campaign".to_owned(), s(campaign.as_str()))]),
                    },
                    &format!("campaign={campaign}"),
                );
            }
            return self.list_page(&q, limit, cursor).await;
        };
        let (index, pk, prefix) = match search {
            LeadSearch::Phone(prefix) => (Index::Gsi3, keys::lead_phones_index(est), prefix),
            LeadSearch::Name(prefix) => (Index::Gsi4, keys::lead_names_index(est), prefix),
        };
        let to = format!("{prefix}\u{10FFFF}");
        let q = ListQuery::index(index, &pk).between(prefix, &to);
        let start = cursor
            .map(|c| self.cursors().decode(&q.name, c))
            .transpose()?;
        let (found, next) = self.query_page(&q, limit, start).await?;
        let wanted: Vec<keys::Key> = found
            .iter()
            .map(|item| {
                Ok(keys::Key {
                    pk: super::string_attr(item, keys::PK)?,
                    sk: super::string_attr(item, keys::SK)?,
                })
            })
            .collect::<Result<_>>()?;
        let mut read: HashMap<keys::Key, Item> =
            self.batch_get(&wanted).await?.into_iter().collect();
        let mut items = Vec::with_capacity(wanted.len());
        for key in &wanted {
            let Some(item) = read.remove(key) else {
                continue; // deleted since the index was read
            };
            let lead: LeadRecord = Self::record(item)?;
            let status_ok = query.status.is_none_or(|s| lead.status == s);
            let campaign_ok = query
                .campaign_id
                .as_ref()
                .is_none_or(|c| lead.campaign_ids.contains(c));
            if status_ok && campaign_ok {
                items.push(lead);
            }
        }
        Ok(Page {
            items,
            cursor: next
                .map(|k| self.cursors().encode(&q.name, &k))
                .transpose()?,
        })
    }

    /// Creates an import job.
    pub async fn create_import(&self, job: &ImportJobRecord) -> Result<()> {
        match self
            .transact(Tx::new().with("job", self.create(&keys::import_job(&job.id), job)?))
            .await
        {
            Ok(()) => Ok(()),
            Err(TxError::Conditions(_)) => Err(Error::Conflict("the import job exists".into())),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// An import job by id.
    pub async fn import_job(&self, id: &ImportJobId) -> Result<Option<ImportJobRecord>> {
        self.get(&keys::import_job(id)).await
    }

    /// Marks a job `running` (a worker starts or resumes it) with its row count; `None` when
    /// it is over or gone.
    pub async fn start_import(
        &self,
        id: &ImportJobId,
        total_rows: u64,
    ) -> Result<Option<ImportJobRecord>> {
        let now = s(Timestamp::now().to_string());
        let applied = self
            .update_if(
                &keys::import_job(id),
                "SET #status = :running, total_rows = :total, started_at = if_not_exists(started_at, :now), updated_at = :now, attempts = attempts + :one",
                "#status IN (:accepted, :running)",
                HashMap::from([("#status".to_owned(), "status".to_owned())]),
                HashMap::from([
                    (":running".to_owned(), s(ImportStatus::Running.as_str())),
                    (":accepted".to_owned(), s(ImportStatus::Accepted.as_str())),
                    (":total".to_owned(), n(total_rows)),
                    (":now".to_owned(), now),
                    (":one".to_owned(), n(1)),
                ]),
            )
            .await?;
        if !applied {
            return Ok(None);
        }
        self.import_job(id).await
    }

    /// Ends a job that has not ended: `completed`, or `failed` with why.
    pub async fn finish_import(
        &self,
        id: &ImportJobId,
        failure: Option<&ImportFailure>,
    ) -> Result<bool> {
        let mut names = HashMap::from([("#status".to_owned(), "status".to_owned())]);
        let mut values = HashMap::from([
            (":now".to_owned(), s(Timestamp::now().to_string())),
            (":accepted".to_owned(), s(ImportStatus::Accepted.as_str())),
            (":running".to_owned(), s(ImportStatus::Running.as_str())),
        ]);
        let mut expression =
            "SET #status = :status, completed_at = :now, updated_at = :now".to_owned();
        let status = match failure {
            None => ImportStatus::Completed,
            Some(failure) => {
                expression.push_str(", #error = :error");
                names.insert("#error".to_owned(), "error".to_owned());
                values.insert(
                    ":error".to_owned(),
                    serde_dynamo::to_attribute_value(failure)?,
                );
                ImportStatus::Failed
            }
        };
        values.insert(":status".to_owned(), s(status.as_str()));
        self.update_if(
            &keys::import_job(id),
            &expression,
            "#status IN (:accepted, :running)",
            names,
            values,
        )
        .await
    }

    /// What an import batch needs to know of `phones` in one BatchGetItem per 50 numbers: the
    /// establishment's leads for them, and which are on its do-not-call list.
    pub async fn import_lookup(
        &self,
        est: &EstablishmentId,
        phones: &[E164],
    ) -> Result<(HashMap<E164, LeadRecord>, HashSet<E164>)> {
        let mut wanted = Vec::with_capacity(phones.len() * 2);
        let mut dnc_keys = HashMap::new();
        for phone in phones {
            wanted.push(keys::lead(&LeadId::of(est, phone)));
            let dnc = keys::do_not_call(est, phone);
            dnc_keys.insert(dnc.clone(), phone.clone());
            wanted.push(dnc);
        }
        let mut leads = HashMap::new();
        let mut dnc = HashSet::new();
        for (key, item) in self.batch_get(&wanted).await? {
            if let Some(phone) = dnc_keys.remove(&key) {
                dnc.insert(phone);
            } else {
                let lead: LeadRecord = Self::record(item)?;
                leads.insert(lead.phone_e164.clone(), lead);
            }
        }
        Ok((leads, dnc))
    }

    /// Commits one batch of an import: its leads (each conditional on what was read), its
    /// row errors, and the job's counters and resume point (conditional on the job still
    /// running from where this batch started), in one TransactWriteItems.
    pub async fn commit_import_batch(
        &self,
        batch: &ImportBatch<'_>,
    ) -> Result<Result<(), BatchConflict>> {
        let job = batch.job;
        let mut tx = Tx::new();
        for write in &batch.leads {
            let item = match write {
                LeadWrite::Create(lead) => lead_put(self, lead, None)?,
                LeadWrite::Update(lead) => lead_put(self, lead, Some(lead.version - 1))?,
            };
            tx.add("lead", item);
        }
        for error in &batch.errors {
            let mut item = Self::item(&keys::import_error(&job.id, error.row), error)?;
            item.insert(keys::TTL.into(), n(job.expires_at));
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(item))
                .build()
                .map_err(Error::internal)?;
            tx.add("error", TransactWriteItem::builder().put(put).build());
        }
        let c = batch.counts;
        tx.add(
            "job",
            self.update(
                &keys::import_job(&job.id),
                "SET resume_after_row = :last, processed_rows = processed_rows + :processed, created = created + :created, updated = updated + :updated, unchanged = unchanged + :unchanged, rejected = rejected + :rejected, updated_at = :now",
                Some("resume_after_row = :from AND #status = :running"),
                HashMap::from([("#status".to_owned(), "status".to_owned())]),
                HashMap::from([
                    (":last".to_owned(), n(batch.last_row)),
                    (":from".to_owned(), n(job.resume_after_row)),
                    (":running".to_owned(), s(ImportStatus::Running.as_str())),
                    (":processed".to_owned(), n(c.processed)),
                    (":created".to_owned(), n(c.created)),
                    (":updated".to_owned(), n(c.updated)),
                    (":unchanged".to_owned(), n(c.unchanged)),
                    (":rejected".to_owned(), n(c.rejected)),
                    (":now".to_owned(), s(Timestamp::now().to_string())),
                ]),
            )?,
        );
        match self.transact(tx).await {
            Ok(()) => Ok(Ok(())),
            Err(TxError::Conditions(failed)) => Ok(Err(conflict_of(&failed))),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// A page of an import's row errors, in file order.
    pub async fn import_errors_page(
        &self,
        id: &ImportJobId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<RowError>> {
        let pk = keys::import_partition(id);
        let to = format!("{}\u{10FFFF}", keys::IMPORT_ERROR_PREFIX);
        self.list_page(
            &ListQuery::table(&pk).between(keys::IMPORT_ERROR_PREFIX, &to),
            limit,
            cursor,
        )
        .await
    }
}

/// What a failed batch condition means: the job's beats the leads'.
fn conflict_of(failed: &Failed) -> BatchConflict {
    if failed.has("job") {
        BatchConflict::JobMoved
    } else {
        BatchConflict::LeadsChanged
    }
}
