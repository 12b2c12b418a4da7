//! The bundle store in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;

/// A store in memory.
#[derive(Debug, Default)]
pub struct MemoryBundleStore {
    trusted: Vec<TrustedKey>,
    records: Mutex<BTreeMap<String, Record>>,
    /// Workspace -> the id of its chain's head (taken before `records`).
    heads: Mutex<BTreeMap<String, String>>,
}

impl MemoryBundleStore {
    /// An empty store publishing envelopes signed by these keys (none: read-only).
    pub fn new(trusted_keys: Vec<TrustedKey>) -> Self {
        MemoryBundleStore {
            trusted: trusted_keys,
            records: Mutex::default(),
            heads: Mutex::default(),
        }
    }
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Record>>, AuditError> {
        self.records.lock().map_err(|_| AuditError::Storage {
            message: "store lock poisoned".into(),
            source: None,
        })
    }
}

impl BundleStore for MemoryBundleStore {
    fn put(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError> {
        let mut m = self.lock()?;
        let (record, outcome) = plan_put(m.get(&bundle.bundle_id), bundle, &self.trusted)?;
        if let Some(r) = record {
            m.insert(bundle.bundle_id.clone(), r);
        }
        Ok(outcome)
    }
    fn put_next(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError> {
        let mut heads = self.heads.lock().map_err(|_| AuditError::Storage {
            message: "store lock poisoned".into(),
            source: None,
        })?;
        if self.get(&bundle.bundle_id)?.is_none() {
            let head = match heads.get(&bundle.workspace_id) {
                Some(id) => self.get(id)?,
                None => None,
            };
            check_next(bundle, head.as_ref())?;
        }
        let outcome = self.put(bundle)?;
        if outcome == PutOutcome::Stored {
            heads.insert(bundle.workspace_id.clone(), bundle.bundle_id.clone());
        }
        Ok(outcome)
    }
    fn check_publishable(&self, bundle: &StoredBundle) -> Result<(), AuditError> {
        plan_put(None, bundle, &self.trusted).map(|_| ())
    }
    fn head(&self, workspace_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        let id = self
            .heads
            .lock()
            .map_err(|_| AuditError::Storage {
                message: "store lock poisoned".into(),
                source: None,
            })?
            .get(workspace_id)
            .cloned();
        match id {
            Some(id) => self.get(&id)?.map(|b| head_of(workspace_id, b)).transpose(),
            None => tip_of(self.list(workspace_id, None, None)?),
        }
    }
    fn get(&self, bundle_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        check_bundle_id(bundle_id)?;
        self.lock()?
            .get(bundle_id)
            .map(|r| {
                r.check(bundle_id)
                    .and_then(|b| check_read(b, &self.trusted, "memory"))
            })
            .transpose()
    }
    fn list(
        &self,
        workspace_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<StoredBundle>, AuditError> {
        let (f, t) = (bound(from, "from")?, bound(to, "to")?);
        let mut v = Vec::new();
        for (id, r) in self.lock()?.iter() {
            let b = r.check(id)?;
            if b.workspace_id == workspace_id && in_range(&b.created_at, f, t) {
                v.push(check_read(b, &self.trusted, "memory")?);
            }
        }
        sort(&mut v);
        Ok(v)
    }
    fn history(&self, bundle_id: &str) -> Result<Vec<StoreEvent>, AuditError> {
        check_bundle_id(bundle_id)?;
        Ok(self
            .lock()?
            .get(bundle_id)
            .map(|r| r.events.clone())
            .unwrap_or_default())
    }
}
