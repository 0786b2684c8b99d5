//! Length-prefixed frames: the only bytes that cross the wire.
//!
//! ```text
//! offset  size  field
//! 0       4     length L of everything after this field, u32 big-endian, 1 ≤ L ≤ max frame
//! 4       1     codec: 0 = plain, 1 = zstd
//! 5       4     zstd only: decoded length D, u32 big-endian, D ≤ max frame
//! 5 or 9  ..    body: a postcard-encoded `proto::Message`; with zstd, one zstd frame
//!               that must decompress to exactly D bytes
//! ```
//!
//! Decoding is hardened: every length is checked before it is used, the decompressed size is
//! bounded by the declared `D` (itself bounded by the maximum frame size), so a
//! decompression bomb stops at the bound, and every failure is a typed [`Error`], never a
//! panic. `sync/fuzz` fuzzes [`decode_body`]; the unit tests below feed it random and mutated
//! frames.

use crate::proto::{Message, PROTOCOL_VERSION};
use crate::{Error, Result};

/// Index of `Message::Open` in postcard's encoding of [`Message`] (its first variant).
const OPEN_VARIANT: u32 = 0;

/// Bytes of the length prefix.
pub const LEN_BYTES: usize = 4;
/// Codec byte: the body is a plain postcard message.
pub const CODEC_PLAIN: u8 = 0;
/// Codec byte: the body is zstd-compressed, preceded by its decoded length.
pub const CODEC_ZSTD: u8 = 1;
/// Bodies smaller than this are never compressed (zstd's own header would not pay off).
pub const COMPRESS_MIN_BYTES: usize = 256;

/// What encoding one message produced.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The complete frame, length prefix included.
    pub bytes: Vec<u8>,
    /// Size of the postcard body before compression.
    pub raw_len: usize,
}

/// Encodes `msg` as one frame; batches of at least [`COMPRESS_MIN_BYTES`] are compressed
/// with zstd at `level` (0 = never compress).
///
/// # Errors
/// [`Error::FrameTooLarge`] if the frame (or the decoded body) would exceed `max_frame`.
pub fn encode(msg: &Message, level: i32, max_frame: usize) -> Result<Encoded> {
    let body = postcard::to_stdvec(msg).map_err(|source| Error::Encode { source })?;
    if body.len() > max_frame {
        return Err(Error::FrameTooLarge {
            size: body.len(),
            limit: max_frame,
        });
    }
    let compress =
        level != 0 && matches!(msg, Message::Batch(_)) && body.len() >= COMPRESS_MIN_BYTES;
    let mut out = Vec::with_capacity(body.len() / 2 + 16);
    out.extend_from_slice(&[0; LEN_BYTES]);
    if compress {
        let packed =
            zstd::bulk::compress(&body, level).map_err(|source| Error::Compress { source })?;
        out.push(CODEC_ZSTD);
        // `body.len() <= max_frame`, which a `usize` config bounds to u32 below.
        out.extend_from_slice(&u32_len(body.len())?.to_be_bytes());
        out.extend_from_slice(&packed);
    } else {
        out.push(CODEC_PLAIN);
        out.extend_from_slice(&body);
    }
    let len = out.len() - LEN_BYTES;
    if len > max_frame {
        return Err(Error::FrameTooLarge {
            size: len,
            limit: max_frame,
        });
    }
    out[..LEN_BYTES].copy_from_slice(&u32_len(len)?.to_be_bytes());
    Ok(Encoded {
        bytes: out,
        raw_len: body.len(),
    })
}

fn u32_len(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::FrameTooLarge {
        size: n,
        limit: u32::MAX as usize,
    })
}

/// Reads the length prefix and checks it against `max_frame`: how many bytes follow.
///
/// # Errors
/// [`Error::FrameTooLarge`] over the limit, [`Error::MalformedFrame`] for an empty frame.
pub fn body_len(prefix: [u8; LEN_BYTES], max_frame: usize) -> Result<usize> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max_frame {
        return Err(Error::FrameTooLarge {
            size: len,
            limit: max_frame,
        });
    }
    if len == 0 {
        return Err(Error::MalformedFrame {
            reason: "empty frame".into(),
        });
    }
    Ok(len)
}

