//! Which store the trail goes to (`[audit] store`), opening it for the gateway (an [`AuditSink`]) and
//! for the `crossgate audit` commands (a [`Trail`]).
//!
//! `store = "sqlite:FILE"` (the default, `sqlite:audit.db`), `"jsonl:FILE"` (JSON lines; the older
//! `path = "FILE"` means the same), `"stdout"` (JSON lines on standard output) or
//! `"postgres://USER:PASSWORD@HOST/DB"` (PostgreSQL, one trail for many replicas; the URL is a
//! [`Secret`] and never printed).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::AuditSink;
use super::jsonl::{JsonLines, Options};
use super::lines::LinesTrail;
use super::postgres::trail::PostgresTrail;
use super::postgres::{Postgres, PostgresOptions};
use super::query::Trail;
use super::sqlite::trail::SqliteTrail;
use super::sqlite::{Sqlite, SqliteOptions};
use crate::secret::Secret;

/// Where audit records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A SQLite database.
    Sqlite(PathBuf),
    /// JSON lines in a file, rotated.
    Jsonl(PathBuf),
    /// JSON lines on standard output.
    Stdout,
    /// A PostgreSQL database, by its connection URL.
    Postgres(Secret),
}

impl Default for StoreSpec {
    fn default() -> StoreSpec {
        StoreSpec::Sqlite(PathBuf::from("audit.db"))
    }
}

impl StoreSpec {
    /// Parses a `store = "..."` value. The error never repeats a database URL (it may hold a password).
    pub fn parse(text: &str) -> Result<StoreSpec, String> {
        let forms = "use \"sqlite:FILE\", \"jsonl:FILE\", \"postgres://USER:PASSWORD@HOST/DB\" or \"stdout\"";
        let file = |rest: &str, kind: &str| {
            if rest.trim().is_empty() {
                Err(format!("`store = \"{kind}:\"` names no file; {forms}"))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        if text == "stdout" {
            Ok(StoreSpec::Stdout)
        } else if let Some(rest) = text.strip_prefix("sqlite:") {
            file(rest, "sqlite").map(StoreSpec::Sqlite)
        } else if let Some(rest) = text.strip_prefix("jsonl:") {
            file(rest, "jsonl").map(StoreSpec::Jsonl)
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let url = Secret::new(text);
            super::postgres::config(&url).map(|_| StoreSpec::Postgres(url))
        } else {
            Err(format!("`store = \"{text}\"` is not known; {forms}"))
        }
    }

    /// The file it writes, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            StoreSpec::Sqlite(p) | StoreSpec::Jsonl(p) => Some(p),
            StoreSpec::Stdout | StoreSpec::Postgres(_) => None,
        }
    }
}

/// Opens the store for the gateway, whose records carry `replica` (PostgreSQL). An error is the
/// operating system's (or the database's) own, for the caller to name the file and the fix.
pub fn open(
    spec: &StoreSpec,
    jsonl: Options,
    sqlite: SqliteOptions,
    replica: &str,
) -> std::io::Result<Arc<dyn AuditSink>> {
    Ok(match spec {
        StoreSpec::Sqlite(path) => Arc::new(Sqlite::open(path, sqlite)?),
        StoreSpec::Postgres(url) => Arc::new(Postgres::open(
            url,
            PostgresOptions { replica: replica.to_owned(), retain_days: sqlite.retain_days },
        )?),
        StoreSpec::Jsonl(path) => Arc::new(JsonLines::open(path, jsonl)?),
        StoreSpec::Stdout => Arc::new(JsonLines::stdout()),
    })
}

/// Opens the store for reading back.
pub fn trail(spec: &StoreSpec, jsonl: Options) -> Result<Box<dyn Trail>, String> {
    match spec {
        StoreSpec::Sqlite(path) => Ok(Box::new(SqliteTrail::open(path)?)),
        StoreSpec::Jsonl(path) => Ok(Box::new(LinesTrail::open(path, jsonl.keep)?)),
        StoreSpec::Postgres(url) => Ok(Box::new(PostgresTrail::open(url)?)),
        StoreSpec::Stdout => {
            Err("the audit goes to standard output (`store = \"stdout\"`), which keeps nothing to read back".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_the_rest_is_refused_clearly() {
        assert_eq!(StoreSpec::parse("sqlite:a/audit.db"), Ok(StoreSpec::Sqlite("a/audit.db".into())));
        assert_eq!(StoreSpec::parse("jsonl:audit.jsonl"), Ok(StoreSpec::Jsonl("audit.jsonl".into())));
        assert_eq!(StoreSpec::parse("stdout"), Ok(StoreSpec::Stdout));
        assert!(StoreSpec::parse("sqlite:").unwrap_err().contains("names no file"));
        assert!(StoreSpec::parse("mysql://x").unwrap_err().contains("not known"));
        let pg = StoreSpec::parse("postgres://audit:hunter2@db/audit").unwrap();
        assert!(matches!(&pg, StoreSpec::Postgres(url) if url.expose() == "postgres://audit:hunter2@db/audit"));
        assert!(!format!("{pg:?}").contains("hunter2"), "a URL's password is never shown: {pg:?}");
        let bad = StoreSpec::parse("postgres://audit:hunter2@db:notaport/audit").unwrap_err();
        assert!(bad.contains("cannot be read") && !bad.contains("hunter2"), "{bad}");
    }
}
