//! Trunks and routes: the file's entries overlaid with the console's edits.
//!
//! The TOML file is read at start-up and stays the base. An edit made in the
//! console is stored in the database (console state kinds `trunk` and
//! `route`, keyed by trunk name or route pattern) and overrides the file's
//! entry with the same key; deleting a file entry stores a tombstone. The
//! effective list is the file's entries in file order (overridden or
//! removed), then the console's own entries by key. Every change is
//! validated as the whole list, exactly as the file would be, and reaches
//! the SIP loop without a restart.

use echo_audit::{AuditStore, StoreError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::config::{
    validate_routes, validate_trunks, ConfigError, RouteConfig, RouteEntry, TrunkConfig, TrunkEntry,
};
use crate::driver::Command;

/// A trunk or a route entry, as the overlay handles them.
pub trait Entry: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The console state kind.
    const KIND: &'static str;
    /// The file section, for messages.
    const SECTION: &'static str;
    /// What identifies it (trunk name, route pattern).
    fn key(&self) -> &str;
    /// Validates a whole list, as the file's section would be.
    fn validate(list: Vec<Self>) -> Result<(), ConfigError>;
    /// The configuration file's entries of this kind.
    fn file_entries(settings: &Settings) -> &[Self];
    /// The entry as shown and logged: secrets replaced.
    fn redacted(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl Entry for TrunkEntry {
    const KIND: &'static str = "trunk";
    const SECTION: &'static str = "trunks";
    fn key(&self) -> &str {
        &self.name
    }
    fn validate(list: Vec<Self>) -> Result<(), ConfigError> {
        validate_trunks(list).map(drop)
    }
    fn file_entries(settings: &Settings) -> &[Self] {
        &settings.file_trunks
    }
    fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(p) = value.get_mut("password") {
            *p = serde_json::Value::String("***".into());
        }
        value
    }
}

impl Entry for RouteEntry {
    const KIND: &'static str = "route";
    const SECTION: &'static str = "routes";
    fn key(&self) -> &str {
        &self.pattern
    }
    fn validate(list: Vec<Self>) -> Result<(), ConfigError> {
        validate_routes(list).map(drop)
    }
    fn file_entries(settings: &Settings) -> &[Self] {
        &settings.file_routes
    }
}

/// Where an effective entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The TOML file, untouched.
    File,
    /// Created in the console.
    Console,
    /// Edited in the console; the file has another version.
    Override,
    /// In the file, deleted in the console (not in effect).
    Deleted,
}

impl Source {
    /// How the console shows it.
    pub fn label(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Console => "console",
            Source::Override => "console (overrides file)",
            Source::Deleted => "deleted in console (file has it)",
        }
    }
}

/// One entry of the overlay.
#[derive(Clone, Debug, Serialize)]
pub struct Row<E> {
    /// The entry (for trunks the password is kept here; show
    /// [`Entry::redacted`]).
    pub entry: E,
    /// Where it comes from.
    pub source: Source,
    /// Who last changed it in the console.
    pub changed_by: Option<String>,
    /// When (µs since epoch).
    pub changed_unix_us: Option<i64>,
}

impl<E> Row<E> {
    /// Whether the entry is in effect.
    pub fn active(&self) -> bool {
        self.source != Source::Deleted
    }
}

/// What the store keeps per console edit.
#[derive(Serialize, Deserialize)]
struct Stored<E> {
    /// `None`: a tombstone for a file entry.
    entry: Option<E>,
    by: String,
    at_unix_us: i64,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The entry (or the list with it) is not valid.
    #[error("{0}")]
    Invalid(String),
    /// No entry with that key.
    #[error("no such entry")]
    NotFound,
    /// Creating an entry whose key exists.
    #[error("{0:?} already exists")]
    Exists(String),
    /// The store failed.
    #[error("the database is unavailable: {0}")]
    Store(#[from] StoreError),
    /// The SIP loop is gone (shutting down).
    #[error("the gateway is shutting down")]
    Stopped,
}

/// The overlay and the way to apply it.
#[derive(Debug)]
pub struct Settings {
    file_trunks: Vec<TrunkEntry>,
    file_routes: Vec<RouteEntry>,
    commands: mpsc::Sender<Command>,
    /// One change at a time: validate, store, apply.
    lock: Mutex<()>,
}

impl Settings {
    /// The file's entries, and where to send the result.
    pub fn new(
        file_trunks: Vec<TrunkEntry>,
        file_routes: Vec<RouteEntry>,
        commands: mpsc::Sender<Command>,
    ) -> Self {
        Settings {
            file_trunks,
            file_routes,
            commands,
            lock: Mutex::new(()),
        }
    }