/// Decodes the part of a frame after its length prefix. Returns the message and the size of
/// its postcard body before compression.
///
/// # Errors
/// [`Error::MalformedFrame`] for an unknown codec, a truncated header or a body that is not a
/// message (trailing bytes included); [`Error::FrameTooLarge`] for a declared decoded size
/// over `max_frame`; [`Error::Decompress`] for a corrupt zstd body, one that decompresses to
/// more than it declared (a bomb stops there) or to fewer bytes.
pub fn decode_body(body: &[u8], max_frame: usize) -> Result<(Message, usize)> {
    let (&codec, rest) = body.split_first().ok_or_else(|| Error::MalformedFrame {
        reason: "empty frame".into(),
    })?;
    match codec {
        CODEC_PLAIN => Ok((parse(rest)?, rest.len())),
        CODEC_ZSTD => {
            let (len, packed) = rest
                .split_at_checked(4)
                .ok_or_else(|| Error::MalformedFrame {
                    reason: "truncated zstd header".into(),
                })?;
            // `split_at_checked(4)` returned exactly four bytes.
            let declared = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if declared > max_frame {
                return Err(Error::FrameTooLarge {
                    size: declared,
                    limit: max_frame,
                });
            }
            // `bulk::decompress` writes into a buffer of exactly `declared` bytes and fails
            // when the content would overflow it, so the declared size bounds the memory.
            let raw = zstd::bulk::decompress(packed, declared)
                .map_err(|source| Error::Decompress { source })?;
            if raw.len() != declared {
                return Err(Error::MalformedFrame {
                    reason: format!(
                        "zstd body decompressed to {} bytes, {declared} declared",
                        raw.len()
                    ),
                });
            }
            Ok((parse(&raw)?, declared))
        }
        other => Err(Error::MalformedFrame {
            reason: format!("unknown codec {other}"),
        }),
    }
}

fn parse(bytes: &[u8]) -> Result<Message> {
    let parsed = postcard::take_from_bytes::<Message>(bytes);
    if let Ok((msg, [])) = parsed {
        return Ok(msg);
    }
    // An `Open` of another protocol version may have other fields (so it fails to decode, or
    // leaves bytes over): report the version rather than a malformed frame. The variant index
    // and the version come first in every version's encoding (varint u32, then varint u16).
    if let Ok(((OPEN_VARIANT, remote), _)) = postcard::take_from_bytes::<(u32, u16)>(bytes)
        && remote != PROTOCOL_VERSION
    {
        return Err(Error::ProtocolVersion {
            local: PROTOCOL_VERSION,
            remote,
        });
    }
    match parsed {
        Ok((_, rest)) => Err(Error::MalformedFrame {
            reason: format!("{} bytes after the message", rest.len()),
        }),
        Err(source) => Err(Error::Decode { source }),
    }
}

