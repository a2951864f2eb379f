//! The one connection that writes, on a thread of its own, committing the
//! writes that wait together in one transaction.
//!
//! Handlers send their writes here as jobs. The thread takes every job that
//! is waiting (up to [`MAX_BATCH`]), runs them in order in one transaction,
//! and answers each only after the commit, so an answer still means the
//! write is stored. Under load one commit then serves many writes, and the
//! cost of a commit (the WAL frames of every page it touched, and the
//! checkpoints those frames lead to) is shared instead of paid per request.
//! A lone job is an ordinary transaction and waits for nothing.
//!
//! Jobs of one batch stay independent. Each is a single write statement,
//! possibly followed by reads, and SQLite undoes a failing statement (a
//! duplicate email) without touching the rest of the transaction. An error
//! that makes SQLite abandon the whole transaction (I/O, a full disk) fails
//! every job that ran in it, and the batch goes on in a new one.
//!
//! A thread rather than a blocking task per write: the writes queue while
//! the thread commits, which is what makes the batches, and the connection
//! never needs a lock.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::mpsc,
    thread,
};

use anyhow::anyhow;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::storage::StoreError;

/// The most writes committed together. Large enough that a commit is rare
/// under any load this service meets; small enough that the first write of
/// a batch never waits long for the last.
const MAX_BATCH: usize = 256;

/// A write to run in the current transaction. It returns how to answer its
/// caller once the transaction's fate is known.
type Work = Box<dyn FnOnce(&Connection) -> Answer + Send>;

/// Answers a write's caller: with the write's own result if its
/// transaction committed, with the commit's error if not.
type Answer = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;

enum Job {
    Write(Work),
    /// Checkpoint, close the connection and stop, answering when done.
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// The handle to the writer thread; the thread stops when the handle is
/// closed or dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Moves `conn` to a new writer thread.
    ///
    /// # Errors
    ///
    /// Fails when the thread cannot be started.
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || serve(conn, &queue))?;
        Ok(Self { jobs })
    }

    /// Runs `work` in the writer's transaction and returns its result once
    /// that transaction has committed.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let work: Work = Box::new(move |conn| {
            let outcome = work(conn);
            Box::new(move |commit| {
                let outcome = commit.map_err(commit_error).and(outcome);
                // The caller may have gone (a timed-out request); the write
                // stands all the same.
                let _ = answer.send(outcome);
            })
        });

        self.jobs.send(Job::Write(work)).map_err(|_| stopped())?;
        answered.await.map_err(|_| abandoned())?
    }

    /// Folds the WAL into the main file, closes the connection and stops
    /// the thread, after the writes already queued.
    pub(super) async fn close(&self) -> Result<(), StoreError> {
        let (answer, answered) = oneshot::channel();
        self.jobs.send(Job::Close(answer)).map_err(|_| stopped())?;
        answered.await.map_err(|_| abandoned())?
    }
}

/// The writer thread: batches until closed, or until every handle is gone.
fn serve(conn: Connection, queue: &mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(job) = queue.recv() {
        let mut close = None;
        match job {
            Job::Write(work) => batch.push(work),
            Job::Close(answer) => close = Some(answer),
        }
        while close.is_none() && batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Job::Write(work)) => batch.push(work),
                Ok(Job::Close(answer)) => close = Some(answer),
                Err(_) => break,
            }
        }

        commit_batch(&conn, &mut batch);

        if let Some(answer) = close {
            let _ = answer.send(checkpoint_and_close(conn));
            return;
        }
    }
}

/// Runs the batch in as few transactions as it takes, answering every job.
fn commit_batch(conn: &Connection, batch: &mut Vec<Work>) {
    if batch.is_empty() {
        return;
    }
    let mut waiting: Vec<Answer> = Vec::with_capacity(batch.len());
    // Should the transaction not begin (the file locked by another
    // process past the busy timeout), each job commits on its own.
    let mut in_transaction = begin(conn);

    for work in batch.drain(..) {
        // A panicking job drops its answer, which its caller sees as an
        // abandoned write; the thread and the batch carry on.
        let Ok(answer) = catch_unwind(AssertUnwindSafe(|| work(conn))) else {
            continue;
        };
        if !in_transaction {
            answer(Ok(()));
        } else if conn.is_autocommit() {
            // SQLite abandoned the transaction: what ran in it is gone.
            let error = rolled_back();
            for earlier in waiting.drain(..) {
                earlier(Err(&error));
            }
            answer(Err(&error));
            in_transaction = begin(conn);
        } else {
            waiting.push(answer);
        }
    }

    if in_transaction {
        let committed = conn.prepare_cached("COMMIT").and_then(|mut commit| {
            commit.execute([])?;
            Ok(())
        });
        if committed.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for answer in waiting {
            answer(committed.as_ref().map(|_| ()));
        }
    }
}