    /// The entries of one kind with their sources, file order first.
    pub async fn rows<E: Entry>(&self, store: &dyn AuditStore) -> Result<Vec<Row<E>>, StoreError> {
        overlay(E::file_entries(self), store).await
    }

    /// The effective, validated configuration (what the SIP loop runs).
    pub async fn effective(
        &self,
        store: &dyn AuditStore,
    ) -> Result<(Vec<TrunkConfig>, Vec<RouteConfig>), ChangeError> {
        let trunks = active(self.rows::<TrunkEntry>(store).await?);
        let routes = active(self.rows::<RouteEntry>(store).await?);
        let trunks = validate_trunks(trunks).map_err(|e| invalid::<TrunkEntry>(e, None))?;
        let routes = validate_routes(routes).map_err(|e| invalid::<RouteEntry>(e, None))?;
        Ok((trunks, routes))
    }

    /// Creates (`old_key: None`) or replaces an entry, validates the whole
    /// list, stores it, and applies it. Returns the entry as it was before.
    pub async fn save<E: Entry>(
        &self,
        store: &dyn AuditStore,
        actor: &str,
        old_key: Option<&str>,
        entry: E,
    ) -> Result<Option<E>, ChangeError> {
        let _guard = self.lock.lock().await;
        // The entry alone first, so the message names its field.
        E::validate(vec![entry.clone()]).map_err(|e| invalid::<E>(e, Some(0)))?;
        let mut list = active(self.rows::<E>(store).await?);
        let position = |list: &[E], key: &str| list.iter().position(|e| e.key() == key);
        let replaced = match old_key {
            None => None,
            Some(old) => Some(position(&list, old).ok_or(ChangeError::NotFound)?),
        };
        if old_key != Some(entry.key()) && position(&list, entry.key()).is_some() {
            return Err(ChangeError::Exists(entry.key().to_owned()));
        }
        let before = match replaced {
            Some(i) => Some(std::mem::replace(&mut list[i], entry.clone())),
            None => {
                list.push(entry.clone());
                None
            }
        };
        E::validate(list).map_err(|e| invalid::<E>(e, None))?;
        if let Some(old) = old_key.filter(|old| *old != entry.key()) {
            self.remove_stored::<E>(store, actor, old).await?;
        }
        put(store, actor, entry.key(), Some(&entry)).await?;
        self.apply(store).await?;
        Ok(before)
    }

    /// Deletes an entry (a tombstone if the file has it) and applies.
    /// Returns the entry deleted.
    pub async fn delete<E: Entry>(
        &self,
        store: &dyn AuditStore,
        actor: &str,
        key: &str,
    ) -> Result<E, ChangeError> {
        let _guard = self.lock.lock().await;
        let mut list = active(self.rows::<E>(store).await?);
        let i = list
            .iter()
            .position(|e| e.key() == key)
            .ok_or(ChangeError::NotFound)?;
        let before = list.remove(i);
        E::validate(list).map_err(|e| invalid::<E>(e, None))?;
        self.remove_stored::<E>(store, actor, key).await?;
        self.apply(store).await?;
        Ok(before)
    }

    /// Drops the console's version of a file entry, so the file's applies
    /// again. Returns whether there was one.
    pub async fn restore<E: Entry>(
        &self,
        store: &dyn AuditStore,
        key: &str,
    ) -> Result<bool, ChangeError> {
        let _guard = self.lock.lock().await;
        let file = E::file_entries(self)
            .iter()
            .find(|e| e.key() == key)
            .cloned()
            .ok_or(ChangeError::NotFound)?;
        let list: Vec<E> = self
            .rows::<E>(store)
            .await?
            .into_iter()
            .filter_map(|r| match r.entry.key() == key {
                true => Some(file.clone()),
                false => r.active().then_some(r.entry),
            })
            .collect();
        E::validate(list).map_err(|e| invalid::<E>(e, None))?;
        let removed = store.state_delete(E::KIND, key).await?;
        self.apply(store).await?;
        Ok(removed)
    }

