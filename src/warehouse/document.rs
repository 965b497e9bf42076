//! Stored sidecar documents: the original file bytes, compressed, so nothing a sidecar held is
//! lost after its file is pre-cleared and any field can be re-derived later.
//!
//! Owns the codecs of `sidecar_document` and the warehouse's compression dictionaries
//! (`document_dictionary`). Not here: which documents are stored ([`super::ingest`]) or which
//! are read back ([`super::runs`]).
//!
//! # Why a trained dictionary
//! Sidecars are small and alike: the same keys in the same order, run after run, around a few
//! hundred numbers. Compressed one at a time, zstd finds little to reuse inside one file (lz4
//! managed 1.9x, plain zstd 2.8x on reference-sized sidecars); with a dictionary trained on the
//! warehouse's own sidecars it reaches about 6x. Documents were four fifths of a warehouse's
//! bytes, and a cold ingest writes every byte twice (WAL, then checkpoint), so the size is
//! also ingest time.
//!
//! The first ingest that can gather [`MIN_TRAINING_DOCUMENTS`] samples (its new files, topped
//! up with documents already stored, so `ingest --watch` trains too) trains a dictionary and
//! stores it. Every document row records the dictionary it was compressed with (none before
//! the first exists), so a dictionary is never changed or dropped once used, and an old
//! document always decodes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use zstd::dict::EncoderDictionary;

use crate::sidecar::read::{MAX_SIDECAR_BYTES, parse_bytes, read_bytes};

/// zstd frames, with the dictionary named by `sidecar_document.dict_id` (NULL: none).
pub const CODEC_ZSTD: &str = "zstd";
/// The bytes as they were; used only if compressing failed, so a document is never dropped.
pub const CODEC_RAW: &str = "raw";
/// lz4 with a size prefix: what schema versions 1 and 2 wrote. Read, never written.
pub const CODEC_LZ4: &str = "lz4";

/// Fast enough to keep up with parsing; higher levels gained under 5 % on sidecars.
const LEVEL: i32 = 1;
/// Fewer samples than this train a dictionary that fits them and little else.
pub const MIN_TRAINING_DOCUMENTS: usize = 64;
/// Enough to learn the key layout of the sidecars in a run. Measured on reference-sized
/// sidecars: 64, 128 and 256 samples all compress 6.1-6.3x, and 256 take 86 ms to train
/// against 50 ms for 128.
const MAX_TRAINING_DOCUMENTS: usize = 128;
const DICTIONARY_BYTES: usize = 32 * 1024;
/// Bounds on what training reads: sidecars are a few KB, so these only stop oddities.
const MAX_SAMPLE_BYTES: usize = 256 * 1024;
const MAX_TRAINING_BYTES: usize = 4 * 1024 * 1024;

/// A dictionary trained but not stored yet ([`DocumentEncoder::train`]).
pub struct Trained {
    dictionary: Vec<u8>,
    samples: usize,
}

/// What ingest compresses new documents with: the warehouse's newest dictionary, or none.
pub struct DocumentEncoder {
    dict_id: Option<i64>,
    dictionary: Option<EncoderDictionary<'static>>,
}

impl DocumentEncoder {
    /// No dictionary: plain zstd frames.
    pub fn plain() -> Self {
        DocumentEncoder { dict_id: None, dictionary: None }
    }

