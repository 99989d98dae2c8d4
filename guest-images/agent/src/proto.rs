//! The agent's wire protocol: guest → host frames on `/dev/ttyS1`.
//!
//! The stream is a sequence of frames, each laid out as
//!
//! ```text
//! +------+----------------------+-----------------+
//! | kind | payload length (u32  | payload         |
//! | (u8) | little-endian)       | (length bytes)  |
//! +------+----------------------+-----------------+
//! ```
//!
//! | kind   | frame                | payload                                   |
//! |--------|----------------------|-------------------------------------------|
//! | `b'H'` | [`Frame::Hello`]     | `p2pvm-agent 1` ([`HELLO`]), sent once    |
//! | `b'O'` | [`Frame::Stdout`]    | a chunk of the command's stdout           |
//! | `b'E'` | [`Frame::Stderr`]    | a chunk of the command's stderr           |
//! | `b'X'` | [`Frame::Exit`]      | `i32` little-endian exit status           |
//! | `b'!'` | [`Frame::Error`]     | UTF-8 message from the agent              |
//!
//! The exit status is the command's exit code, or 128 + the signal number if
//! a signal killed it. The agent sends output chunks of at most
//! [`MAX_CHUNK`] bytes; the decoder accepts payloads up to [`MAX_PAYLOAD`].
//!
//! [`Decoder`] is a streaming decoder: feed it whatever the UART produced and
//! it returns the frames completed so far. A byte that cannot start a frame
//! (an unknown kind, a length above [`MAX_PAYLOAD`], an exit frame whose
//! length is not 4) yields a [`Frame::Error`] whose message starts with
//! [`DECODER_ERROR_PREFIX`], and the decoder resynchronises by dropping that
//! one byte and trying again at the next. Its output does not depend on how
//! the input was split between calls to [`Decoder::push`].

use std::fmt;

/// Kind byte of [`Frame::Hello`].
pub const KIND_HELLO: u8 = b'H';
/// Kind byte of [`Frame::Stdout`].
pub const KIND_STDOUT: u8 = b'O';
/// Kind byte of [`Frame::Stderr`].
pub const KIND_STDERR: u8 = b'E';
/// Kind byte of [`Frame::Exit`].
pub const KIND_EXIT: u8 = b'X';
/// Kind byte of [`Frame::Error`].
pub const KIND_ERROR: u8 = b'!';

/// Size of a frame header: the kind byte and the u32 length.
pub const HEADER_LEN: usize = 5;
/// Largest payload the decoder accepts (1 MiB); longer lengths are rejected.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Largest stdout/stderr chunk the agent sends in one frame.
pub const MAX_CHUNK: usize = 4096;
/// Payload of the hello frame the agent sends once at start.
pub const HELLO: &[u8] = b"p2pvm-agent 1";
/// Prefix of the messages in [`Frame::Error`]s made by [`Decoder`] itself (as
/// opposed to errors reported by the agent).
pub const DECODER_ERROR_PREFIX: &str = "decoder: ";

/// One message from the guest agent.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// Sent once when the agent starts; payload is [`HELLO`].
    Hello(Vec<u8>),
    /// A chunk of the command's standard output.
    Stdout(Vec<u8>),
    /// A chunk of the command's standard error.
    Stderr(Vec<u8>),
    /// The command finished: its exit code, or 128 + signal number.
    Exit(i32),
    /// The agent could not do its job (or, from [`Decoder`], the stream was
    /// corrupt; see [`DECODER_ERROR_PREFIX`]).
    Error(String),
}

impl Frame {
    /// The hello frame the agent sends at start.
    pub fn hello() -> Self {
        Frame::Hello(HELLO.to_vec())
    }

    /// The frame's kind byte on the wire.
    pub fn kind(&self) -> u8 {
        match self {
            Frame::Hello(_) => KIND_HELLO,
            Frame::Stdout(_) => KIND_STDOUT,
            Frame::Stderr(_) => KIND_STDERR,
            Frame::Exit(_) => KIND_EXIT,
            Frame::Error(_) => KIND_ERROR,
        }
    }

    /// True for an error frame made by [`Decoder`] for corrupt input.
    pub fn is_decoder_error(&self) -> bool {
        matches!(self, Frame::Error(m) if m.starts_with(DECODER_ERROR_PREFIX))
    }
}

impl fmt::Debug for Frame {
    // Output chunks are shown as (lossy) text: they are nearly always text,
    // and test failures are much easier to read that way.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Hello(p) => write!(f, "Hello({:?})", String::from_utf8_lossy(p)),
            Frame::Stdout(p) => write!(f, "Stdout({:?})", String::from_utf8_lossy(p)),
            Frame::Stderr(p) => write!(f, "Stderr({:?})", String::from_utf8_lossy(p)),
            Frame::Exit(s) => write!(f, "Exit({s})"),
            Frame::Error(m) => write!(f, "Error({m:?})"),
        }
    }
}

