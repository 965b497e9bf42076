//! The result channel's wire format: a stream of checksummed frames between a begin and an end
//! sentinel, written by the guest to its second serial port and decoded by the host.
//!
//! ```text
//! @@KTSTR-BEGIN v1\n
//! @@KTSTR-FRAME <kind> <payload length> <crc32 of payload, 8 hex>\n<payload bytes>\n
//! ...
//! @@KTSTR-END <number of frames>\n
//! ```
//!
//! Payloads are raw bytes (the guest puts the tty in raw mode), usually JSON. A stream without
//! its end sentinel means the guest died or hung mid-way; a checksum or count mismatch means the
//! channel corrupted data. Both are errors: a partial result is never taken for a whole one.
//! This module knows nothing of what the frames mean.

use std::io::{self, Write};

const BEGIN: &str = "@@KTSTR-BEGIN v1\n";
const FRAME: &str = "@@KTSTR-FRAME ";
const END: &str = "@@KTSTR-END ";

/// One message from the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the payload is, e.g. `topology` or `result`: one word, no spaces.
    pub kind: String,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn payload_str(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the guest wrote no results (no begin sentinel on the result channel)")]
    MissingBegin,
    #[error("the result stream ended without its end sentinel after {frames_seen} frames")]
    MissingEnd { frames_seen: usize },
    #[error("result frame {index} ('{kind}') has checksum {found:08x}, expected {expected:08x}")]
    BadChecksum { index: usize, kind: String, expected: u32, found: u32 },
    #[error("result stream is malformed at byte {offset}: {what}")]
    Malformed { offset: usize, what: String },
    #[error("the end sentinel counts {declared} frames but {seen} arrived")]
    CountMismatch { declared: usize, seen: usize },
}

/// Writes frames to the result channel.
pub struct FrameWriter<W: Write> {
    out: W,
    written: usize,
}

impl<W: Write> FrameWriter<W> {
    /// Starts a stream by writing the begin sentinel.
    pub fn begin(mut out: W) -> io::Result<Self> {
        out.write_all(BEGIN.as_bytes())?;
        out.flush()?;
        Ok(FrameWriter { out, written: 0 })
    }

    pub fn frame(&mut self, kind: &str, payload: &[u8]) -> io::Result<()> {
        assert!(
            !kind.is_empty() && !kind.contains(char::is_whitespace),
            "frame kind must be one word"
        );
        let header = format!("{FRAME}{kind} {} {:08x}\n", payload.len(), crc32fast::hash(payload));
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(payload)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        self.written += 1;
        Ok(())
    }