    /// The warehouse's newest dictionary, or a plain encoder when it has none yet.
    pub fn newest(conn: &Connection) -> rusqlite::Result<Self> {
        let newest: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT dict_id, dictionary FROM document_dictionary ORDER BY dict_id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match newest {
            Some((id, bytes)) => Self::with_dictionary(id, &bytes),
            None => Self::plain(),
        })
    }

    /// Train a dictionary from a sample of `candidates` (the files an ingest is about to read),
    /// topped up with documents the warehouse already stores. `None` when there are too few
    /// usable samples or training fails: ingest then goes on with plain frames and a later
    /// ingest tries again. Writes nothing, so it runs outside any write transaction.
    pub fn train(conn: &Connection, candidates: &[&Path]) -> rusqlite::Result<Option<Trained>> {
        // Evenly spaced over the walk order, so every run and test kind is represented.
        let step = candidates.len().div_ceil(MAX_TRAINING_DOCUMENTS).max(1);
        let mut samples = Vec::new();
        let mut total = 0;
        for path in candidates.iter().step_by(step) {
            let Ok(bytes) = read_bytes(path) else { continue };
            // Junk would teach the dictionary junk; a huge file would only cost memory.
            if bytes.len() > MAX_SAMPLE_BYTES || parse_bytes(path, &bytes).is_err() {
                continue;
            }
            total += bytes.len();
            samples.push(bytes);
            if total > MAX_TRAINING_BYTES {
                break;
            }
        }
        // A warehouse fed a few files at a time (`ingest --watch`) trains once it holds enough.
        if samples.len() < MIN_TRAINING_DOCUMENTS {
            samples.extend(stored_samples(conn, MAX_TRAINING_DOCUMENTS - samples.len())?);
        }
        if samples.len() < MIN_TRAINING_DOCUMENTS {
            return Ok(None);
        }
        Ok(zstd::dict::from_samples(&samples, DICTIONARY_BYTES)
            .ok()
            .map(|dictionary| Trained { dictionary, samples: samples.len() }))
    }

    /// Store a trained dictionary and encode with it, unless another ingest stored one first
    /// (then that one: a warehouse uses its newest dictionary). Call inside the IMMEDIATE
    /// transaction that starts writing.
    pub fn store(conn: &Connection, trained: Trained) -> rusqlite::Result<Self> {
        let newest = Self::newest(conn)?;
        if newest.dict_id.is_some() {
            return Ok(newest);
        }
        conn.execute(
            "INSERT INTO document_dictionary (dictionary, samples, created_at) VALUES (?1, ?2, ?3)",
            params![trained.dictionary, trained.samples as i64, crate::timefmt::now_iso8601()],
        )?;
        Ok(Self::with_dictionary(conn.last_insert_rowid(), &trained.dictionary))
    }

    fn with_dictionary(dict_id: i64, bytes: &[u8]) -> Self {
        match EncoderDictionary::try_copy(bytes, LEVEL) {
            Ok(dictionary) => {
                DocumentEncoder { dict_id: Some(dict_id), dictionary: Some(dictionary) }
            }
            // A dictionary this zstd cannot load compresses nothing; plain frames still work.
            Err(_) => Self::plain(),
        }
    }

    /// The `document_dictionary` row new documents are compressed with.
    pub fn dict_id(&self) -> Option<i64> {
        self.dict_id
    }

    /// A compressor for one thread (zstd contexts are not shared between threads).
    pub fn compressor(&self) -> Compressor<'_> {
        let context = match &self.dictionary {
            Some(dictionary) => zstd::bulk::Compressor::with_prepared_dictionary(dictionary),
            None => zstd::bulk::Compressor::new(LEVEL),
        };
        Compressor { context: context.ok(), dict_id: self.dict_id }
    }
}

/// The newest `limit` stored documents, decoded (those that do not decode are left out).
fn stored_samples(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Vec<u8>>> {
    let mut stmt = conn.prepare(
        "SELECT codec, dict_id, document FROM sidecar_document ORDER BY sidecar_id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Vec<u8>>(2)?))
    })?;
    let mut samples = Vec::new();
    for row in rows {
        let (codec, dict_id, document) = row?;
        samples.extend(decode(conn, &codec, dict_id, &document).ok());
    }
    Ok(samples)
}

/// One thread's compression context.
pub struct Compressor<'a> {
    context: Option<zstd::bulk::Compressor<'a>>,
    dict_id: Option<i64>,
}

/// A document ready to store: `sidecar_document`'s codec, dict_id and document columns.
pub struct EncodedDocument {
    pub codec: &'static str,
    pub dict_id: Option<i64>,
    pub bytes: Vec<u8>,
}

impl Compressor<'_> {
    pub fn encode(&mut self, original: &[u8]) -> EncodedDocument {
        match self.context.as_mut().map(|c| c.compress(original)) {
            Some(Ok(bytes)) => EncodedDocument { codec: CODEC_ZSTD, dict_id: self.dict_id, bytes },
            _ => EncodedDocument { codec: CODEC_RAW, dict_id: None, bytes: original.to_vec() },
        }
    }
}

