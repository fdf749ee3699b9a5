//! Refuses a WebSocket frame by its header. actix-http's codec checks a frame's size only once the whole frame
//! has arrived, so a header announcing 2^60 bytes would keep the connection waiting for ever. This stream sits
//! between the connection and the codec, reads each frame header as it passes, and ends the input at once
//! when one announces more than the limit; the socket then closes with 1009.
//!
//! It also records what else it saw go wrong (the connection's own failure, reserved bits set), because
//! actix-web-actors reports those and a text frame that is not UTF-8 alike, as an I/O error with only a
//! message: what this stream did not see is the UTF-8 failure, told without reading any message.
//!
//! The limit in use is 4 KiB (`ws_session::MAXIMUM_MESSAGE_BYTES`).

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use actix_web::{error::PayloadError, web::Bytes};
use futures_util::Stream;

/// A frame header is at most 2 bytes, 8 of extended length and 4 of mask.
const LONGEST_HEADER: usize = 14;

/// Where the scan stands in the byte stream.
enum Position {
    /// Collecting a frame header.
    Header { bytes: [u8; LONGEST_HEADER], filled: usize },
    /// Passing over this many payload bytes.
    Payload { remaining: u64 },
}

/// What went wrong with one socket's input, as this stream saw it.
#[derive(Clone, Default)]
pub struct InputFaults(Arc<Faults>);

#[derive(Default)]
struct Faults {
    oversized: AtomicBool,
    broken: AtomicBool,
}

impl InputFaults {
    /// A frame header announced more than the limit.
    pub fn oversized(&self) -> bool {
        self.0.oversized.load(Ordering::Relaxed)
    }

    /// The connection failed, or a frame set reserved bits: a protocol error, not a message's content.
    pub fn broken(&self) -> bool {
        self.0.broken.load(Ordering::Relaxed)
    }
}

/// The input of one WebSocket, ended with `PayloadError::Overflow` at the first header over `limit`.
pub struct FrameLimit<S> {
    inner: S,
    limit: u64,
    position: Position,
    faults: InputFaults,
    ended: bool,
}

impl<S> FrameLimit<S> {
    pub fn new(inner: S, limit: usize, faults: InputFaults) -> Self {
        Self {
            inner,
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            position: Position::Header {
                bytes: [0; LONGEST_HEADER],
                filled: 0,
            },
            faults,
            ended: false,
        }
    }

    /// Reads `chunk` through the headers and payloads it crosses; false when a header is over the limit.
    fn scan(&mut self, mut chunk: &[u8]) -> bool {
        while !chunk.is_empty() {
            match &mut self.position {
                Position::Payload { remaining } => {
                    let skipped = u64::try_from(chunk.len()).unwrap_or(u64::MAX).min(*remaining);
                    *remaining -= skipped;
                    chunk = &chunk[usize::try_from(skipped).unwrap_or(chunk.len())..];
                    if *remaining == 0 {
                        self.position = Position::Header {
                            bytes: [0; LONGEST_HEADER],
                            filled: 0,
                        };
                    }
                }
                Position::Header { bytes, filled } => {
                    if *filled == 0 && chunk[0] & 0x70 != 0 {
                        // No extension is negotiated, so reserved bits are a protocol error the codec reports.
                        self.faults.0.broken.store(true, Ordering::Relaxed);
                    }
                    bytes[*filled] = chunk[0];
                    *filled += 1;
                    chunk = &chunk[1..];
                    match announced_length(&bytes[..*filled]) {
                        Some(length) if length > self.limit => return false,
                        Some(0) => {
                            self.position = Position::Header {
                                bytes: [0; LONGEST_HEADER],
                                filled: 0,
                            };
                        }
                        Some(length) => self.position = Position::Payload { remaining: length },
                        None => {}
                    }
                }
            }
        }
        true
    }
}

/// The payload length a complete frame header announces; `None` while the header is incomplete.
fn announced_length(header: &[u8]) -> Option<u64> {
    let second = *header.get(1)?;
    let masked = second & 0x80 != 0;
    let mask_bytes = if masked { 4 } else { 0 };
    let (length, length_bytes) = match second & 0x7f {
        126 => (u64::from(u16::from_be_bytes([*header.get(2)?, *header.get(3)?])), 2),
        127 => {
            let bytes: [u8; 8] = header.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes), 8)
        }
        short => (u64::from(short), 0),
    };
    (header.len() == 2 + length_bytes + mask_bytes).then_some(length)
}

impl<S> Stream for FrameLimit<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(context) {
            Poll::Ready(Some(Ok(chunk))) => {
                if self.scan(&chunk) {
                    Poll::Ready(Some(Ok(chunk)))
                } else {
                    self.ended = true;
                    self.faults.0.oversized.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            }
            Poll::Ready(Some(Err(error))) => {
                self.faults.0.broken.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(error)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit() -> FrameLimit<futures_util::stream::Empty<Result<Bytes, PayloadError>>> {
        FrameLimit::new(futures_util::stream::empty(), 4096, InputFaults::default())
    }

    fn masked_frame(length_field: &[u8], payload: usize) -> Vec<u8> {
        let mut frame = vec![0x81];
        frame.extend_from_slice(length_field);
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame.extend(std::iter::repeat_n(b'x', payload));
        frame
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_split() {
        let mut stream = Vec::new();
        stream.extend(masked_frame(&[0x80 | 5], 5));
        stream.extend(masked_frame(&[0x80 | 126, 0x10, 0x00], 4096));
        stream.extend(masked_frame(&[0x80], 0));
        stream.extend(masked_frame(&[0x80 | 3], 3));
        for split in [1, 2, 7, 13, 100, stream.len()] {
            let mut scanner = limit();
            assert!(stream.chunks(split).all(|chunk| scanner.scan(chunk)), "split {split}");
            assert!(matches!(scanner.position, Position::Header { filled: 0, .. }));
        }
    }

    #[test]
    fn a_header_over_the_limit_is_refused_before_its_payload() {
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 60).to_be_bytes());
        huge.extend_from_slice(&[1, 2, 3, 4]);
        assert!(!limit().scan(&huge));
        let just_over = masked_frame(&[0x80 | 126, 0x10, 0x01], 0);
        assert!(!limit().scan(&just_over));
        // After a frame that passed, the next header is read too.
        let mut both = masked_frame(&[0x80 | 2], 2);
        both.extend_from_slice(&huge);
        assert!(!limit().scan(&both));
    }

    #[test]
    fn reserved_bits_are_recorded_as_a_broken_input() {
        let mut scanner = limit();
        assert!(scanner.scan(&masked_frame(&[0x80 | 2], 2)));
        assert!(!scanner.faults.broken());
        let mut reserved = masked_frame(&[0x80 | 2], 2);
        reserved[0] |= 0x40;
        assert!(scanner.scan(&reserved));
        assert!(scanner.faults.broken());
    }
}
