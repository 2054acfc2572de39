//! A call's post-call analysis, stored on the call item: each write replaces the whole
//! `analysis` map on the condition that it is still what the writer read (the same run, status
//! and attempt count), so a duplicated, late or concurrent job can never overwrite a newer
//! state; the results (`summary`, `sentiment`) are written with the success that produced them.

use super::{Store, keys, n, s};
use crate::domain::analysis::{Analysis, Sentiment};
use crate::error::Result;
use crate::ids::CallId;
use crate::time::Timestamp;
use std::collections::HashMap;

impl Store {
    /// Replaces call `id`'s analysis with `next` if it is still `expected` (`None`: the call
    /// has none yet, and has ended); with `results`, stores the summary and sentiment too.
    /// `Ok(false)` when something else changed it first.
    pub async fn put_analysis(
        &self,
        id: &CallId,
        expected: Option<&Analysis>,
        next: &Analysis,
        results: Option<(&str, Option<&Sentiment>)>,
    ) -> Result<bool> {
        let mut names = HashMap::new();
        let mut values = HashMap::from([
            (":next".to_owned(), serde_dynamo::to_attribute_value(next)?),
            (":now".to_owned(), s(Timestamp::now().to_string())),
        ]);
        let condition = match expected {
            None => "attribute_exists(final_status) AND attribute_not_exists(analysis)".to_owned(),
            Some(old) => {
                names.insert("#status".to_owned(), "status".to_owned());
                values.insert(":run".to_owned(), s(old.run_id.as_str()));
                values.insert(
                    ":status".to_owned(),
                    serde_dynamo::to_attribute_value(old.status)?,
                );
                values.insert(":attempts".to_owned(), n(old.attempts));
                "analysis.run_id = :run AND analysis.#status = :status AND analysis.attempts = :attempts"
                    .to_owned()
            }
        };
        let mut set = "SET analysis = :next, updated_at = :now".to_owned();
        if let Some((summary, sentiment)) = results {
            set.push_str(", summary = :summary");
            values.insert(":summary".to_owned(), s(summary));
            if let Some(sentiment) = sentiment {
                set.push_str(", sentiment = :sentiment");
                values.insert(
                    ":sentiment".to_owned(),
                    serde_dynamo::to_attribute_value(sentiment)?,
                );
            }
        }
        self.update_if(&keys::call(id), &set, &condition, names, values)
            .await
    }
}

impl Store {
    /// Stores the sentiment of call `id` so far while it is live; `Ok(false)` once the call
    /// has ended (its post-call analysis owns the final sentiment, which a late live update
    /// must never replace).
    pub async fn put_live_sentiment(&self, id: &CallId, sentiment: &Sentiment) -> Result<bool> {
        self.update_if(
            &keys::call(id),
            "SET sentiment = :s",
            "attribute_exists(pk) AND attribute_not_exists(final_status)",
            HashMap::new(),
            HashMap::from([(
                ":s".to_owned(),
                serde_dynamo::to_attribute_value(sentiment)?,
            )]),
        )
        .await
    }
}