    /// Closes the stream with the end sentinel and returns the writer.
    pub fn end(mut self) -> io::Result<W> {
        self.out.write_all(format!("{END}{}\n", self.written).as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// What a possibly incomplete stream held: the intact frames before any damage, and the error
/// that stopped decoding, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub frames: Vec<Frame>,
    pub error: Option<FrameError>,
}

/// Decodes a complete stream; anything short of a well-formed, fully checksummed stream with
/// its end sentinel is an error.
pub fn decode(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let decoded = decode_partial(bytes);
    match decoded.error {
        None => Ok(decoded.frames),
        Some(e) => Err(e),
    }
}

/// Decodes as far as the stream is intact (for reporting what a hung guest got through).
pub fn decode_partial(bytes: &[u8]) -> Decoded {
    let mut frames = Vec::new();
    let error = decode_into(bytes, &mut frames).err();
    Decoded { frames, error }
}

fn decode_into(bytes: &[u8], frames: &mut Vec<Frame>) -> Result<(), FrameError> {
    let Some(start) = find(bytes, BEGIN.as_bytes()) else {
        return Err(FrameError::MissingBegin);
    };
    let mut pos = start + BEGIN.len();
    loop {
        let Some(line_end) = bytes[pos..].iter().position(|&b| b == b'\n').map(|i| pos + i) else {
            return Err(FrameError::MissingEnd { frames_seen: frames.len() });
        };
        let line = std::str::from_utf8(&bytes[pos..line_end])
            .map_err(|_| malformed(pos, "header is not UTF-8"))?;
        if let Some(count) = line.strip_prefix(END.trim_end()) {
            let declared = count.trim().parse().map_err(|_| malformed(pos, "bad frame count"))?;
            if declared != frames.len() {
                return Err(FrameError::CountMismatch { declared, seen: frames.len() });
            }
            return Ok(());
        }
        let header =
            line.strip_prefix(FRAME).ok_or_else(|| malformed(pos, "expected a frame header"))?;
        let (kind, len, crc) =
            parse_header(header).ok_or_else(|| malformed(pos, "bad frame header"))?;
        let body = line_end + 1;
        if bytes.len() < body + len + 1 {
            return Err(FrameError::MissingEnd { frames_seen: frames.len() });
        }
        let payload = &bytes[body..body + len];
        let found = crc32fast::hash(payload);
        if found != crc {
            return Err(FrameError::BadChecksum {
                index: frames.len(),
                kind,
                expected: crc,
                found,
            });
        }
        if bytes[body + len] != b'\n' {
            return Err(malformed(body + len, "payload longer than its header says"));
        }
        frames.push(Frame { kind, payload: payload.to_vec() });
        pos = body + len + 1;
    }
}

fn parse_header(header: &str) -> Option<(String, usize, u32)> {
    let mut parts = header.split(' ');
    let kind = parts.next().filter(|k| !k.is_empty())?.to_string();
    let len = parts.next()?.parse().ok()?;
    let crc = u32::from_str_radix(parts.next().filter(|c| c.len() == 8)?, 16).ok()?;
    parts.next().is_none().then_some((kind, len, crc))
}

fn malformed(offset: usize, what: &str) -> FrameError {
    FrameError::Malformed { offset, what: what.to_string() }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(frames: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = FrameWriter::begin(Vec::new()).unwrap();
        for (kind, payload) in frames {
            w.frame(kind, payload).unwrap();
        }
        w.end().unwrap()
    }

    #[test]
    fn round_trips_binary_and_empty_payloads() {
        let payloads: [(&str, &[u8]); 3] =
            [("topology", b"\"1n1l2c1t\""), ("blob", b"a\nb\0\xff@@KTSTR-END 9\n"), ("empty", b"")];
        let frames = decode(&stream(&payloads)).unwrap();
        assert_eq!(frames.len(), 3);
        for (frame, (kind, payload)) in frames.iter().zip(payloads) {
            assert_eq!(frame.kind, kind);
            assert_eq!(frame.payload, payload);
        }
    }

    #[test]
    fn noise_before_the_begin_sentinel_is_skipped() {
        let mut bytes = b"\r\nleftover boot noise\n".to_vec();
        bytes.extend(stream(&[("x", b"1")]));
        assert_eq!(decode(&bytes).unwrap()[0].payload, b"1");
    }

    #[test]
    fn a_flipped_payload_byte_is_a_checksum_error() {
        let mut bytes = stream(&[("first", b"ok"), ("result", b"{\"passed\":true}")]);
        let at = find(&bytes, b"true").unwrap();
        bytes[at] = b'T';
        let decoded = decode_partial(&bytes);
        assert_eq!(decoded.frames.len(), 1, "the intact frame before the damage survives");
        match decoded.error {
            Some(FrameError::BadChecksum { index: 1, kind, .. }) => assert_eq!(kind, "result"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_stream_cut_short_has_no_end() {
        let full = stream(&[("a", b"12345"), ("b", b"67890")]);
        for cut in [full.len() - 1, full.len() - 10, BEGIN.len() + 3] {
            let err = decode(&full[..cut]).unwrap_err();
            assert!(matches!(err, FrameError::MissingEnd { .. }), "cut at {cut}: {err:?}");
        }
        assert_eq!(
            decode(&full[..full.len() - 1]).unwrap_err().to_string(),
            "the result stream ended without its end sentinel after 2 frames"
        );
    }

    #[test]
    fn missing_begin_bad_header_and_wrong_count() {
        assert_eq!(decode(b"").unwrap_err(), FrameError::MissingBegin);
        assert_eq!(decode(b"garbage\n").unwrap_err(), FrameError::MissingBegin);
        let bad = format!("{BEGIN}{FRAME}x notanumber 00000000\n\n{END}1\n");
        assert!(matches!(decode(bad.as_bytes()).unwrap_err(), FrameError::Malformed { .. }));
        let mut bytes = stream(&[("a", b"1")]);
        bytes.truncate(bytes.len() - 2);
        bytes.extend(b"5\n");
        assert_eq!(decode(&bytes).unwrap_err(), FrameError::CountMismatch { declared: 5, seen: 1 });
    }

    #[test]
    fn a_payload_longer_than_declared_is_malformed() {
        let crc = crc32fast::hash(b"ab");
        let bytes = format!("{BEGIN}{FRAME}x 2 {crc:08x}\nabc\n{END}1\n");
        assert!(matches!(decode(bytes.as_bytes()).unwrap_err(), FrameError::Malformed { .. }));
    }
}