/// Why a stored document could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the warehouse copy uses codec `{0}`, which this binary cannot decode")]
    UnknownCodec(String),
    #[error("the warehouse copy needs compression dictionary {0}, which the database lacks")]
    MissingDictionary(i64),
    #[error("the warehouse copy is damaged: {0}")]
    Damaged(String),
    #[error("reading the warehouse copy failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The original file bytes of a stored document. To decode many, use one [`Decoder`].
pub fn decode(
    conn: &Connection,
    codec: &str,
    dict_id: Option<i64>,
    document: &[u8],
) -> Result<Vec<u8>, DecodeError> {
    Decoder::new(conn).decode(codec, dict_id, document)
}

/// Decodes stored documents of one warehouse, reading and loading each zstd dictionary once:
/// loading a 32 KB dictionary costs more than decoding the ~2 KB document it is used for.
pub struct Decoder<'c> {
    conn: &'c Connection,
    zstd: HashMap<Option<i64>, zstd::bulk::Decompressor<'static>>,
}

impl<'c> Decoder<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Decoder { conn, zstd: HashMap::new() }
    }

    /// The original file bytes of one stored document.
    pub fn decode(
        &mut self,
        codec: &str,
        dict_id: Option<i64>,
        document: &[u8],
    ) -> Result<Vec<u8>, DecodeError> {
        match codec {
            CODEC_RAW => Ok(document.to_vec()),
            CODEC_LZ4 => {
                lz4_declared_size(document)?;
                lz4_flex::decompress_size_prepended(document)
                    .map_err(|e| DecodeError::Damaged(e.to_string()))
            }
            CODEC_ZSTD => {
                let decompressor = match self.zstd.entry(dict_id) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(zstd_decompressor(self.conn, dict_id)?),
                };
                // The frame header carries the size; the read limit bounds a corrupt one.
                let size = zstd::zstd_safe::get_frame_content_size(document)
                    .ok()
                    .flatten()
                    .filter(|&n| n <= MAX_SIDECAR_BYTES)
                    .ok_or_else(|| DecodeError::Damaged("bad frame header".into()))?;
                decompressor.decompress(document, size as usize).map_err(damaged)
            }
            other => Err(DecodeError::UnknownCodec(other.to_string())),
        }
    }
}

fn damaged(e: io::Error) -> DecodeError {
    DecodeError::Damaged(e.to_string())
}

/// A zstd decompressor loaded with dictionary `dict_id` (none: plain zstd).
fn zstd_decompressor(
    conn: &Connection,
    dict_id: Option<i64>,
) -> Result<zstd::bulk::Decompressor<'static>, DecodeError> {
    let Some(id) = dict_id else { return zstd::bulk::Decompressor::new().map_err(damaged) };
    let dictionary: Vec<u8> = conn
        .query_row("SELECT dictionary FROM document_dictionary WHERE dict_id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or(DecodeError::MissingDictionary(id))?;
    zstd::bulk::Decompressor::with_dictionary(&dictionary).map_err(damaged)
}

