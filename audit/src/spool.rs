//! The local append-only spool: records that could not reach the database,
//! one JSON document per line, fsync'd per batch, replayed in order.

use crate::record::AuditRecord;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Errors of the spool file.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Reading, writing or syncing the file failed.
    #[error("spool {path}: {source}")]
    Io {
        /// The spool file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A record did not serialise.
    #[error("spool: encoding a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// An append-only file of records waiting for the database.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: File,
}

impl Spool {
    /// Opens (or creates) the spool at `path`. A last line cut short by a
    /// crash is removed, so later appends start on a line of their own.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SpoolError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| SpoolError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.read_to_end(&mut bytes).map_err(io)?;
        if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            tracing::warn!(spool = %path.display(), cut = bytes.len() - keep, "spool: dropping a torn last line");
            file.set_len(keep as u64).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(Spool { path, file })
    }

    /// The spool's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends records and fsyncs: when this returns they survive a crash.
    pub fn append(&mut self, records: &[AuditRecord]) -> Result<(), SpoolError> {
        let mut buf = Vec::with_capacity(records.len() * 512);
        for r in records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).map_err(|e| self.io(e))?;
        self.file.sync_data().map_err(|e| self.io(e))
    }

    /// Every spooled record, in the order appended. Lines that do not parse
    /// (written by a newer version, or damaged) are logged and skipped.
    pub fn read_all(&mut self) -> Result<Vec<AuditRecord>, SpoolError> {
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
        self.file
            .read_to_string(&mut text)
            .map_err(|e| self.io(e))?;
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            match serde_json::from_str(line) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::error!(spool = %self.path.display(), line = n + 1, error = %e, "spool: skipping a line that does not parse")
                }
            }
        }
        Ok(out)
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> Result<bool, SpoolError> {
        Ok(self.file.metadata().map_err(|e| self.io(e))?.len() == 0)
    }

    /// Empties the spool after a complete replay.
    pub fn clear(&mut self) -> Result<(), SpoolError> {
        self.file.set_len(0).map_err(|e| self.io(e))?;
        self.file.sync_data().map_err(|e| self.io(e))
    }
}
