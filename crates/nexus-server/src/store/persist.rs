//! The metadata journal of the embedded store: session and code records in a redb file under
//! `DATA_DIR`, written by one writer thread that commits everything queued in one transaction
//! (group commit). Durable writes (create, join, leave, claim, renew, code creation, cursor
//! reservations) wait for an fsync'd commit; batched writes (sliding expiry, `lastSeenAt`) ride on
//! the next commit without one. Message bodies are never written here (SPEC §1 "Persistence").

use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use super::{CodeRecord, SessionRecord, StoreError, StoreResult};

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const CODES: TableDefinition<&str, &[u8]> = TableDefinition::new("codes");

/// File name of the database inside `DATA_DIR`.
pub const DB_FILE: &str = "nexus.redb";

pub(crate) enum Op {
    PutSession(String, Vec<u8>),
    DeleteSession(String),
    PutCode(String, Vec<u8>),
    DeleteCode(String),
}

impl Op {
    pub fn put_session(record: &SessionRecord) -> StoreResult<Op> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Op::PutSession(record.id.as_str().to_owned(), bytes))
    }

    pub fn put_code(record: &CodeRecord) -> StoreResult<Op> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Op::PutCode(record.code.as_str().to_owned(), bytes))
    }
}

struct Job {
    ops: Vec<Op>,
    ack: Option<oneshot::Sender<Result<(), String>>>,
}

/// What the journal held at start-up.
pub(crate) struct Loaded {
    pub sessions: Vec<SessionRecord>,
    pub codes: Vec<CodeRecord>,
}

/// A queued durable write.
pub(crate) struct Durable(oneshot::Receiver<Result<(), String>>);

impl Durable {
    /// Returns once the write (and everything queued before it) is on disk.
    pub async fn done(self) -> StoreResult<()> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Database(e)),
            Err(_) => Err(StoreError::Closed),
        }
    }
}

pub(crate) struct Journal {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and reads back what it holds.
    pub fn open(dir: &Path) -> StoreResult<(Journal, Loaded)> {
        private_dir(dir)?;
        let path = dir.join(DB_FILE);
        let db = Database::create(&path).map_err(db_err)?;
        private_file(&path)?;
        {
            let txn = db.begin_write().map_err(db_err)?;
            txn.open_table(SESSIONS).map_err(db_err)?;
            txn.open_table(CODES).map_err(db_err)?;
            txn.commit().map_err(db_err)?;
        }
        let loaded = {
            let txn = db.begin_read().map_err(db_err)?;
            let mut sessions = Vec::new();
            for row in txn
                .open_table(SESSIONS)
                .map_err(db_err)?
                .iter()
                .map_err(db_err)?
            {
                let (_, v) = row.map_err(db_err)?;
                sessions.push(
                    serde_json::from_slice(v.value())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                );
            }
            let mut codes = Vec::new();
            for row in txn
                .open_table(CODES)
                .map_err(db_err)?
                .iter()
                .map_err(db_err)?
            {
                let (_, v) = row.map_err(db_err)?;
                codes.push(
                    serde_json::from_slice(v.value())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                );
            }
            Loaded { sessions, codes }
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("nexus-journal".into())
            .spawn(move || writer(db, rx))
            .map_err(db_err)?;
        Ok((
            Journal {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            },
            loaded,
        ))
    }

    fn submit(&self, job: Job) -> StoreResult<()> {
        let guard = self.tx.lock().map_err(|_| StoreError::Closed)?;
        match guard.as_ref() {
            Some(tx) => tx.send(job).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        }
    }

    /// Queues `ops` for a durable commit. Queue while holding the lock of the data written (so
    /// commits keep the order of changes); await [`Durable::done`] after releasing it.
    pub fn write(&self, ops: Vec<Op>) -> StoreResult<Durable> {
        let (ack, done) = oneshot::channel();
        self.submit(Job {
            ops,
            ack: Some(ack),
        })?;
        Ok(Durable(done))
    }

    /// Queues `ops` for the next commit without waiting for it.
    pub fn write_later(&self, ops: Vec<Op>) -> StoreResult<()> {
        self.submit(Job { ops, ack: None })
    }

    /// Stops the writer after it has committed everything queued.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The data folder holds session keys: create it 0700 (and tighten an existing one).
fn private_dir(dir: &Path) -> StoreResult<()> {
    let fail = |e: std::io::Error| db_err(format!("cannot create {}: {e}", dir.display()));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir).map_err(fail)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    #[cfg(not(unix))]
    builder.create(dir).map_err(fail)?;
    Ok(())
}

/// The database file is readable by its owner only.
fn private_file(path: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| db_err(format!("cannot restrict {}: {e}", path.display())))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn writer(db: Database, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while let Ok(more) = rx.try_recv() {
            jobs.push(more);
        }
        let durable = jobs.iter().any(|j| j.ack.is_some());
        let result = commit(&db, &jobs, durable).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "journal commit failed");
        }
        for job in jobs {
            if let Some(ack) = job.ack {
                let _ = ack.send(result.clone());
            }
        }
    }
    // Make sure batched (non-durable) commits reach the disk before exiting.
    if let Err(e) = commit(&db, &[], true) {
        tracing::error!(error = %e, "final journal commit failed");
    }
}

fn commit(db: &Database, jobs: &[Job], durable: bool) -> StoreResult<()> {
    let mut txn = db.begin_write().map_err(db_err)?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })
    .map_err(db_err)?;
    {
        let mut sessions = txn.open_table(SESSIONS).map_err(db_err)?;
        let mut codes = txn.open_table(CODES).map_err(db_err)?;
        for op in jobs.iter().flat_map(|j| &j.ops) {
            match op {
                Op::PutSession(k, v) => {
                    sessions.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
                }
                Op::DeleteSession(k) => {
                    sessions.remove(k.as_str()).map_err(db_err)?;
                }
                Op::PutCode(k, v) => {
                    codes.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
                }
                Op::DeleteCode(k) => {
                    codes.remove(k.as_str()).map_err(db_err)?;
                }
            }
        }
    }
    txn.commit().map_err(db_err)
}

impl Drop for Journal {
    /// Lets the writer commit what is queued and release the database file.
    fn drop(&mut self) {
        self.close();
    }
}
