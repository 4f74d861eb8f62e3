//! Wrappers that keep callers' data and secrets out of logs (STYLE.md 11).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Personal data (a phone number, a name, a transcript): `Debug` and
/// `Display` print `<redacted N bytes>`; serde sees the value unchanged,
/// because the store and the staff API need it.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pii<T>(pub T);

impl<T> Pii<T> {
    /// The value itself: call this only where the clear text is meant to go
    /// (the database, the staff API), never into a log line.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Pii<T> {
    fn from(value: T) -> Self {
        Pii(value)
    }
}

impl From<&str> for Pii<String> {
    fn from(value: &str) -> Self {
        Pii(value.to_owned())
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A database connection string (`postgres://user:secret@host/db`,
/// `sqlite://path`). `Debug` and `Display` replace the password with `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL; no validation beyond what [`crate::connect`] does.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The full URL with its password: for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The scheme before `:` (`postgres`, `postgresql`, `sqlite`).
    pub fn scheme(&self) -> &str {
        self.0.split(':').next().unwrap_or("")
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
                None => self.0.clone(),
            },
            None => {
                // libpq also accepts ?password=…
                if let Some(i) = self.0.find("password=") {
                    let end = self.0[i..].find('&').map_or(self.0.len(), |e| i + e);
                    format!("{}password=***{}", &self.0[..i], &self.0[end..])
                } else {
                    self.0.clone()
                }
            }
        }
    }
}

impl From<&str> for DatabaseUrl {
    fn from(value: &str) -> Self {
        DatabaseUrl::new(value)
    }
}

impl From<String> for DatabaseUrl {
    fn from(value: String) -> Self {
        DatabaseUrl::new(value)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_is_redacted_in_debug_and_display() {
        let n: Pii<String> = "+41 44 123 45 67".into();
        assert_eq!(format!("{n:?} {n}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"+41 44 123 45 67\"");
    }

    #[test]
    fn database_url_hides_password() {
        let u = DatabaseUrl::new("postgres://echo:s3cret@db.local:5432/echo?sslmode=require");
        let shown = format!("{u:?} {u}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://echo:***@db.local:5432/echo?sslmode=require"));
        let q = DatabaseUrl::new("postgres://db/echo?user=a&password=s3cret&x=1");
        assert_eq!(q.redacted(), "postgres://db/echo?user=a&password=***&x=1");
        assert_eq!(
            DatabaseUrl::new("sqlite://./echo.db").redacted(),
            "sqlite://./echo.db"
        );
        assert_eq!(u.scheme(), "postgres");
    }
}
