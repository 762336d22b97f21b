//! One transaction spanning the registry and a caller's own tables: a stage that must commit
//! its own state (e.g. a sensor's last sequence number and the message's idempotency key)
//! atomically with the appeals it opens runs its work through [`Registry::transact`].

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;

use super::store::{insert_event, lock_appeal};
use super::{MAX_ATTEMPTS, Registry, RegistryError, Submission, submit_in};
use crate::domain::Observation;
use crate::incidents::Plan;

/// What a [`Registry::transact`] closure returns: its work, boxed (a `Send` future borrowing
/// the transaction).
pub type TxFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, RegistryError>> + Send + 't>>;

/// The open transaction handed to [`Registry::transact`]'s closure.
pub struct RegistryTx<'a> {
    tx: Transaction<'a>,
    registry: &'a Registry,
    /// Committed submissions are counted and logged after the commit.
    submitted: Vec<(Observation, Submission)>,
}

impl std::fmt::Debug for RegistryTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryTx")
    }
}

impl<'a> RegistryTx<'a> {
    /// The transaction, for the caller's own tables (the service role's grants apply).
    pub fn client(&self) -> &Transaction<'a> {
        &self.tx
    }

    /// The registry's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.registry.clock.now()
    }

    /// [`Registry::submit`] inside this transaction: dedup, register or join.
    pub async fn submit(
        &mut self,
        obs: &Observation,
        plan: &Plan,
    ) -> Result<Submission, RegistryError> {
        let submission = submit_in(&self.tx, obs, plan, self.registry.clock.as_ref()).await?;
        self.submitted.push((obs.clone(), submission.clone()));
        Ok(submission)
    }

    /// Appends a timeline event that changes no status (e.g. `sensor_cleared`) to an appeal,
    /// whatever its status: history is written, never reopened.
    pub async fn add_note(
        &mut self,
        appeal_id: i64,
        actor: &str,
        kind: &str,
        data: &serde_json::Value,
    ) -> Result<(), RegistryError> {
        let seq = lock_appeal(&self.tx, appeal_id).await?.1;
        let now = self.now();
        insert_event(
            &self.tx,
            appeal_id,
            seq + 1,
            now,
            actor,
            kind,
            None,
            None,
            None,
            data,
        )
        .await
    }
}

impl Registry {
    /// Runs `work` in one transaction and commits it; retried from the start (a fresh
    /// transaction) on serialization conflicts and deadlocks, so `work` must only depend on
    /// what it reads inside the transaction (capture owned or `Arc` data and clone it into
    /// each attempt: `move |tx| { let items = items.clone(); Box::pin(async move { … }) }`).
    pub async fn transact<T, F>(&self, mut work: F) -> Result<T, RegistryError>
    where
        F: for<'t, 'c> FnMut(&'t mut RegistryTx<'c>) -> TxFuture<'t, T>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.transact_once(&mut work).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if error.is_retryable() && attempt < MAX_ATTEMPTS {
                tracing::debug!(attempt, %error, "registry transaction retried");
                continue;
            }
            return Err(error);
        }
    }

    async fn transact_once<T, F>(&self, work: &mut F) -> Result<T, RegistryError>
    where
        F: for<'t, 'c> FnMut(&'t mut RegistryTx<'c>) -> TxFuture<'t, T>,
    {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut rtx = RegistryTx {
            tx,
            registry: self,
            submitted: Vec::new(),
        };
        let value = work(&mut rtx).await?;
        let RegistryTx { tx, submitted, .. } = rtx;
        tx.commit().await?;
        for (obs, submission) in &submitted {
            self.record_submission(obs, submission);
        }
        Ok(value)
    }
}
