//! The embedded SQLite store.
//!
//! One writer connection and a few read-only connections share a file in
//! WAL mode, so reads never wait for writes. rusqlite rather than sqlx: a
//! point read takes SQLite microseconds, so the cost that matters is how
//! the query reaches its connection, and rusqlite leaves that to us.
//!
//! - A read of one user by id runs on the calling worker thread, on
//!   whichever reader is free: a lookup by primary key in the page cache
//!   costs less than handing it to another thread and back. Only when every
//!   reader is busy does it wait its turn on a blocking thread.
//! - A page of the list, up to 500 rows, runs on a blocking thread, so a
//!   long scan never holds up a worker.
//! - Writes go to the single writer thread of [`writer`], which commits the
//!   writes that wait together in one transaction.
//!
//! Two rules keep the file healthy under load. There is a single writer,
//! because several writer connections only contend for SQLite's one write
//! lock and run slower. And every write statement is stepped to completion
//! (no `INSERT ... RETURNING` read for its first row): an unfinished write
//! statement keeps SQLite from checkpointing, and the WAL file then grows
//! without bound.
//!
//! Durability: `synchronous = NORMAL` in WAL mode makes a commit survive a
//! crash of the process (the kernel holds the written pages), though not a
//! power cut; see the README's Limitations.

mod writer;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, TryLockError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, anyhow};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use self::writer::Writer;
use super::{StoreError, UserStore};
use crate::users::{Cursor, NewUser, Page, PageRequest, User, UserChanges, UserId};

/// Schema changes, applied in order; `PRAGMA user_version` counts how many a
/// database file has had.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_create_users.sql")];

/// How long a connection waits for a lock held by another before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL file is truncated back to this size after a checkpoint, so a
/// burst of writes does not leave a large file behind.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

const SELECT_USER: &str = "SELECT id, name, email, created_at, updated_at FROM users WHERE id = ?1";

/// A users store in a SQLite file. Cloning it is cheap: clones share the
/// connections.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Connections>,
}

/// The connections of one database file.
struct Connections {
    /// Read-only connections; `None` once the store is closed.
    readers: Box<[Mutex<Option<Connection>>]>,
    /// Where the next search for a free reader starts, so that reads
    /// spread over the connections and their page caches stay warm alike.
    next_reader: AtomicUsize,
    writer: Writer,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its folders if
    /// needed, and brings its schema up to date.
    ///
    /// `readers` read-only connections are opened beside the writer (at
    /// least one).
    ///
    /// # Errors
    ///
    /// Fails when the folder cannot be created, the file cannot be opened or
    /// is not a database, or the schema is newer than this binary knows.
    pub fn open(path: &Path, readers: usize) -> anyhow::Result<Self> {
        if let Some(folder) = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty())
        {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("failed to create folder {}", folder.display()))?;
        }
        ensure_folder_writable(path)?;

        let new_file = !path.exists();
        let mut writer = Connection::open(path)?;
        configure_writer(&writer, new_file)?;
        migrate(&mut writer)?;
        if new_file {
            writer.pragma_update(None, "synchronous", "NORMAL")?;
        }

        // Readers open after the writer has switched the file to WAL mode
        // and created it, so read-only opening cannot fail on a new file.
        let readers = (0..readers.max(1))
            .map(|_| open_reader(path).map(|conn| Mutex::new(Some(conn))))
            .collect::<rusqlite::Result<_>>()?;
        let writer = Writer::start(writer).context("failed to start the writer thread")?;

        Ok(Self {
            shared: Arc::new(Connections {
                readers,
                next_reader: AtomicUsize::new(0),
                writer,
                path: path.to_owned(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs `work` on the writer thread, answering once it is committed.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.shared.writer.write(work).await
    }

    /// Runs `query` on a reader, on a blocking thread, where waiting for
    /// the connection and for SQLite itself does not stall the async
    /// workers.
    async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || query(reader(&shared.wait_for_reader())?))
            .await
            .map_err(|error| StoreError::Database(anyhow!(error).context("database task failed")))?
    }

    /// Runs a short `query` right here if a reader is free, and otherwise
    /// as [`Self::read`] does.
    async fn read_now<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // In a step of its own, so that no lock guard lives in this future.
        match self.shared.try_read(query) {
            Ok(answer) => answer,
            Err(query) => self.read(query).await,
        }
    }
}

impl Connections {
    /// The next reader, once it is free.
    fn wait_for_reader(&self) -> MutexGuard<'_, Option<Connection>> {
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        // A panic while a reader was held leaves it usable: a read has
        // nothing to undo.
        self.readers[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `query` on a reader that nobody holds, or gives it back if
    /// every reader is busy.
    fn try_read<T, F>(&self, query: F) -> Result<Result<T, StoreError>, F>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        match self.free_reader() {
            Some(slot) => Ok(reader(&slot).and_then(query)),
            None => Err(query),
        }
    }

    /// A reader that nobody holds, if there is one.
    fn free_reader(&self) -> Option<MutexGuard<'_, Option<Connection>>> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        (0..self.readers.len()).find_map(|offset| {
            match self.readers[(start + offset) % self.readers.len()].try_lock() {
                Ok(conn) => Some(conn),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        })
    }
}

/// The connection a reader slot holds, unless the store is closed.
fn reader(slot: &Option<Connection>) -> Result<&Connection, StoreError> {
    slot.as_ref()
        .ok_or_else(|| StoreError::Database(anyhow!("the database is closed")))
}

