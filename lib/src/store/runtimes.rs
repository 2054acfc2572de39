//! Runtimes, their hosts and their lifecycle commands. One runtime per establishment (guard
//! `EST#{est}`/`RUNTIME`), one runtime per host port (guard `HOST#{host}`/`PORT#{port}`), every
//! lifecycle request one transaction (runtime conditional on `revision`, command, audit entry),
//! and host reports applied idempotently (a command settles once).

use super::records::{
    AuditRecord, CommandRecord, CommandStatus, EstablishmentRuntimeRecord, HostPortRecord,
    HostRecord, RuntimeRecord, UserRecord,
};
use super::{Store, Tx, TxError, keys, n, retry, s};
use crate::domain::RuntimeStatus;
use crate::error::{Error, Result};
use crate::hostapi::{CommandOutcome, CommandResult, RuntimeHealth};
use crate::ids::{CommandId, EstablishmentId, RuntimeId};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use std::collections::HashMap;

/// Why provisioning did not apply.
#[derive(Debug)]
pub enum ProvisionError {
    /// The establishment has a runtime already.
    AlreadyProvisioned,
    /// Another runtime took the port meanwhile: pick another and retry.
    PortTaken,
    /// Anything else, already an API error.
    Other(Error),
}

impl Store {
    /// Registers a host, or updates its queue, address, port range and token.
    pub async fn register_host(&self, host: &HostRecord) -> Result<()> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::host(&host.host_id).attrs()))
            .update_expression(
                "SET host_id = :id, queue_url = :q, public_host = :h, port_from = :pf, \
                 port_to = :pt, token_hash = :t, gsi1pk = :g1, gsi1sk = :id, \
                 runtime_count = if_not_exists(runtime_count, :zero), \
                 created_at = if_not_exists(created_at, :now)",
            )
            .set_expression_attribute_values(Some(HashMap::from([
                (":id".to_owned(), s(&host.host_id)),
                (":q".to_owned(), s(&host.queue_url)),
                (":h".to_owned(), s(&host.public_host)),
                (":pf".to_owned(), n(host.port_from)),
                (":pt".to_owned(), n(host.port_to)),
                (":t".to_owned(), s(&host.token_hash)),
                (":g1".to_owned(), s(keys::HOSTS_INDEX)),
                (":zero".to_owned(), n(0)),
                (":now".to_owned(), s(host.created_at.to_string())),
            ])));
        retry::on_conflict(|| request.clone().send()).await?;
        Ok(())
    }

    /// A host by id.
    pub async fn host(&self, id: &str) -> Result<Option<HostRecord>> {
        self.get(&keys::host(id)).await
    }

    /// Every registered host (from `gsi1`).
    pub async fn hosts(&self) -> Result<Vec<HostRecord>> {
        self.gsi1_all(keys::HOSTS_INDEX).await
    }

    /// The ports in use on a host.
    pub async fn used_ports(&self, host: &str) -> Result<Vec<u16>> {
        let items = self
            .query_prefix_all(&keys::host_partition(host), keys::PORT_PREFIX)
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| match i.get(keys::SK) {
                Some(AttributeValue::S(sk)) => sk.strip_prefix(keys::PORT_PREFIX)?.parse().ok(),
                _ => None,
            })
            .collect())
    }

    /// Records a new runtime in one transaction: the establishment's runtime guard, the
    /// runtime, its host-port guard, the host's runtime count, the `create` command and the
    /// audit entry.
    pub async fn provision(
        &self,
        runtime: &RuntimeRecord,
        command: &CommandRecord,
        actor: &UserRecord,
    ) -> Result<(), ProvisionError> {
        let build = || -> Result<Tx> {
            Ok(Tx::new()
                .with("establishment_runtime", self.create(
                    &keys::establishment_runtime(&runtime.establishment_id),
                    &EstablishmentRuntimeRecord {
                        runtime_id: runtime.id.clone(),
                        base_url: runtime.base_url.clone(),
                        public_url: runtime.public_url.clone(),
                        status: runtime.status,
                        health: None,
                    },
                )?)
                .with("runtime", self.create(&keys::runtime(&runtime.id), runtime)?)
                .with("host_port", self.create(
                    &keys::host_port(&runtime.host_id, runtime.host_port),
                    &HostPortRecord {
                        runtime_id: runtime.id.clone(),
                    },
                )?)
                .with("host", self.update(
                    &keys::host(&runtime.host_id),
                    "ADD runtime_count :one",
                    None,
                    HashMap::new(),
                    HashMap::from([(":one".to_owned(), n(1))]),
                )?)
                .with("command", self.create(&keys::command(&runtime.id, &command.id), command)?)
                .with("audit", self.audit_item(&AuditRecord::new(
                    &runtime.establishment_id,
                    actor,
                    "runtime.provisioned",
                    ("runtime", runtime.id.as_str()),
                    serde_json::Value::Null,
                    json!({ "image": runtime.image, "host_id": runtime.host_id, "host_port": runtime.host_port }),
                ))?))
        };
        match self.transact(build().map_err(ProvisionError::Other)?).await {
            Ok(()) => Ok(()),
            Err(TxError::Conditions(failed)) if failed.has("establishment_runtime") => {
                Err(ProvisionError::AlreadyProvisioned)
            }
            Err(TxError::Conditions(failed)) if failed.has("host_port") => {
                Err(ProvisionError::PortTaken)
            }
            Err(TxError::Conditions(_)) => Err(ProvisionError::Other(Error::Unavailable(
                "the runtime host was deregistered meanwhile; retry".into(),
            ))),
            Err(TxError::Other(e)) => Err(ProvisionError::Other(e)),
        }
    }

    /// A runtime by id.
    pub async fn runtime(&self, id: &RuntimeId) -> Result<Option<RuntimeRecord>> {
        self.get(&keys::runtime(id)).await
    }

    /// The establishment's current runtime, if it has one.
    pub async fn establishment_runtime(
        &self,
        est: &EstablishmentId,
    ) -> Result<Option<RuntimeRecord>> {
        let Some(pointer) = self
            .get::<EstablishmentRuntimeRecord>(&keys::establishment_runtime(est))
            .await?
        else {
            return Ok(None);
        };
        self.runtime(&pointer.runtime_id).await
    }

    /// Records a lifecycle request on `runtime` (as read): the new status and desired state,
    /// the command and the audit entry, in one transaction. `Ok(false)`: the runtime changed
    /// since it was read.
    pub async fn request_action(
        &self,
        runtime: &RuntimeRecord,
        status: RuntimeStatus,
        command: &CommandRecord,
        actor: &UserRecord,
    ) -> Result<bool> {
        let desired = command.action.desired();
        let items = Tx::new()
            .with(
                "runtime",
                self.update(
                    &keys::runtime(&runtime.id),
                    "SET #status = :status, desired = :desired, last_command_id = :cmd, \
                 last_action = :action, updated_at = :now, last_error = :null ADD revision :one",
                    Some("revision = :rev"),
                    HashMap::from([("#status".to_owned(), "status".to_owned())]),
                    HashMap::from([
                        (":status".to_owned(), s(status.as_str())),
                        (
                            ":desired".to_owned(),
                            serde_dynamo::to_attribute_value(desired)?,
                        ),
                        (":cmd".to_owned(), s(command.id.as_str())),
                        (":action".to_owned(), s(command.action.as_str())),
                        (":now".to_owned(), s(command.created_at.to_string())),
                        (":null".to_owned(), AttributeValue::Null(true)),
                        (":one".to_owned(), n(1)),
                        (":rev".to_owned(), n(runtime.revision)),
                    ]),
                )?,
            )
            .with("routing", self.routing_status(runtime, status)?)
            .with(
                "command",
                self.create(&keys::command(&runtime.id, &command.id), command)?,
            )
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    &runtime.establishment_id,
                    actor,
                    &format!("runtime.{}", command.action.as_str()),
                    ("runtime", runtime.id.as_str()),
                    json!({ "status": runtime.status, "desired": runtime.desired }),
                    json!({ "status": status, "desired": desired, "command_id": command.id }),
                ))?,
            );
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// A command of a runtime.
    pub async fn command(
        &self,
        runtime: &RuntimeId,
        command: &CommandId,
    ) -> Result<Option<CommandRecord>> {
        self.get(&keys::command(runtime, command)).await
    }

    /// A runtime and one of its commands, in one round trip.
    pub async fn runtime_and_command(
        &self,
        runtime: &RuntimeId,
        command: &CommandId,
    ) -> Result<(Option<RuntimeRecord>, Option<CommandRecord>)> {
        let runtime_key = keys::runtime(runtime);
        let (mut r, mut c) = (None, None);
        for (key, item) in self
            .batch_get(&[runtime_key.clone(), keys::command(runtime, command)])
            .await?
        {
            if key == runtime_key {
                r = Some(Self::record(item)?);
            } else {
                c = Some(Self::record(item)?);
            }
        }
        Ok((r, c))
    }

    /// Marks a command (and, if it is still the runtime's newest, the runtime) failed because
    /// it could not be queued.
    pub async fn fail_unqueued(
        &self,
        runtime: &RuntimeRecord,
        command: &CommandRecord,
        why: &str,
    ) -> Result<()> {
        let result = CommandResult {
            runtime_id: runtime.id.clone(),
            outcome: CommandOutcome::Failed,
            error: Some(why.to_owned()),
            attempt: 0,
            final_attempt: true,
        };
        self.record_command_result(runtime, command, &result).await
    }

    /// Applies a host's report on `command` of `runtime` (both as read). Idempotent: a command
    /// that has settled stays as it is. A retryable failure only records the error; a final
    /// outcome settles the command and, when it is the runtime's newest command, the runtime
    /// (a confirmed removal also frees the establishment's runtime slot and the host port).
    pub async fn record_command_result(
        &self,
        runtime: &RuntimeRecord,
        command: &CommandRecord,
        result: &CommandResult,
    ) -> Result<()> {
        if command.status != CommandStatus::Pending {
            return Ok(());
        }
        let now = Timestamp::now();
        let error = result
            .error
            .as_deref()
            .map_or(AttributeValue::Null(true), |e| s(truncate(e, 2000)));
        let settles = result.outcome != CommandOutcome::Failed || result.final_attempt;
        let status = HashMap::from([("#status".to_owned(), "status".to_owned())]);
        let mut items = Tx::new();
        if settles {
            let settled: CommandStatus = result.outcome.into();
            items.add("command", self.update(
                &keys::command(&runtime.id, &command.id),
                "SET #status = :settled, #error = :error, attempts = :attempt, completed_at = :now",
                Some("#status = :pending"),
                HashMap::from([
                    ("#status".to_owned(), "status".to_owned()),
                    ("#error".to_owned(), "error".to_owned()),
                ]),
                HashMap::from([
                    (
                        ":settled".to_owned(),
                        serde_dynamo::to_attribute_value(settled)?,
                    ),
                    (":error".to_owned(), error.clone()),
                    (":attempt".to_owned(), n(result.attempt)),
                    (":now".to_owned(), s(now.to_string())),
                    (":pending".to_owned(), s("pending")),
                ]),
            )?);
        } else {
            items.add(
                "command",
                self.update(
                    &keys::command(&runtime.id, &command.id),
                    "SET #error = :error, attempts = :attempt",
                    Some("#status = :pending"),
                    HashMap::from([
                        ("#status".to_owned(), "status".to_owned()),
                        ("#error".to_owned(), "error".to_owned()),
                    ]),
                    HashMap::from([
                        (":error".to_owned(), error.clone()),
                        (":attempt".to_owned(), n(result.attempt)),
                        (":pending".to_owned(), s("pending")),
                    ]),
                )?,
            );
        }
        let newest = runtime.last_command_id == command.id;
        if newest && result.outcome != CommandOutcome::Superseded {
            // A success clears the runtime's last error; a failure records it.
            let (last_error, new_status) = match (result.outcome, settles) {
                (CommandOutcome::Succeeded, _) => {
                    (AttributeValue::Null(true), runtime.desired.settled())
                }
                (_, true) => (error, RuntimeStatus::Failed),
                (_, false) => (error, runtime.status),
            };
            let expr = "SET #status = :status, last_error = :last_error, updated_at = :now";
            let removed = new_status == RuntimeStatus::Removed;
            let expr = if removed {
                format!("{expr} REMOVE gsi1pk, gsi1sk")
            } else {
                expr.to_owned()
            };
            items.add(
                "runtime",
                self.update(
                    &keys::runtime(&runtime.id),
                    &expr,
                    Some("last_command_id = :cmd"),
                    status,
                    HashMap::from([
                        (":status".to_owned(), s(new_status.as_str())),
                        (":last_error".to_owned(), last_error),
                        (":now".to_owned(), s(now.to_string())),
                        (":cmd".to_owned(), s(command.id.as_str())),
                    ]),
                )?,
            );
            if removed {
                self.release(runtime, &mut items)?;
            } else {
                items.add("routing", self.routing_status(runtime, new_status)?);
            }
        }
        match self.transact(items).await {
            // A condition failing means another report settled the command or a newer command
            // arrived meanwhile: either way this report has nothing left to change.
            Ok(()) | Err(TxError::Conditions(_)) => Ok(()),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// The update of the establishment's copy of `runtime`'s status (see
    /// [`EstablishmentRuntimeRecord`]), for the transaction that changes the runtime.
    fn routing_status(
        &self,
        runtime: &RuntimeRecord,
        status: RuntimeStatus,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        self.update(
            &keys::establishment_runtime(&runtime.establishment_id),
            "SET #status = :status",
            Some("runtime_id = :rt"),
            HashMap::from([("#status".to_owned(), "status".to_owned())]),
            HashMap::from([
                (":status".to_owned(), s(status.as_str())),
                (":rt".to_owned(), s(runtime.id.as_str())),
            ]),
        )
    }

    /// The items that free a removed runtime's establishment slot and host port.
    fn release(&self, runtime: &RuntimeRecord, tx: &mut Tx) -> Result<()> {
        let ours = HashMap::from([(":rt".to_owned(), s(runtime.id.as_str()))]);
        tx.add(
            "establishment_runtime",
            self.delete(
                &keys::establishment_runtime(&runtime.establishment_id),
                "runtime_id = :rt",
                HashMap::new(),
                ours.clone(),
            )?,
        );
        tx.add(
            "host_port",
            self.delete(
                &keys::host_port(&runtime.host_id, runtime.host_port),
                "runtime_id = :rt",
                HashMap::new(),
                ours,
            )?,
        );
        tx.add(
            "host",
            self.update(
                &keys::host(&runtime.host_id),
                "ADD runtime_count :minus",
                None,
                HashMap::new(),
                HashMap::from([(":minus".to_owned(), n(-1))]),
            )?,
        );
        Ok(())
    }

    /// Stores what a host saw of one of its runtimes, on the runtime and on its
    /// establishment's routing copy, in one transaction; `Ok(false)` when the runtime is not
    /// on this host or no longer its establishment's runtime (nothing is written).
    pub async fn record_health(&self, host: &str, report: &RuntimeHealth) -> Result<bool> {
        let health: AttributeValue = serde_dynamo::to_attribute_value(report)?;
        let items = Tx::new()
            .with(
                "runtime",
                self.update(
                    &keys::runtime(&report.runtime_id),
                    "SET health = :h",
                    Some("host_id = :host"),
                    HashMap::new(),
                    HashMap::from([
                        (":h".to_owned(), health.clone()),
                        (":host".to_owned(), s(host)),
                    ]),
                )?,
            )
            .with(
                "establishment_runtime",
                self.update(
                    &keys::establishment_runtime(&report.establishment_id),
                    "SET health = :h",
                    Some("runtime_id = :rt"),
                    HashMap::new(),
                    HashMap::from([
                        (":h".to_owned(), health),
                        (":rt".to_owned(), s(report.runtime_id.as_str())),
                    ]),
                )?,
            );
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// A page of the runtimes a host runs or still has to remove.
    pub async fn host_runtimes_page(
        &self,
        host: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<super::Page<RuntimeRecord>> {
        let pk = keys::host_runtimes_index(host);
        self.list_page(&super::ListQuery::gsi1(&pk), limit, cursor)
            .await
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