/// The size an lz4 document's 4-byte prefix declares, which the decoder allocates up front:
/// bounded by the read limit, so a damaged prefix cannot ask for gigabytes.
fn lz4_declared_size(document: &[u8]) -> Result<usize, DecodeError> {
    let size = document.get(..4).map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]));
    match size {
        Some(n) if u64::from(n) <= MAX_SIDECAR_BYTES => Ok(n as usize),
        _ => Err(DecodeError::Damaged("bad size prefix".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::Warehouse;

    fn sidecar(i: usize) -> String {
        let mut doc = crate::sidecar::SidecarResult::empty(&format!("test_{i}"));
        doc.scheduler = format!("scx_{}", i % 3);
        doc.timestamp = format!("2026-01-01T00:00:{:02}Z", i % 60);
        doc.to_json_pretty()
    }

    fn files(dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("{i}.ktstr.json"));
                std::fs::write(&path, sidecar(i)).unwrap();
                path
            })
            .collect()
    }

    #[test]
    fn a_trained_dictionary_round_trips_and_shrinks_documents() {
        let wh = Warehouse::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 100);
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let trained = DocumentEncoder::train(wh.conn(), &refs).unwrap().expect("trained");
        let trained = DocumentEncoder::store(wh.conn(), trained).unwrap();
        assert_eq!(trained.dict_id(), Some(1));
        assert_eq!(DocumentEncoder::newest(wh.conn()).unwrap().dict_id(), Some(1));

        let original = sidecar(7);
        let with = trained.compressor().encode(original.as_bytes());
        let without = DocumentEncoder::plain().compressor().encode(original.as_bytes());
        assert_eq!((with.codec, with.dict_id), (CODEC_ZSTD, Some(1)));
        assert!(
            with.bytes.len() < without.bytes.len(),
            "{} vs {}",
            with.bytes.len(),
            without.bytes.len()
        );
        for doc in [&with, &without] {
            let back = decode(wh.conn(), doc.codec, doc.dict_id, &doc.bytes).unwrap();
            assert_eq!(back, original.as_bytes());
        }
        // One decoder over many documents, with and without the dictionary, interleaved: each
        // keeps its own decompressor, and a missing dictionary is still an error.
        let mut decoder = Decoder::new(wh.conn());
        let plain = DocumentEncoder::plain();
        for i in 0..6 {
            let text = sidecar(i);
            let encoder = if i % 2 == 0 { &trained } else { &plain };
            let doc = encoder.compressor().encode(text.as_bytes());
            assert_eq!(
                decoder.decode(doc.codec, doc.dict_id, &doc.bytes).unwrap(),
                text.as_bytes()
            );
        }
        assert!(matches!(
            decoder.decode(CODEC_ZSTD, Some(99), &with.bytes),
            Err(DecodeError::MissingDictionary(99))
        ));
    }

    #[test]
    fn of_two_ingests_training_at_once_the_second_uses_the_first_dictionary() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("warehouse.sqlite");
        let paths = files(dir.path(), 80);
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let (one, two) = (Warehouse::open(&db).unwrap(), Warehouse::open(&db).unwrap());
        // Both trained before either stored (training runs outside the write lock).
        let first = DocumentEncoder::train(one.conn(), &refs).unwrap().unwrap();
        let second = DocumentEncoder::train(two.conn(), &refs).unwrap().unwrap();
        assert_eq!(DocumentEncoder::store(one.conn(), first).unwrap().dict_id(), Some(1));
        assert_eq!(DocumentEncoder::store(two.conn(), second).unwrap().dict_id(), Some(1));
        let stored: i64 = two
            .conn()
            .query_row("SELECT count(*) FROM document_dictionary", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 1);
    }

    #[test]
    fn too_few_samples_train_nothing() {
        let wh = Warehouse::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), MIN_TRAINING_DOCUMENTS - 1);
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        assert!(DocumentEncoder::train(wh.conn(), &refs).unwrap().is_none());
        assert_eq!(DocumentEncoder::newest(wh.conn()).unwrap().dict_id(), None);
    }

    #[test]
    fn damaged_or_unknown_documents_are_errors_not_panics() {
        let wh = Warehouse::open_in_memory().unwrap();
        let e = decode(wh.conn(), "brotli", None, b"x").unwrap_err();
        assert!(e.to_string().contains("codec `brotli`"), "{e}");
        assert!(matches!(
            decode(wh.conn(), CODEC_ZSTD, None, b"garbage"),
            Err(DecodeError::Damaged(_))
        ));
        let doc = DocumentEncoder::plain().compressor().encode(b"{}");
        assert!(matches!(
            decode(wh.conn(), CODEC_ZSTD, Some(9), &doc.bytes),
            Err(DecodeError::MissingDictionary(9))
        ));
        // A size prefix claiming 4 GB is refused before anything is allocated.
        let huge = [0xff, 0xff, 0xff, 0xff, 0, 0];
        assert!(matches!(lz4_declared_size(&huge), Err(DecodeError::Damaged(_))));
        assert!(matches!(lz4_declared_size(&[1, 0]), Err(DecodeError::Damaged(_))));
        assert!(matches!(decode(wh.conn(), CODEC_LZ4, None, &huge), Err(DecodeError::Damaged(_))));
        let lz4 = lz4_flex::compress_prepend_size(b"{\"a\":1}");
        assert_eq!(lz4_declared_size(&lz4).unwrap(), 7);
        assert_eq!(decode(wh.conn(), CODEC_LZ4, None, &lz4).unwrap(), b"{\"a\":1}");
    }
}
