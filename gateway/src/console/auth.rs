//! Staff accounts, sessions, CSRF tokens and the sign-in rate limit.
//!
//! Accounts and sessions live in the store's console state (kinds `user`
//! and `session`). A session cookie holds 32 random bytes; the store keeps
//! only their SHA-256, so a copy of the database opens no session.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::HeaderMap;
use echo_audit::{AuditStore, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// State kind of accounts.
pub const USER_KIND: &str = "user";
/// State kind of sessions.
const SESSION_KIND: &str = "session";
/// The session cookie.
pub const SESSION_COOKIE: &str = "echo_session";
/// The cookie that carries the sign-in form's CSRF token (double submit).
pub const LOGIN_CSRF_COOKIE: &str = "echo_login_csrf";
/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// What a staff account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads calls and transcripts.
    Viewer,
    /// Also manages routes, trunks and accounts, and reads the access log.
    Admin,
}

impl Role {
    /// The word used in forms, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "viewer" => Ok(Role::Viewer),
            "admin" => Ok(Role::Admin),
            other => Err(format!("role {other:?} is not one of: viewer, admin")),
        }
    }
}

/// A stored account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    /// The PHC string of the argon2id hash.
    pub hash: String,
    /// The role.
    pub role: Role,
    /// When it was created (µs since epoch).
    pub created_unix_us: i64,
}

/// An account as the API shows it (no hash).
#[derive(Clone, Debug, Serialize)]
pub struct AccountView {
    /// The username.
    pub name: String,
    /// The role.
    pub role: Role,
    /// When it was created (µs since epoch).
    pub created_unix_us: i64,
}

/// Why an account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username has characters we do not accept.
    #[error("username must be 1–64 letters, digits, '.', '-', '_' or '@'")]
    BadName,
    /// Too short.
    #[error("password must be at least {MIN_PASSWORD_LEN} characters")]
    ShortPassword,
    /// The name is taken.
    #[error("an account named {0:?} already exists")]
    Exists(String),
    /// No such account.
    #[error("no account named {0:?}")]
    Unknown(String),
    /// Removing or demoting it would leave no admin.
    #[error("this is the last admin account; make another admin first")]
    LastAdmin,
    /// The store failed.
    #[error("the database is unavailable: {0}")]
    Store(#[from] StoreError),
    /// Hashing failed (should not happen).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks a username.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes).
/// Slow on purpose: call it off the async threads.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// [`hash_password`] on a blocking thread.
async fn hash_off_thread(password: &str) -> Result<String, AccountError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so a wrong
/// username costs as much time as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

/// Reads an account.
pub async fn account(store: &dyn AuditStore, name: &str) -> Result<Option<Account>, StoreError> {
    Ok(store
        .state_get(USER_KIND, name)
        .await?
        .and_then(|e| serde_json::from_value(e.value).ok()))
}

/// Every account, by name.
pub async fn accounts(store: &dyn AuditStore) -> Result<Vec<AccountView>, StoreError> {
    Ok(store
        .state_list(USER_KIND)
        .await?
        .into_iter()
        .filter_map(|e| {
            let a: Account = serde_json::from_value(e.value).ok()?;
            Some(AccountView {
                name: e.key,
                role: a.role,
                created_unix_us: a.created_unix_us,
            })
        })
        .collect())
}

/// Creates an account (`replace`: or sets a new password and role on an
/// existing one).
pub async fn create_account(
    store: &dyn AuditStore,
    name: &str,
    password: &str,
    role: Role,
    replace: bool,
) -> Result<(), AccountError> {
    if !valid_name(name) {
        return Err(AccountError::BadName);
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AccountError::ShortPassword);
    }
    let existing = account(store, name).await?;
    if existing.is_some() && !replace {
        return Err(AccountError::Exists(name.to_owned()));
    }
    if existing.as_ref().is_some_and(|a| a.role == Role::Admin) && role != Role::Admin {
        ensure_other_admin(store, name).await?;
    }
    let hash = hash_off_thread(password).await?;
    let account = Account {
        hash,
        role,
        created_unix_us: existing
            .map(|a| a.created_unix_us)
            .unwrap_or_else(crate::audit_log::now_unix_us),
    };
    save_account(store, name, &account).await?;
    Ok(())
}

async fn save_account(
    store: &dyn AuditStore,
    name: &str,
    account: &Account,
) -> Result<(), StoreError> {
    let value = serde_json::to_value(account).unwrap_or_default();
    store.state_put(USER_KIND, name, &value).await
}