/// Begins the batch's transaction; `false` if it could not begin.
fn begin(conn: &Connection) -> bool {
    let began = conn
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut begin| begin.execute([]));
    if let Err(error) = &began {
        tracing::warn!(%error, "cannot begin a write transaction; committing writes one by one");
    }
    began.is_ok()
}

/// Moves every committed page into the main file and empties the WAL, so
/// the file is complete on its own, then closes the connection.
fn checkpoint_and_close(conn: Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    conn.close().map_err(|(_, error)| error)?;
    Ok(())
}

fn rolled_back() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some("the write transaction was rolled back".to_owned()),
    )
}

fn commit_error(error: &rusqlite::Error) -> StoreError {
    StoreError::Database(anyhow!("the write was not committed: {error}"))
}

fn stopped() -> StoreError {
    StoreError::Database(anyhow!("the database writer has stopped"))
}

fn abandoned() -> StoreError {
    StoreError::Database(anyhow!("the database writer abandoned the write"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::params;

    use super::*;

    /// A writer on a new file with one table of unique names, and the
    /// file's folder.
    fn writer() -> (Writer, tempfile::TempDir) {
        let folder = tempfile::tempdir().expect("temporary folder");
        let conn = Connection::open(folder.path().join("test.db")).expect("database opens");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (name TEXT UNIQUE)")
            .expect("table created");
        (Writer::start(conn).expect("writer starts"), folder)
    }

    fn insert(name: &'static str) -> impl FnOnce(&Connection) -> Result<(), StoreError> {
        move |conn| {
            conn.execute("INSERT INTO t (name) VALUES (?1)", params![name])?;
            Ok(())
        }
    }

    #[tokio::test]
    async fn jobs_of_one_batch_fail_alone_and_the_others_commit() {
        let (writer, folder) = writer();
        writer.write(insert("taken")).await.expect("first insert");

        // The slow first job holds the thread while the others queue, so
        // they run as one batch.
        let slow = writer.write(|conn| {
            std::thread::sleep(Duration::from_millis(100));
            insert("slow")(conn)
        });
        let (slow, duplicate, fresh, panicked, last) = tokio::join!(
            slow,
            writer.write(insert("taken")),
            writer.write(insert("fresh")),
            writer.write(|_| -> Result<(), StoreError> { panic!("a failing job") }),
            writer.write(insert("last")),
        );

        assert!(slow.is_ok(), "the slow job: {slow:?}");
        assert!(duplicate.is_err(), "the duplicate was refused");
        assert!(fresh.is_ok(), "a job after a failed one: {fresh:?}");
        assert!(panicked.is_err(), "the panicking job is answered");
        assert!(last.is_ok(), "a job after a panic: {last:?}");
        writer.close().await.expect("writer closes");
        let conn = Connection::open(folder.path().join("test.db")).expect("reopens");
        let names: Vec<String> = conn
            .prepare("SELECT name FROM t ORDER BY name")
            .and_then(|mut rows| rows.query_map([], |row| row.get(0))?.collect())
            .expect("names read");
        assert_eq!(names, ["fresh", "last", "slow", "taken"]);
    }

    #[tokio::test]
    async fn closing_folds_the_wal_into_the_file_and_refuses_later_writes() {
        let (writer, folder) = writer();
        writer.write(insert("kept")).await.expect("insert");

        writer.close().await.expect("writer closes");

        let wal = folder.path().join("test.db-wal");
        assert!(!wal.exists(), "the last connection removed the WAL");
        let refused = writer.write(insert("late")).await;
        assert!(refused.is_err(), "a write after close is refused");
    }
}