    async fn remove_stored<E: Entry>(
        &self,
        store: &dyn AuditStore,
        actor: &str,
        key: &str,
    ) -> Result<(), ChangeError> {
        if E::file_entries(self).iter().any(|e| e.key() == key) {
            put::<E>(store, actor, key, None).await?;
        } else {
            store.state_delete(E::KIND, key).await?;
        }
        Ok(())
    }

    /// Sends the effective configuration to the SIP loop and waits until it
    /// runs it.
    pub async fn apply(&self, store: &dyn AuditStore) -> Result<(), ChangeError> {
        let (trunks, routes) = self.effective(store).await?;
        let (done, applied) = oneshot::channel();
        self.commands
            .send(Command::Reconfigure {
                trunks,
                routes,
                done,
            })
            .await
            .map_err(|_| ChangeError::Stopped)?;
        applied.await.map_err(|_| ChangeError::Stopped)
    }
}

fn active<E>(rows: Vec<Row<E>>) -> Vec<E> {
    rows.into_iter()
        .filter(Row::active)
        .map(|r| r.entry)
        .collect()
}

async fn put<E: Entry>(
    store: &dyn AuditStore,
    actor: &str,
    key: &str,
    entry: Option<&E>,
) -> Result<(), StoreError> {
    let stored = Stored {
        entry,
        by: actor.to_owned(),
        at_unix_us: crate::audit_log::now_unix_us(),
    };
    store
        .state_put(
            E::KIND,
            key,
            &serde_json::to_value(&stored).unwrap_or_default(),
        )
        .await
}

async fn overlay<E: Entry>(file: &[E], store: &dyn AuditStore) -> Result<Vec<Row<E>>, StoreError> {
    let mut stored: Vec<(String, Stored<E>)> = Vec::new();
    for entry in store.state_list(E::KIND).await? {
        match serde_json::from_value::<Stored<E>>(entry.value) {
            Ok(s) => stored.push((entry.key, s)),
            Err(e) => {
                tracing::warn!(kind = E::KIND, key = %entry.key, error = %e, "console: unreadable stored entry ignored")
            }
        }
    }
    let mut rows = Vec::with_capacity(file.len() + stored.len());
    for entry in file {
        let edit = stored.iter().position(|(k, _)| k == entry.key());
        rows.push(match edit.map(|i| stored.remove(i).1) {
            None => Row {
                entry: entry.clone(),
                source: Source::File,
                changed_by: None,
                changed_unix_us: None,
            },
            Some(s) => Row {
                source: if s.entry.is_some() {
                    Source::Override
                } else {
                    Source::Deleted
                },
                entry: s.entry.unwrap_or_else(|| entry.clone()),
                changed_by: Some(s.by),
                changed_unix_us: Some(s.at_unix_us),
            },
        });
    }
    for (_, s) in stored {
        // A tombstone whose file entry is gone means nothing any more.
        if let Some(entry) = s.entry {
            rows.push(Row {
                entry,
                source: Source::Console,
                changed_by: Some(s.by),
                changed_unix_us: Some(s.at_unix_us),
            });
        }
    }
    Ok(rows)
}

/// A validation error as a person reads it: `routes[0].staff_uri: …`
/// becomes `staff_uri: …` when one entry was checked alone.
fn invalid<E: Entry>(e: ConfigError, alone: Option<usize>) -> ChangeError {
    let text = e.to_string();
    let text = match alone {
        Some(i) => text
            .strip_prefix(&format!("{}[{i}].", E::SECTION))
            .map(str::to_owned)
            .unwrap_or(text),
        None => text,
    };
    ChangeError::Invalid(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_entry_error_names_its_field() {
        let entry = RouteEntry {
            pattern: "4242".into(),
            app: "echo".into(),
            staff_uri: Some("mailto:front-desk".into()),
            ..RouteEntry::default()
        };
        let err = RouteEntry::validate(vec![entry]).unwrap_err();
        let ChangeError::Invalid(text) = invalid::<RouteEntry>(err, Some(0)) else {
            panic!("not Invalid")
        };
        assert!(text.starts_with("staff_uri: "), "{text}");
    }

    #[test]
    fn trunk_passwords_are_redacted() {
        let trunk = TrunkEntry {
            name: "carrier".into(),
            allow: vec!["192.0.2.0/24".into()],
            username: Some("u".into()),
            password: Some("secret".into()),
            ..TrunkEntry::default()
        };
        let shown = trunk.redacted().to_string();
        assert!(
            !shown.contains("secret") && shown.contains("***"),
            "{shown}"
        );
    }
}