impl UserStore for SqliteStore {
    async fn create(&self, user: NewUser) -> Result<User, StoreError> {
        self.write(move |conn| {
            let now = now();
            let stamp = format_timestamp(now)?;
            conn.prepare_cached(
                "INSERT INTO users (name, email, email_key, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )?
            .execute(params![
                user.name.as_str(),
                user.email.as_str(),
                user.email.key(),
                stamp
            ])
            .map_err(write_error)?;

            Ok(User {
                id: UserId::from_stored(conn.last_insert_rowid()),
                name: user.name.as_str().to_owned(),
                email: user.email.as_str().to_owned(),
                created_at: now,
                updated_at: now,
            })
        })
        .await
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.read_now(move |conn| {
            let user = conn
                .prepare_cached(SELECT_USER)?
                .query_row([id.get()], read_user)
                .optional()?;
            Ok(user)
        })
        .await
    }

    async fn list(&self, page: PageRequest) -> Result<Page, StoreError> {
        self.read(move |conn| {
            let after = page.cursor.map_or(i64::MAX, |cursor| cursor.after.get());

            // One row beyond the page tells whether another page follows.
            let mut users = conn
                .prepare_cached(
                    "SELECT id, name, email, created_at, updated_at FROM users
                     WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
                )?
                .query_map(params![after, page.limit + 1], read_user)?
                .collect::<rusqlite::Result<Vec<_>>>()?;

            let next = if users.len() > page.limit as usize {
                users.truncate(page.limit as usize);
                users.last().map(|last| Cursor { after: last.id })
            } else {
                None
            };
            Ok(Page { users, next })
        })
        .await
    }

    async fn update(&self, id: UserId, changes: UserChanges) -> Result<Option<User>, StoreError> {
        self.write(move |conn| {
            let stamp = format_timestamp(now())?;
            let name = changes.name.as_ref().map(|name| name.as_str());
            let email = changes.email.as_ref().map(|email| email.as_str());
            let email_key = changes.email.as_ref().map(|email| email.key());

            // The read back runs in the writer's transaction, so the answer
            // is the row this write produced and not a later one.
            let changed = conn
                .prepare_cached(
                    "UPDATE users SET name = coalesce(?1, name), email = coalesce(?2, email),
                     email_key = coalesce(?3, email_key), updated_at = ?4 WHERE id = ?5",
                )?
                .execute(params![name, email, email_key, stamp, id.get()])
                .map_err(write_error)?;
            if changed == 0 {
                return Ok(None);
            }
            let user = conn
                .prepare_cached(SELECT_USER)?
                .query_row([id.get()], read_user)?;
            Ok(Some(user))
        })
        .await
    }

    async fn delete(&self, id: UserId) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute([id.get()])?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read_now(|conn| {
            // Reads the schema page, so the file itself must answer.
            conn.prepare_cached("SELECT count(*) FROM sqlite_schema")?
                .query_row([], |row| row.get::<_, i64>(0))?;
            Ok(())
        })
        .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Readers first, so that the writer is the last connection: only
        // the last one to close deletes the WAL and shared-memory files.
        for slot in &self.shared.readers {
            let taken = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(conn) = taken {
                conn.close().map_err(|(_, error)| error)?;
            }
        }
        self.shared.writer.close().await
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Database(error.into())
    }
}

/// Tells a unique-email violation apart from other write failures.
fn write_error(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::DuplicateEmail
        }
        _ => error.into(),
    }
}

/// Fails unless a file can be created beside the database: SQLite creates
/// its WAL and shared-memory files there, and without that check a folder
/// the service cannot write shows up later as a puzzling "readonly
/// database" error.
fn ensure_folder_writable(path: &Path) -> anyhow::Result<()> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let probe = folder.join(format!(".write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .with_context(|| {
            format!(
                "folder {} is not writable, and SQLite keeps its -wal and -shm files beside the \
                 database",
                folder.display()
            )
        })?;
    // A probe that cannot be removed is harmless; the check has passed.
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Sets the writer up; on a `new_file`, without syncing to disk until the
/// caller turns `synchronous` back to `NORMAL` after the migrations.
fn configure_writer(conn: &Connection, new_file: bool) -> anyhow::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Set before the switch to WAL, which is itself a write. Creating a
    // file otherwise costs five syncs (journal, folder, file, WAL, folder),
    // most of a new start-up; a power cut before the first checkpoint
    // can then cost only a file that holds no user yet. A process crash
    // loses nothing either way: the written pages are the kernel's.
    let synchronous = if new_file { "OFF" } else { "NORMAL" };
    conn.pragma_update(None, "synchronous", synchronous)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    anyhow::ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "the database refused WAL mode ({mode})"
    );
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
    Ok(())
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let applied = usize::try_from(applied).context("the schema version is negative")?;
    anyhow::ensure!(
        applied <= MIGRATIONS.len(),
        "the database schema is at version {applied}, newer than this binary's {}",
        MIGRATIONS.len()
    );

    for (version, script) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(script)
            .with_context(|| format!("migration {} failed", version + 1))?;
        tx.pragma_update(None, "user_version", i64::try_from(version + 1)?)?;
    }
    tx.commit()?;
    Ok(())
}

/// The current time, to the microsecond, which is what the store keeps.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let micros = now.nanosecond() / 1_000 * 1_000;
    now.replace_nanosecond(micros).unwrap_or(now)
}

fn format_timestamp(at: OffsetDateTime) -> Result<String, StoreError> {
    at.format(&Rfc3339)
        .map_err(|error| StoreError::Database(error.into()))
}

fn read_user(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId::from_stored(row.get(0)?),
        name: row.get(1)?,
        email: row.get(2)?,
        created_at: read_timestamp(row, 3)?,
        updated_at: read_timestamp(row, 4)?,
    })
}

fn read_timestamp(row: &Row<'_>, column: usize) -> rusqlite::Result<OffsetDateTime> {
    let text: String = row.get(column)?;
    OffsetDateTime::parse(&text, &Rfc3339).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, error.into())
    })
}