/// Changes an account's role and, if given, its password.
pub async fn update_account(
    store: &dyn AuditStore,
    name: &str,
    role: Role,
    password: Option<&str>,
) -> Result<(), AccountError> {
    let Some(mut account) = account(store, name).await? else {
        return Err(AccountError::Unknown(name.to_owned()));
    };
    if account.role == Role::Admin && role != Role::Admin {
        ensure_other_admin(store, name).await?;
    }
    if let Some(password) = password {
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(AccountError::ShortPassword);
        }
        account.hash = hash_off_thread(password).await?;
    }
    account.role = role;
    save_account(store, name, &account).await?;
    if password.is_some() {
        end_sessions_of(store, name).await?;
    }
    Ok(())
}

/// Deletes an account and its sessions.
pub async fn delete_account(store: &dyn AuditStore, name: &str) -> Result<(), AccountError> {
    let Some(account) = account(store, name).await? else {
        return Err(AccountError::Unknown(name.to_owned()));
    };
    if account.role == Role::Admin {
        ensure_other_admin(store, name).await?;
    }
    store.state_delete(USER_KIND, name).await?;
    end_sessions_of(store, name).await?;
    Ok(())
}

async fn ensure_other_admin(store: &dyn AuditStore, name: &str) -> Result<(), AccountError> {
    let others = accounts(store)
        .await?
        .into_iter()
        .any(|a| a.role == Role::Admin && a.name != name);
    if others {
        Ok(())
    } else {
        Err(AccountError::LastAdmin)
    }
}

/// A stored session.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SessionRecord {
    user: String,
    csrf: String,
    created_unix_us: i64,
    expires_unix_us: i64,
    source: String,
}

/// A signed-in staff member, as each request sees them.
#[derive(Clone, Debug)]
pub struct Staff {
    /// Username.
    pub name: String,
    /// Role (read from the account on every request, so changes apply at once).
    pub role: Role,
    /// The session's CSRF token.
    pub csrf: String,
    /// Where the request came from.
    pub source: IpAddr,
    session_key: String,
}

