//! A leads file read from the bucket as a stream of checked rows, with bounded memory: the
//! object's body is pumped chunk by chunk into a small channel, a blocking thread reads it as
//! CSV ([`super::rows`], which is synchronous) and sends each row, checked, into another small
//! channel the async worker drains. Neither side ever holds more than a few chunks or a few
//! hundred rows. A body that breaks off mid-file (a network failure) is an error, never a
//! short file.

use super::rows::{Column, ImportError, LeadRow, RowError, Rows};
use crate::error::{Error, Result};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use std::io::Read;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Body chunks buffered between the download and the parser.
const CHUNKS_BUFFERED: usize = 8;
/// Rows buffered between the parser and the worker.
const ROWS_BUFFERED: usize = 256;

/// What the parser thread sends.
enum Event {
    /// The header was read, with its phone column's name (or the file cannot be imported).
    Opened(std::result::Result<String, ImportError>),
    Row(u64, std::result::Result<LeadRow, RowError>),
    /// The whole file was read.
    End,
    /// The body broke off.
    Broken(String),
}

/// A data row and its file row number.
pub type Row = (u64, std::result::Result<LeadRow, RowError>);

/// The rows of one read of a file.
#[derive(Debug)]
pub struct RowStream {
    events: mpsc::Receiver<Event>,
    phone_column: String,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Event::Opened(_) => "Opened",
            Event::Row(..) => "Row",
            Event::End => "End",
            Event::Broken(_) => "Broken",
        })
    }
}

impl RowStream {
    /// Starts reading `body`, national numbers read in `region`. The outer error is a read
    /// failure (retry later); the inner one says the file cannot be imported at all.
    pub async fn open(
        body: ByteStream,
        region: Option<String>,
    ) -> Result<std::result::Result<Self, ImportError>> {
        let (chunks_tx, chunks_rx) = mpsc::channel(CHUNKS_BUFFERED);
        tokio::spawn(pump(body, chunks_tx));
        let (events_tx, mut events) = mpsc::channel(ROWS_BUFFERED);
        tokio::task::spawn_blocking(move || parse(chunks_rx, region, events_tx));
        match events.recv().await {
            Some(Event::Opened(Ok(phone_column))) => Ok(Ok(Self {
                events,
                phone_column,
            })),
            Some(Event::Opened(Err(e))) => Ok(Err(e)),
            Some(Event::Broken(why)) => Err(broken(&why)),
            other => Err(Error::internal(format!(
                "the leads parser stopped unexpectedly ({other:?})"
            ))),
        }
    }

    /// The header name of the file's phone column.
    pub fn phone_column(&self) -> &str {
        &self.phone_column
    }

    /// The next row; `None` once the whole file was read.
    pub async fn next(&mut self) -> Result<Option<Row>> {
        match self.events.recv().await {
            Some(Event::Row(row, outcome)) => Ok(Some((row, outcome))),
            Some(Event::End) => Ok(None),
            Some(Event::Broken(why)) => Err(broken(&why)),
            other => Err(Error::internal(format!(
                "the leads parser stopped unexpectedly ({other:?})"
            ))),
        }
    }
}

fn broken(why: &str) -> Error {
    Error::Unavailable(format!("reading the file from the bucket failed: {why}"))
}

/// Copies the body into `chunks` until it ends, breaks, or nobody reads any more.
async fn pump(mut body: ByteStream, chunks: mpsc::Sender<std::result::Result<Bytes, String>>) {
    loop {
        let next = match body.try_next().await {
            Ok(Some(chunk)) => Ok(chunk),
            Ok(None) => return,
            Err(e) => Err(e.to_string()),
        };
        let failed = next.is_err();
        if chunks.send(next).await.is_err() || failed {
            return;
        }
    }
}

/// The parser thread: the file's rows into `events`, then `End`, or `Broken` when the body
/// broke off.
fn parse(
    chunks: mpsc::Receiver<std::result::Result<Bytes, String>>,
    region: Option<String>,
    events: mpsc::Sender<Event>,
) {
    let failure = Arc::new(Mutex::new(None));
    let reader = ChunkReader {
        chunks,
        current: Bytes::new(),
        failure: failure.clone(),
    };
    let broke = || {
        failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    };
    let mut rows = match Rows::open(reader) {
        Ok(rows) => rows,
        Err(e) => {
            let event = match broke() {
                Some(why) => Event::Broken(why),
                None => Event::Opened(Err(e)),
            };
            let _ = events.blocking_send(event);
            return;
        }
    };
    let phone = rows
        .header()
        .name_of(Column::Phone)
        .unwrap_or("phone")
        .to_owned();
    if events.blocking_send(Event::Opened(Ok(phone))).is_err() {
        return;
    }
    while let Some((row, record)) = rows.next_record() {
        let outcome = record.and_then(|r| rows.header().row(row, &r, region.as_deref()));
        if events.blocking_send(Event::Row(row, outcome)).is_err() {
            return; // the worker stopped reading
        }
    }
    let _ = events.blocking_send(match broke() {
        Some(why) => Event::Broken(why),
        None => Event::End,
    });
}

/// `Read` over the chunks the pump sends; remembers why the body broke off, if it did.
struct ChunkReader {
    chunks: mpsc::Receiver<std::result::Result<Bytes, String>>,
    current: Bytes,
    failure: Arc<Mutex<Option<String>>>,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(why)) => {
                    *self
                        .failure
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.clone());
                    return Err(std::io::Error::other(why));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