/// Decodes one complete frame held in memory (prefix included), as a reader of a byte
/// stream would: the prefix is checked first, then exactly that many bytes must follow.
///
/// # Errors
/// As [`body_len`] and [`decode_body`]; [`Error::MalformedFrame`] if the buffer is shorter or
/// longer than the prefix says.
pub fn decode(frame: &[u8], max_frame: usize) -> Result<(Message, usize)> {
    let (prefix, body) =
        frame
            .split_at_checked(LEN_BYTES)
            .ok_or_else(|| Error::MalformedFrame {
                reason: "truncated length prefix".into(),
            })?;
    let len = body_len([prefix[0], prefix[1], prefix[2], prefix[3]], max_frame)?;
    if body.len() != len {
        return Err(Error::MalformedFrame {
            reason: format!("frame says {len} bytes, {} present", body.len()),
        });
    }
    decode_body(body, max_frame)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::proto::{Batch, Pull};

    const MAX: usize = 1 << 20;

    fn batch_frame() -> Vec<u8> {
        let mut changes = Vec::new();
        for i in 0..20 {
            changes.push(crate::proto::tests_support::change(i, 16));
        }
        let msg = Message::Batch(Batch {
            req: 1,
            origin: "o".into(),
            after: 0,
            upto: 20,
            more: false,
            changes,
        });
        encode(&msg, 3, MAX).unwrap().bytes
    }

    #[test]
    fn round_trip_plain_and_compressed() {
        let pull = Message::Pull(Pull {
            req: 7,
            origin: None,
            after: 42,
            limit: 10,
            text_only: true,
        });
        let f = encode(&pull, 3, MAX).unwrap();
        assert_eq!(f.bytes[4], CODEC_PLAIN);
        assert_eq!(decode(&f.bytes, MAX).unwrap().0, pull);
        let b = batch_frame();
        assert_eq!(b[4], CODEC_ZSTD);
        assert!(matches!(decode(&b, MAX).unwrap().0, Message::Batch(x) if x.changes.len() == 20));
    }

    #[test]
    fn oversized_truncated_and_unknown() {
        let b = batch_frame();
        assert!(matches!(decode(&b, 64), Err(Error::FrameTooLarge { .. })));
        assert!(matches!(
            encode(&decode(&b, MAX).unwrap().0, 0, 64),
            Err(Error::FrameTooLarge { .. })
        ));
        for cut in [0, 3, 4, 5, 8, b.len() - 1] {
            assert!(decode(&b[..cut], MAX).is_err(), "cut at {cut}");
        }
        let mut bad = b.clone();
        bad[4] = 9;
        assert!(matches!(
            decode(&bad, MAX),
            Err(Error::MalformedFrame { .. })
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 0], MAX),
            Err(Error::MalformedFrame { .. })
        ));
        // Trailing garbage after a valid plain message.
        let mut f = encode(&Message::Done, 0, MAX).unwrap().bytes;
        f.push(0);
        let n = (f.len() - 4) as u32;
        f[..4].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(decode(&f, MAX), Err(Error::MalformedFrame { .. })));
    }

    #[test]
    fn decompression_bombs_stop_at_the_declared_size() {
        // 64 MiB of zeros compress to a few KiB; declaring 1 KiB (or the maximum) must fail
        // without inflating past the bound.
        let zeros = vec![0u8; 64 << 20];
        let packed = zstd::bulk::compress(&zeros, 1).unwrap();
        for declared in [1024u32, MAX as u32] {
            let mut body = vec![CODEC_ZSTD];
            body.extend_from_slice(&declared.to_be_bytes());
            body.extend_from_slice(&packed);
            assert!(matches!(
                decode_body(&body, MAX),
                Err(Error::Decompress { .. })
            ));
        }
        // Declaring more than the maximum frame is refused before decompressing.
        let mut body = vec![CODEC_ZSTD];
        body.extend_from_slice(&u32::MAX.to_be_bytes());
        body.extend_from_slice(&packed);
        assert!(matches!(
            decode_body(&body, MAX),
            Err(Error::FrameTooLarge { .. })
        ));
        // Declaring more than the content holds is a mismatch, not a panic.
        let small = zstd::bulk::compress(&[1, 2, 3], 1).unwrap();
        let mut body = vec![CODEC_ZSTD];
        body.extend_from_slice(&100u32.to_be_bytes());
        body.extend_from_slice(&small);
        assert!(decode_body(&body, MAX).is_err());
    }

    /// A version-1 `Open` (no `text_only`) is reported as a protocol version mismatch, not as
    /// an undecodable frame; so is a later version's `Open` with more fields.
    #[test]
    fn open_of_another_version_is_a_version_error() {
        #[derive(serde::Serialize)]
        struct OpenV1 {
            protocol: u16,
            shard: String,
            origin: String,
            model_id: String,
            dims: u32,
            pull: bool,
            push: bool,
        }
        #[derive(serde::Serialize)]
        enum MessageV1 {
            Open(OpenV1),
        }
        #[derive(serde::Serialize)]
        enum MessageFuture {
            Open(OpenV1, bool, u64),
        }
        let v1 = OpenV1 {
            protocol: 1,
            shard: "s".into(),
            origin: "o".into(),
            model_id: "m".into(),
            dims: 4,
            pull: true,
            push: false,
        };
        let mut body = vec![CODEC_PLAIN];
        body.extend(postcard::to_stdvec(&MessageV1::Open(v1)).unwrap());
        assert!(matches!(
            decode_body(&body, MAX),
            Err(Error::ProtocolVersion {
                local: PROTOCOL_VERSION,
                remote: 1
            })
        ));
        let future = OpenV1 {
            protocol: 4,
            shard: "s".into(),
            origin: "o".into(),
            model_id: "m".into(),
            dims: 4,
            pull: true,
            push: false,
        };
        let mut body = vec![CODEC_PLAIN];
        body.extend(postcard::to_stdvec(&MessageFuture::Open(future, true, 7)).unwrap());
        assert!(matches!(
            decode_body(&body, MAX),
            Err(Error::ProtocolVersion { remote: 4, .. })
        ));
        // Garbage that is not an `Open` stays a decode error.
        assert!(matches!(
            decode_body(&[CODEC_PLAIN, 3, 0xff], MAX),
            Err(Error::Decode { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random bytes never panic the decoder.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes, MAX);
            let _ = decode_body(&bytes, MAX);
        }

        /// Valid frames with random bytes flipped, inserted or cut never panic, and decode
        /// either to a message or to a typed error.
        #[test]
        fn mutated_frames_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            compressed in any::<bool>(),
        ) {
            let mut f = if compressed {
                batch_frame()
            } else {
                encode(&Message::Pull(Pull { req: 1, origin: Some("x".into()), after: 3, limit: 9, text_only: false }), 0, MAX)
                    .unwrap()
                    .bytes
            };
            for (i, b) in flips {
                let i = i.index(f.len());
                f[i] ^= b;
            }
            let end = cut.index(f.len() + 1);
            let _ = decode(&f[..end], MAX);
            let _ = decode(&f, MAX);
            let _ = decode_body(&f[4..], MAX);
        }
    }
}