impl Staff {
    /// Whether this staff member is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Compares a submitted CSRF token in constant time.
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), submitted.as_bytes())
    }
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn session_key(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random token (32 bytes, hex).
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Signs in: checks the password, stores a new session, and returns the
/// cookie token and the staff member. `Ok(None)`: wrong name or password.
pub async fn sign_in(
    store: &dyn AuditStore,
    name: &str,
    password: &str,
    source: IpAddr,
) -> Result<Option<(String, Staff)>, StoreError> {
    let account = account(store, name).await?;
    let phc = account.as_ref().map(|a| a.hash.clone());
    let password = password.to_owned();
    // The decoy is hashed once, on first use: on this blocking thread too.
    let ok = tokio::task::spawn_blocking(move || {
        verify_password(&password, phc.as_deref().unwrap_or_else(|| decoy_hash()))
    })
    .await
    .unwrap_or(false);
    let Some(account) = account.filter(|_| ok) else {
        return Ok(None);
    };
    let token = random_token();
    let now = crate::audit_log::now_unix_us();
    let record = SessionRecord {
        user: name.to_owned(),
        csrf: random_token(),
        created_unix_us: now,
        expires_unix_us: now + SESSION_LIFETIME.as_micros() as i64,
        source: source.to_string(),
    };
    let key = session_key(&token);
    store
        .state_put(
            SESSION_KIND,
            &key,
            &serde_json::to_value(&record).unwrap_or_default(),
        )
        .await?;
    purge_expired(store, now).await;
    Ok(Some((
        token,
        Staff {
            name: name.to_owned(),
            role: account.role,
            csrf: record.csrf,
            source,
            session_key: key,
        },
    )))
}

/// The staff member a session token belongs to, if the session is live and
/// the account still exists.
pub async fn session(
    store: &dyn AuditStore,
    token: &str,
    source: IpAddr,
) -> Result<Option<Staff>, StoreError> {
    let key = session_key(token);
    let Some(entry) = store.state_get(SESSION_KIND, &key).await? else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_value::<SessionRecord>(entry.value) else {
        return Ok(None);
    };
    if record.expires_unix_us <= crate::audit_log::now_unix_us() {
        store.state_delete(SESSION_KIND, &key).await?;
        return Ok(None);
    }
    let Some(account) = account(store, &record.user).await? else {
        return Ok(None);
    };
    Ok(Some(Staff {
        name: record.user,
        role: account.role,
        csrf: record.csrf,
        source,
        session_key: key,
    }))
}

/// Ends one session.
pub async fn sign_out(store: &dyn AuditStore, staff: &Staff) -> Result<(), StoreError> {
    store.state_delete(SESSION_KIND, &staff.session_key).await?;
    Ok(())
}

async fn end_sessions_of(store: &dyn AuditStore, name: &str) -> Result<(), StoreError> {
    for entry in store.state_list(SESSION_KIND).await? {
        let user = entry.value.get("user").and_then(|u| u.as_str());
        if user == Some(name) {
            store.state_delete(SESSION_KIND, &entry.key).await?;
        }
    }
    Ok(())
}

async fn purge_expired(store: &dyn AuditStore, now: i64) {
    let Ok(entries) = store.state_list(SESSION_KIND).await else {
        return;
    };
    for entry in entries {
        let expires = entry.value.get("expires_unix_us").and_then(|v| v.as_i64());
        if expires.is_none_or(|t| t <= now) {
            let _ = store.state_delete(SESSION_KIND, &entry.key).await;
        }
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure (browsers accept
/// Secure cookies from http://localhost and 127.0.0.1; anywhere else, put
/// the console behind HTTPS).
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>) -> String {
    let age = match max_age {
        Some(d) => format!("; Max-Age={}", d.as_secs()),
        None => String::new(),
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Secure{age}")
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0")
}

/// Failed sign-ins allowed per source address, and per username, in
/// [`LOGIN_WINDOW`].
pub const LOGIN_MAX_FAILURES: usize = 5;
/// The sliding window of the sign-in limit.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);

/// Counts failed sign-ins per key (`ip:…`, `user:…`) in a sliding window.
/// Pure: the caller passes the time, so tests run in virtual time.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: HashMap<String, VecDeque<Instant>>,
}

impl LoginLimiter {
    /// `Err(wait)` if any key has used up its failures: try again after `wait`.
    pub fn check(&mut self, keys: &[String], now: Instant) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(times) = self.failures.get_mut(key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= LOGIN_WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= LOGIN_MAX_FAILURES {
                    let oldest = times[times.len() - LOGIN_MAX_FAILURES];
                    wait = wait.max(LOGIN_WINDOW - now.duration_since(oldest));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// Records a failure for every key.
    pub fn failed(&mut self, keys: &[String], now: Instant) {
        for key in keys {
            self.failures.entry(key.clone()).or_default().push_back(now);
        }
        if self.failures.len() > 10_000 {
            self.failures.retain(|_, t| {
                t.back()
                    .is_some_and(|t| now.duration_since(*t) < LOGIN_WINDOW)
            });
        }
    }

    /// Forgets the failures of a username after a successful sign-in (the
    /// source address keeps its count).
    pub fn succeeded(&mut self, user_key: &str) {
        self.failures.remove(user_key);
    }
}

/// The limiter keys of a sign-in attempt.
pub fn login_keys(source: IpAddr, name: &str) -> [String; 2] {
    [
        format!("ip:{}", source.to_canonical()),
        format!("user:{}", name.to_lowercase()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct hors", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn the_limiter_refuses_the_sixth_failure_until_the_window_slides() {
        let mut limiter = LoginLimiter::default();
        let t0 = Instant::now();
        let keys = login_keys("192.0.2.7".parse().unwrap(), "Alice");
        for i in 0..LOGIN_MAX_FAILURES {
            assert_eq!(limiter.check(&keys, t0), Ok(()), "attempt {i}");
            limiter.failed(&keys, t0 + Duration::from_secs(i as u64));
        }
        let wait = limiter
            .check(&keys, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, LOGIN_WINDOW - Duration::from_secs(10));
        // Another username from the same address is refused too.
        let other = login_keys("192.0.2.7".parse().unwrap(), "bob");
        assert!(limiter.check(&other, t0 + Duration::from_secs(10)).is_err());
        // Once the oldest failure leaves the window, one more try is allowed.
        assert_eq!(limiter.check(&keys, t0 + LOGIN_WINDOW), Ok(()));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "a=1; echo_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        let set = set_cookie(SESSION_COOKIE, "abc", None);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
    }

    #[test]
    fn names_and_roles_parse() {
        assert!(valid_name("dr.smith@clinic"));
        assert!(!valid_name("two words"));
        assert!(!valid_name(""));
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