/// Encodes one frame: kind byte, u32 little-endian payload length, payload.
///
/// # Panics
///
/// If the payload is longer than `u32::MAX` bytes (the decoder would reject
/// anything above [`MAX_PAYLOAD`] anyway).
pub fn encode(frame: &Frame) -> Vec<u8> {
    let exit;
    let payload: &[u8] = match frame {
        Frame::Hello(p) | Frame::Stdout(p) | Frame::Stderr(p) => p,
        Frame::Exit(status) => {
            exit = status.to_le_bytes();
            &exit
        }
        Frame::Error(m) => m.as_bytes(),
    };
    let len = u32::try_from(payload.len()).expect("frame payload longer than u32::MAX");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(frame.kind());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Streaming frame decoder; see the [module documentation](self).
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes received but not yet consumed; `buf[start..]` is pending.
    buf: Vec<u8>,
    start: usize,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes` (any split of the stream, even empty) and returns the
    /// frames completed by them, in order, including [`Frame::Error`]s for
    /// bytes dropped while resynchronising.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while let Some(frame) = self.next_frame() {
            frames.push(frame);
        }
        // Compact once per push rather than once per frame.
        if self.start == self.buf.len() {
            self.buf.clear();
        } else if self.start > 0 {
            self.buf.drain(..self.start);
        }
        self.start = 0;
        frames
    }

    /// Number of bytes held back waiting for the rest of a frame. Non-zero at
    /// the end of a stream means the last frame was truncated.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Decodes the next frame or rejected byte from the pending bytes, or
    /// returns `None` when more input is needed.
    fn next_frame(&mut self) -> Option<Frame> {
        let pending = &self.buf[self.start..];
        let &kind = pending.first()?;
        if !matches!(
            kind,
            KIND_HELLO | KIND_STDOUT | KIND_STDERR | KIND_EXIT | KIND_ERROR
        ) {
            return Some(self.reject(format!("unknown frame kind 0x{kind:02x}")));
        }
        let header: [u8; 4] = pending.get(1..HEADER_LEN)?.try_into().ok()?;
        let len = u32::from_le_bytes(header) as usize;
        if len > MAX_PAYLOAD {
            return Some(self.reject(format!(
                "frame kind {:?} has length {len}, above the {MAX_PAYLOAD}-byte limit",
                kind as char
            )));
        }
        if kind == KIND_EXIT && len != 4 {
            return Some(self.reject(format!("exit frame has length {len}, expected 4")));
        }
        let payload = pending.get(HEADER_LEN..HEADER_LEN + len)?;
        let frame = match kind {
            KIND_HELLO => Frame::Hello(payload.to_vec()),
            KIND_STDOUT => Frame::Stdout(payload.to_vec()),
            KIND_STDERR => Frame::Stderr(payload.to_vec()),
            KIND_EXIT => Frame::Exit(i32::from_le_bytes(
                payload.try_into().expect("length checked above"),
            )),
            _ => Frame::Error(String::from_utf8_lossy(payload).into_owned()),
        };
        self.start += HEADER_LEN + len;
        Some(frame)
    }

    /// Drops the first pending byte and describes why.
    fn reject(&mut self, why: String) -> Frame {
        self.start += 1;
        Frame::Error(format!("{DECODER_ERROR_PREFIX}{why}; dropped one byte"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Frame> {
        vec![
            Frame::hello(),
            Frame::Stdout(b"hello\n".to_vec()),
            Frame::Stderr(b"oops\n".to_vec()),
            Frame::Stdout(Vec::new()),
            Frame::Stdout((0..=255u8).collect()),
            Frame::Stderr(vec![b'x'; MAX_CHUNK]),
            Frame::Error("cannot spawn /bin/sh: ENOENT — ü".to_string()),
            Frame::Error(String::new()),
            Frame::Exit(0),
            Frame::Exit(7),
            Frame::Exit(-1),
            Frame::Exit(i32::MIN),
            Frame::Exit(i32::MAX),
        ]
    }

    fn stream(frames: &[Frame]) -> Vec<u8> {
        frames.iter().flat_map(encode).collect()
    }

    #[test]
    fn encodes_exact_wire_format() {
        assert_eq!(
            encode(&Frame::hello()),
            b"H\x0d\x00\x00\x00p2pvm-agent 1".to_vec()
        );
        assert_eq!(encode(&Frame::Stdout(b"ab".to_vec())), b"O\x02\0\0\0ab");
        assert_eq!(encode(&Frame::Stderr(b"c".to_vec())), b"E\x01\0\0\0c");
        assert_eq!(encode(&Frame::Exit(7)), b"X\x04\0\0\0\x07\0\0\0");
        assert_eq!(encode(&Frame::Exit(137)), b"X\x04\0\0\0\x89\0\0\0");
        assert_eq!(encode(&Frame::Exit(-2)), b"X\x04\0\0\0\xfe\xff\xff\xff");
        assert_eq!(encode(&Frame::Error("no".into())), b"!\x02\0\0\0no");
        assert_eq!(encode(&Frame::Stdout(Vec::new())), b"O\0\0\0\0");
        let big = encode(&Frame::Stdout(vec![0; 0x1_0203]));
        assert_eq!(&big[..5], b"O\x03\x02\x01\x00");
        assert_eq!(big.len(), 5 + 0x1_0203);
    }

    #[test]
    fn kinds_match_constants() {
        assert_eq!(Frame::hello().kind(), b'H');
        assert_eq!(Frame::Stdout(vec![]).kind(), b'O');
        assert_eq!(Frame::Stderr(vec![]).kind(), b'E');
        assert_eq!(Frame::Exit(0).kind(), b'X');
        assert_eq!(Frame::Error(String::new()).kind(), b'!');
    }

    #[test]
    fn round_trips_each_frame() {
        for frame in sample() {
            let mut d = Decoder::new();
            assert_eq!(d.push(&encode(&frame)), vec![frame.clone()]);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn round_trips_a_stream_in_one_push() {
        let frames = sample();
        let mut d = Decoder::new();
        assert_eq!(d.push(&stream(&frames)), frames);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn byte_at_a_time() {
        let frames = sample();
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in stream(&frames) {
            got.extend(d.push(&[b]));
        }
        assert_eq!(got, frames);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn split_at_every_boundary() {
        let frames = vec![
            Frame::hello(),
            Frame::Stdout(b"out".to_vec()),
            Frame::Stderr(b"err".to_vec()),
            Frame::Error("bad".into()),
            Frame::Exit(-7),
        ];
        let bytes = stream(&frames);
        for cut in 0..=bytes.len() {
            let mut d = Decoder::new();
            let mut got = d.push(&bytes[..cut]);
            got.extend(d.push(&bytes[cut..]));
            assert_eq!(got, frames, "cut at {cut}");
            assert_eq!(d.buffered(), 0);
        }
        // Two cuts, every pair.
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let mut d = Decoder::new();
                let mut got = d.push(&bytes[..a]);
                got.extend(d.push(&bytes[a..b]));
                got.extend(d.push(&bytes[b..]));
                assert_eq!(got, frames, "cuts at {a}, {b}");
            }
        }
    }

    #[test]
    fn empty_push_and_partial_frames() {
        let mut d = Decoder::new();
        assert!(d.push(&[]).is_empty());
        assert!(d.push(b"O").is_empty());
        assert_eq!(d.buffered(), 1);
        assert!(d.push(b"\x03\0\0").is_empty());
        assert!(d.push(b"\0a").is_empty());
        assert_eq!(d.buffered(), 6);
        assert!(d.push(&[]).is_empty());
        assert_eq!(d.push(b"bcO"), vec![Frame::Stdout(b"abc".to_vec())]);
        assert_eq!(d.buffered(), 1);
    }

    #[test]
    fn unknown_kind_is_rejected_one_byte_at_a_time() {
        let mut bytes = b"zq".to_vec();
        bytes.extend(encode(&Frame::Exit(3)));
        let mut d = Decoder::new();
        let got = d.push(&bytes);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].is_decoder_error());
        assert!(
            matches!(&got[0], Frame::Error(m) if m.contains("0x7a")),
            "{got:?}"
        );
        assert!(
            matches!(&got[1], Frame::Error(m) if m.contains("0x71")),
            "{got:?}"
        );
        assert_eq!(got[2], Frame::Exit(3));
        assert!(!got[2].is_decoder_error());
        assert!(!Frame::Error("agent".into()).is_decoder_error());
    }

    #[test]
    fn oversized_length_is_rejected() {
        let mut bytes = vec![b'O'];
        bytes.extend(((MAX_PAYLOAD + 1) as u32).to_le_bytes());
        bytes.extend(encode(&Frame::Stdout(b"ok".to_vec())));
        let mut d = Decoder::new();
        let got = d.push(&bytes);
        // The bad 'O' is dropped; its four length bytes (01 00 10 00) are
        // unknown kinds; then the good frame.
        assert_eq!(got.len(), 6, "{got:?}");
        assert!(
            matches!(&got[0], Frame::Error(m) if m.contains("limit")),
            "{got:?}"
        );
        assert!(got[..5].iter().all(Frame::is_decoder_error));
        assert_eq!(got[5], Frame::Stdout(b"ok".to_vec()));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn max_payload_is_accepted() {
        let frame = Frame::Stdout(vec![0xa5; MAX_PAYLOAD]);
        let mut d = Decoder::new();
        assert_eq!(d.push(&encode(&frame)), vec![frame]);
    }

    #[test]
    fn exit_with_wrong_length_is_rejected() {
        let mut bytes = b"X\x05\0\0\0".to_vec();
        bytes.extend(encode(&Frame::Exit(1)));
        let got = Decoder::new().push(&bytes);
        assert!(
            matches!(&got[0], Frame::Error(m) if m.contains("expected 4")),
            "{got:?}"
        );
        assert_eq!(got.last(), Some(&Frame::Exit(1)));
        // 'X', then 05 00 00 00 are each unknown kinds.
        assert_eq!(got.len(), 6, "{got:?}");
    }

    #[test]
    fn invalid_utf8_error_is_decoded_lossily() {
        let got = Decoder::new().push(b"!\x03\0\0\0a\xffb");
        assert_eq!(got, vec![Frame::Error("a\u{fffd}b".into())]);
    }

    #[test]
    fn resynchronises_after_garbage_anywhere() {
        let frames = vec![
            Frame::hello(),
            Frame::Stdout(b"data".to_vec()),
            Frame::Exit(0),
        ];
        // Bytes that cannot start a frame (a stray valid kind byte would be
        // taken as a header: the stream has no checksum).
        let garbage: &[&[u8]] = &[b"\x00", b"\xff\xfe", b"garbage?", b"\r\n"];
        for g in garbage {
            let mut bytes = g.to_vec();
            bytes.extend(stream(&frames));
            let got = Decoder::new().push(&bytes);
            let good: Vec<_> = got
                .iter()
                .filter(|f| !f.is_decoder_error())
                .cloned()
                .collect();
            assert_eq!(good, frames, "garbage {g:?}: {got:?}");
            assert!(got.iter().take_while(|f| f.is_decoder_error()).count() >= 1);
        }
    }

    #[test]
    fn output_does_not_depend_on_split_even_with_garbage() {
        let mut bytes = b"\x01\x02zz".to_vec();
        bytes.extend(stream(&sample()[..4]));
        bytes.extend(b"O\xff\xff\xff\xff");
        bytes.extend(b"X\x01\0\0\0");
        bytes.extend(stream(&sample()[7..]));
        let whole = Decoder::new().push(&bytes);
        for cut in 0..=bytes.len() {
            let mut d = Decoder::new();
            let mut got = d.push(&bytes[..cut]);
            got.extend(d.push(&bytes[cut..]));
            assert_eq!(got, whole, "cut at {cut}");
        }
        let mut d = Decoder::new();
        let one_by_one: Vec<_> = bytes.iter().flat_map(|b| d.push(&[*b])).collect();
        assert_eq!(one_by_one, whole);
    }

    #[test]
    fn pseudo_random_garbage_never_panics_and_recovers() {
        // xorshift: deterministic, no dependencies.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut d = Decoder::new();
            let mut got = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                let n = 1 + (next() % 7) as usize;
                let end = (i + n).min(bytes.len());
                got.extend(d.push(&bytes[i..end]));
                i = end;
            }
            // Random bytes may leave a plausible partial frame pending (at
            // most a header plus 1 MiB); after zero filler completes it, the
            // decoder drops the rest of the zeros and finds the next frame.
            assert!(d.buffered() < HEADER_LEN + MAX_PAYLOAD);
            bytes.clear();
            let tail = Frame::Exit(42);
            let mut rounds = 0;
            while d.push(&encode(&tail)).last() != Some(&tail) {
                rounds += 1;
                assert!(rounds < 1000, "decoder never resynchronised");
                d.push(&[0u8; 4096]);
            }
            // Every byte was either part of a frame or reported as dropped.
            let dropped = got.iter().filter(|f| f.is_decoder_error()).count();
            assert!(dropped <= len);
        }
    }

    #[test]
    fn debug_is_readable() {
        assert_eq!(
            format!("{:?}", Frame::Stdout(b"hi\n".to_vec())),
            r#"Stdout("hi\n")"#
        );
        assert_eq!(format!("{:?}", Frame::Exit(3)), "Exit(3)");
    }
}
