//! The single database writer: jobs from many requests share one transaction (group commit).
//! A job's caller hears back only after the batch holding it is committed, never before.

use super::StorageError;
use rusqlite::Connection;
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Most jobs folded into one commit; bounds the latency a large burst adds to its first job.
const MAX_BATCH: usize = 512;

type Outcome = Box<dyn Any + Send>;
type RunFn = Box<dyn FnOnce(&Connection) -> (bool, Outcome) + Send>;
type ReplyFn = Box<dyn FnOnce(Result<Outcome, StorageError>) + Send>;

struct Job {
    run: RunFn,
    reply: ReplyFn,
}

#[derive(Default)]
struct Counters {
    jobs: AtomicU64,
    commits: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct WriterStats {
    pub jobs: u64,
    pub commits: u64,
}

pub(super) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

fn erase<R, E, F>(f: F) -> RunFn
where
    F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    Box::new(move |conn| {
        let r = f(conn);
        (r.is_ok(), Box::new(r) as Outcome)
    })
}

fn unerase<R: 'static, E: From<StorageError> + 'static>(
    outcome: Result<Outcome, StorageError>,
) -> Result<R, E> {
    match outcome {
        Ok(b) => match b.downcast::<Result<R, E>>() {
            Ok(r) => *r,
            Err(_) => Err(E::from(StorageError::Unavailable(
                "writer returned an unexpected type".into(),
            ))),
        },
        Err(e) => Err(E::from(e)),
    }
}

impl Writer {
    pub(super) fn start(conn: Connection) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let handle = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || run(conn, rx, &c))
            .ok();
        Writer {
            tx: Mutex::new(Some(tx)),
            handle: Mutex::new(handle),
            counters,
        }
    }

    fn send(&self, job: Job) -> Result<(), Job> {
        let guard = match self.tx.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match guard.as_ref() {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    pub(super) async fn submit<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (otx, orx) = oneshot::channel();
        let job = Job {
            run: erase(f),
            reply: Box::new(move |r| {
                let _ = otx.send(r);
            }),
        };
        if self.send(job).is_err() {
            return Err(E::from(StorageError::WriterGone));
        }
        match orx.await {
            Ok(outcome) => unerase(outcome),
            Err(_) => Err(E::from(StorageError::WriterGone)),
        }
    }

    pub(super) fn submit_blocking<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (stx, srx) = mpsc::channel();
        let job = Job {
            run: erase(f),
            reply: Box::new(move |r| {
                let _ = stx.send(r);
            }),
        };
        if self.send(job).is_err() {
            return Err(E::from(StorageError::WriterGone));
        }
        match srx.recv() {
            Ok(outcome) => unerase(outcome),
            Err(_) => Err(E::from(StorageError::WriterGone)),
        }
    }

    pub(super) fn stats(&self) -> WriterStats {
        WriterStats {
            jobs: self.counters.jobs.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
        }
    }

    pub(super) fn stop(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        let handle = self.handle.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>, counters: &Counters) {
    // Blocks for the first job, then takes whatever else queued up meanwhile:
    // under load many requests share one fsync, when idle a job commits alone at once.
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        counters
            .jobs
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let results = run_batch(&conn, batch.iter_mut().map(|j| &mut j.run));
        counters.commits.fetch_add(1, Ordering::Relaxed);
        match results {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    (job.reply)(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "batch commit failed");
                let text = e.to_string();
                let retryable = e.is_retryable();
                for job in batch {
                    let err = if retryable {
                        StorageError::Unavailable(text.clone())
                    } else {
                        StorageError::Unavailable(format!("commit failed: {text}"))
                    };
                    (job.reply)(Err(err));
                }
            }
        }
    }
    // Checkpoint so a clean stop leaves a small WAL behind.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

/// Runs one fixed statement through the connection's statement cache: every job opens and
/// closes a savepoint, and parsing those few words again for each one showed up in profiles.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn run_batch<'a>(
    conn: &Connection,
    runs: impl Iterator<Item = &'a mut RunFn>,
) -> Result<Vec<Outcome>, StorageError> {
    exec(conn, "BEGIN IMMEDIATE")?;
    let mut outcomes = Vec::new();
    for run in runs {
        let f = std::mem::replace(run, Box::new(|_| (true, Box::new(()) as Outcome)));
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        // A panicking job must not take the writer down with it; its caller gets an error.
        let (ok, outcome) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
        {
            Ok(r) => r,
            Err(_) => (false, Box::new(()) as Outcome),
        };
        let ended = if ok {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        if let Err(e) = ended {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        outcomes.push(outcome);
    }
    if let Err(e) = exec(conn, "COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    Ok(outcomes)
}
