//! The one definition of the AWS resources the local stack and the tests create: the table
//! (keys, sparse GSIs, TTL), the bucket, the queues with their dead-letter queues, and the KMS
//! key secrets are sealed under. It
//! mirrors `infra/template.yaml`; a test checks the two agree.

use crate::error::{Error, Result};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::HashMap;

/// Global secondary indexes: name, partition attribute, sort attribute.
pub const GSIS: &[(&str, &str, &str)] = &[
    ("gsi1", "gsi1pk", "gsi1sk"),
    ("gsi2", "gsi2pk", "gsi2sk"),
    ("gsi3", "gsi3pk", "gsi3sk"),
    ("gsi4", "gsi4pk", "gsi4sk"),
];

/// The global indexes that project only keys (the rest project every attribute): the
/// sweeper's live-calls index, so that a live call's updates are not written to it again, and
/// the leads' search indexes (by number, by name), which answer keys a BatchGetItem reads.
pub const KEYS_ONLY_GSIS: &[&str] = &["gsi3", "gsi4"];

/// Local secondary indexes (partition key `pk`): name, sort attribute. They exist only if made
/// with the table, and they are what lets a call's partition be read in time order and in
/// arrival order with consistent reads.
pub const LSIS: &[(&str, &str)] = &[("lsi1", "lsi1sk"), ("lsi2", "lsi2sk")];

/// Queues (each with a `-dlq` twin): logical name, and how many receives before a message is
/// moved to the dead-letter queue.
pub const QUEUES: &[(&str, i32)] = &[
    ("summary-jobs", 5),
    ("live-sentiment", 3),
    ("campaign-jobs", 5),
    ("lead-import-jobs", 5),
    ("runtime-commands", 5),
];

/// The FIFO queues among [`QUEUES`] (named `{name}.fifo`, their dead-letter queue FIFO too),
/// with the delay every message waits, in seconds: the live-sentiment queue deduplicates
/// a call's nudges per 5-second slot and delivers each slot's one message when it is over.
pub const FIFO_QUEUES: &[(&str, i32)] = &[("live-sentiment", 5)];

/// Names of one set of resources (unique per test, fixed for `make dev`).
#[derive(Clone, Debug)]
pub struct ResourceNames {
    pub table: String,
    pub bucket: String,
    /// Prepended to every queue name.
    pub queue_prefix: String,
    /// The alias of the KMS key secrets are sealed under (`alias/{prefix}-secrets`).
    pub key_alias: String,
}

/// What `ensure` created: the queue URLs by logical name, and the secrets key's id.
#[derive(Clone, Debug, Default)]
pub struct Provisioned {
    pub queue_urls: HashMap<String, String>,
    pub kms_key_id: String,
}

impl ResourceNames {
    /// Names with a common prefix: `{prefix}-table`, `{prefix}-bucket`, `{prefix}-{queue}`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            table: format!("{prefix}-table"),
            bucket: format!("{prefix}-bucket"),
            queue_prefix: format!("{prefix}-"),
            key_alias: format!("alias/{prefix}-secrets"),
        }
    }
}

/// Creates whatever is missing; safe to run again.
pub async fn ensure(sdk: &SdkConfig, names: &ResourceNames) -> Result<Provisioned> {
    ensure_table(&aws_sdk_dynamodb::Client::new(sdk), &names.table).await?;
    ensure_bucket(
        &crate::aws::s3(sdk),
        &names.bucket,
        sdk.region().map(|r| r.as_ref()),
    )
    .await?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut provisioned = Provisioned::default();
    for (queue, max_receives) in QUEUES {
        let fifo_delay = FIFO_QUEUES
            .iter()
            .find(|(name, _)| name == queue)
            .map(|(_, delay)| *delay);
        let url = ensure_queue(
            &sqs,
            &format!("{}{queue}", names.queue_prefix),
            *max_receives,
            fifo_delay,
        )
        .await?;
        provisioned.queue_urls.insert((*queue).to_owned(), url);
    }
    provisioned.kms_key_id = ensure_key(&aws_sdk_kms::Client::new(sdk), &names.key_alias).await?;
    Ok(provisioned)
}

/// The id of the KMS key behind `alias`, made (with the alias) if there is none.
async fn ensure_key(kms: &aws_sdk_kms::Client, alias: &str) -> Result<String> {
    if let Ok(found) = kms.describe_key().key_id(alias).send().await
        && let Some(meta) = found.key_metadata()
    {
        return Ok(meta.key_id().to_owned());
    }
    let made = kms
        .create_key()
        .description("Callplane secrets at rest (envelope encryption)")
        .send()
        .await
        .map_err(Error::internal)?;
    let id = made
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or_else(|| Error::internal("KMS made a key without an id"))?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&id)
        .send()
        .await
        .map_err(Error::internal)?;
    Ok(id)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(Error::internal)
}

async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    let mut attrs = vec![crate::store::keys::PK, crate::store::keys::SK];
    let mut create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(crate::store::keys::PK, KeyType::Hash)?)
        .key_schema(key(crate::store::keys::SK, KeyType::Range)?);
    for (index, pk, sk) in GSIS {
        attrs.extend([*pk, *sk]);
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(*index)
                .key_schema(key(pk, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(if KEYS_ONLY_GSIS.contains(index) {
                            ProjectionType::KeysOnly
                        } else {
                            ProjectionType::All
                        })
                        .build(),
                )
                .build()
                .map_err(Error::internal)?,
        );
    }
    for (index, sk) in LSIS {
        attrs.push(*sk);
        create = create.local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(*index)
                .key_schema(key(crate::store::keys::PK, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(Error::internal)?,
        );
    }
    for attr in attrs {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(Error::internal)?,
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(e) => return Err(Error::internal(e)),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(crate::store::keys::TTL)
                .build()
                .map_err(Error::internal)?,
        )
        .send()
        .await
        .map_err(Error::internal)?;
    Ok(())
}

async fn ensure_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    region: Option<&str>,
) -> Result<()> {
    let mut create = client.create_bucket().bucket(bucket);
    if let Some(region) = region.filter(|r| *r != "us-east-1") {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(region.into())
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::internal(e)),
    }
}

async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    max_receives: i32,
    fifo_delay: Option<i32>,
) -> Result<String> {
    let suffix = if fifo_delay.is_some() { ".fifo" } else { "" };
    let fifo =
        |create: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder| {
            match fifo_delay {
                Some(_) => create.attributes(QueueAttributeName::FifoQueue, "true"),
                None => create,
            }
        };
    let dlq_url = fifo(
        client
            .create_queue()
            .queue_name(format!("{name}-dlq{suffix}")),
    )
    .send()
    .await
    .map_err(Error::internal)?
    .queue_url
    .unwrap_or_default();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(Error::internal)?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| Error::internal("dead-letter queue has no ARN"))?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string() }).to_string();
    let mut create = fifo(client.create_queue().queue_name(format!("{name}{suffix}")))
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(QueueAttributeName::VisibilityTimeout, "60");
    if let Some(delay) = fifo_delay {
        create = create.attributes(QueueAttributeName::DelaySeconds, delay.to_string());
    }
    let url = create
        .send()
        .await
        .map_err(Error::internal)?
        .queue_url
        .unwrap_or_default();
    Ok(url)
}
