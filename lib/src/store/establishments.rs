//! Establishments: create (with the creator as first admin), read, partial updates, and the
//! list of establishments a user belongs to.

use super::records::{EstablishmentRecord, MemberRecord, UserRecord};
use super::{Page, Store, Tx, TxError, keys, n, retry, s};
use crate::domain::{BusinessHours, E164, Locale, Name, Role, TimeZone};
use crate::error::{Error, Result};
use crate::ids::EstablishmentId;
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;

/// Fields of an establishment (or its telephony policy) to change; `None` leaves a field as is.
#[derive(Debug, Default)]
pub struct EstablishmentPatch {
    pub name: Option<Name>,
    pub timezone: Option<TimeZone>,
    pub locale: Option<Locale>,
    /// `Some(None)` clears the handoff number.
    pub handoff_e164: Option<Option<E164>>,
    pub max_call_duration_seconds: Option<u32>,
    pub business_hours: Option<Vec<BusinessHours>>,
    pub blacklist_e164: Option<Vec<E164>>,
    pub max_concurrent_calls: Option<u32>,
}

impl Store {
    /// Creates the establishment and makes `creator` its admin, atomically.
    pub async fn create_establishment(
        &self,
        est: &EstablishmentRecord,
        creator: &UserRecord,
    ) -> Result<()> {
        let member = MemberRecord {
            establishment_id: est.id.clone(),
            user_id: creator.id.clone(),
            email: creator.email.clone(),
            display_name: creator.display_name.clone(),
            role: Role::Admin,
            joined_at: est.created_at,
        };
        let items = Tx::new()
            .with(
                "establishment",
                self.create(&keys::establishment(&est.id), est)?,
            )
            .with(
                "member",
                self.create(&keys::member(&est.id, &creator.id), &member)?,
            )
            .with(
                "membership",
                self.create(&keys::membership(&creator.id, &est.id), &member)?,
            );
        self.transact(items).await.map_err(|e| match e {
            TxError::Conditions(_) => Error::Conflict("establishment id collision; retry".into()),
            TxError::Other(e) => e,
        })
    }

    /// The establishment, if it exists.
    pub async fn establishment(&self, id: &EstablishmentId) -> Result<Option<EstablishmentRecord>> {
        self.get(&keys::establishment(id)).await
    }

    /// The establishment, or `404` (for callers that already checked membership).
    pub async fn establishment_required(
        &self,
        id: &EstablishmentId,
    ) -> Result<EstablishmentRecord> {
        self.establishment(id)
            .await?
            .ok_or(Error::NotFound("establishment"))
    }

    /// Applies a patch in one conditional UpdateItem (nested telephony fields are set one by
    /// one, so concurrent patches of different fields never undo each other).
    pub async fn update_establishment(
        &self,
        id: &EstablishmentId,
        patch: EstablishmentPatch,
    ) -> Result<EstablishmentRecord> {
        let mut sets = vec!["#updated_at = :updated_at".to_owned()];
        let mut names = HashMap::from([("#updated_at".to_owned(), "updated_at".to_owned())]);
        let mut values =
            HashMap::from([(":updated_at".to_owned(), s(Timestamp::now().to_string()))]);
        let mut set = |path: &[&str], value: AttributeValue| {
            let placeholder = format!(":v{}", values.len());
            let path = path
                .iter()
                .map(|name| {
                    let alias = format!("#{name}");
                    names.insert(alias.clone(), (*name).to_owned());
                    alias
                })
                .collect::<Vec<_>>()
                .join(".");
            sets.push(format!("{path} = {placeholder}"));
            values.insert(placeholder, value);
        };
        if let Some(v) = &patch.name {
            set(&["name"], attr(v)?);
        }
        if let Some(v) = &patch.timezone {
            set(&["timezone"], attr(v)?);
        }
        if let Some(v) = &patch.locale {
            set(&["locale"], attr(v)?);
        }
        if let Some(v) = &patch.handoff_e164 {
            set(&["telephony", "handoff_e164"], attr(v)?);
        }
        if let Some(v) = patch.max_call_duration_seconds {
            set(&["telephony", "max_call_duration_seconds"], n(v));
        }
        if let Some(v) = &patch.business_hours {
            set(&["telephony", "business_hours"], attr(v)?);
        }
        if let Some(v) = &patch.blacklist_e164 {
            set(&["telephony", "blacklist_e164"], attr(v)?);
        }
        if let Some(v) = patch.max_concurrent_calls {
            set(&["telephony", "max_concurrent_calls"], n(v));
        }
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::establishment(id).attrs()))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew);
        let out = retry::on_conflict(|| request.clone().send()).await;
        match out {
            Ok(out) => Self::record(out.attributes.unwrap_or_default()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::NotFound("establishment"))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The establishments `user` belongs to, a page at a time, in membership order.
    pub async fn establishments_of(
        &self,
        user: &crate::ids::UserId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<EstablishmentRecord>> {
        let pk = keys::user_partition(user);
        let query = format!("establishments:{user}");
        let start = cursor
            .map(|c| self.cursors().decode(&query, c))
            .transpose()?;
        let from = keys::MEMBER_PREFIX;
        let (items, next) = self
            .query_range(&pk, from, &format!("{from}\u{10FFFF}"), limit, start)
            .await?;
        let members: Vec<MemberRecord> =
            items.into_iter().map(Self::record).collect::<Result<_>>()?;
        let wanted: Vec<_> = members
            .iter()
            .map(|m| keys::establishment(&m.establishment_id))
            .collect();
        let mut found: HashMap<String, EstablishmentRecord> = HashMap::new();
        for (key, item) in self.batch_get(&wanted).await? {
            found.insert(key.pk, Self::record(item)?);
        }
        let items = members
            .into_iter()
            .filter_map(|m| found.remove(&keys::establishment(&m.establishment_id).pk))
            .collect();
        let cursor = next
            .map(|k| self.cursors().encode(&query, &k))
            .transpose()?;
        Ok(Page { items, cursor })
    }
}

/// One value as a DynamoDB attribute.
fn attr(value: &impl serde::Serialize) -> Result<AttributeValue> {
    Ok(serde_dynamo::to_attribute_value(value)?)
}
