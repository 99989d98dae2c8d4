//! Where the guest's serial output goes and where its input comes from:
//! the console log (COM1), the agent channel (COM2), and stdin forwarding.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use event_manager::{EventOps, Events, MutEventSubscriber};
use p2pvm_agent::proto::{Decoder, Frame};
use vmm_sys_util::epoll::EventSet;

use crate::devices::serial::SerialPort;
use crate::devices::{ExitSender, VmExit};

/// How many bytes of console output we keep for error reports.
const CONSOLE_TAIL: usize = 64 * 1024;

/// Console (COM1) output: optionally echoed, always kept as a tail.
#[derive(Clone)]
pub struct ConsoleLog {
    tail: Arc<Mutex<VecDeque<u8>>>,
    echo: Option<Arc<Mutex<dyn Write + Send>>>,
}

impl ConsoleLog {
    /// A console log that echoes to `echo` (stdout or stderr) when given.
    pub fn new(echo: Option<Arc<Mutex<dyn Write + Send>>>) -> Self {
        ConsoleLog {
            tail: Arc::new(Mutex::new(VecDeque::with_capacity(CONSOLE_TAIL))),
            echo,
        }
    }

    /// The last `lines` lines the guest printed on its console.
    pub fn last_lines(&self, lines: usize) -> String {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        let (a, b) = tail.as_slices();
        let text = String::from_utf8_lossy(&[a, b].concat()).replace('\r', "");
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Write for ConsoleLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        {
            let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
            for b in buf {
                if tail.len() == CONSOLE_TAIL {
                    tail.pop_front();
                }
                tail.push_back(*b);
            }
        }
        if let Some(echo) = &self.echo {
            let mut w = echo.lock().unwrap_or_else(|p| p.into_inner());
            w.write_all(buf)?;
            w.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the guest agent reported.
#[derive(Debug, Default, Clone)]
pub struct AgentReport {
    /// The agent said hello: the guest reached our /init.
    pub started: bool,
    /// Exit status of the command, once it ended.
    pub status: Option<i32>,
    /// Errors the agent reported.
    pub errors: Vec<String>,
}

/// Agent channel (COM2) sink: decodes frames, streams the command's output
/// to our stdout and stderr, and records its exit status.
pub struct AgentSink {
    decoder: Decoder,
    report: Arc<Mutex<AgentReport>>,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
}

impl AgentSink {
    /// A sink that writes the command's output to the given streams.
    pub fn new(
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> (Self, Arc<Mutex<AgentReport>>) {
        let report = Arc::new(Mutex::new(AgentReport::default()));
        let sink = AgentSink {
            decoder: Decoder::new(),
            report: report.clone(),
            stdout,
            stderr,
        };
        (sink, report)
    }
}

impl Write for AgentSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for frame in self.decoder.push(buf) {
            let mut report = self.report.lock().unwrap_or_else(|p| p.into_inner());
            match frame {
                Frame::Hello(_) => report.started = true,
                Frame::Stdout(b) => {
                    self.stdout.write_all(&b)?;
                    self.stdout.flush()?;
                }
                Frame::Stderr(b) => {
                    self.stderr.write_all(&b)?;
                    self.stderr.flush()?;
                }
                Frame::Exit(code) => report.status = Some(code),
                Frame::Error(msg) => {
                    log::warn!("guest agent: {msg}");
                    report.errors.push(msg);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Ctrl-A: the console escape prefix.
const ESCAPE: u8 = 0x01;

/// Forwards stdin to the console UART; Ctrl-A x quits the VM.
pub struct StdinForwarder<W: Write + Send + 'static> {
    uart: Arc<Mutex<SerialPort<W>>>,
    exit: ExitSender,
    escaped: bool,
    pending: Vec<u8>,
}

impl<W: Write + Send + 'static> StdinForwarder<W> {
    /// Forwards into `uart`; reports Ctrl-A x on `exit`.
    pub fn new(uart: Arc<Mutex<SerialPort<W>>>, exit: ExitSender) -> Self {
        StdinForwarder {
            uart,
            exit,
            escaped: false,
            pending: Vec::new(),
        }
    }

    /// Filters the console escape out of `input`; returns what goes to the guest.
    fn filter(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.escaped {
                self.escaped = false;
                match b {
                    b'x' | b'X' => {
                        let _ = self.exit.send(VmExit::UserQuit);
                    }
                    ESCAPE => out.push(ESCAPE),
                    other => out.extend_from_slice(&[ESCAPE, other]),
                }
            } else if b == ESCAPE {
                self.escaped = true;
            } else {
                out.push(b);
            }
        }
        out
    }

    /// Pushes pending input into the UART FIFO as far as it has room.
    pub fn drain(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut uart = self.uart.lock().unwrap_or_else(|p| p.into_inner());
        let n = uart.enqueue(&self.pending);
        self.pending.drain(..n);
    }
}

impl<W: Write + Send + 'static> MutEventSubscriber for StdinForwarder<W> {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let mut buf = [0u8; 256];
        if events.event_set().contains(EventSet::IN) {
            match io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => {
                    // EOF: stop watching stdin, the guest keeps running.
                    let _ = ops.remove(events);
                }
                Ok(n) => {
                    let bytes = self.filter(&buf[..n]);
                    self.pending.extend_from_slice(&bytes);
                }
            }
        } else {
            let _ = ops.remove(events);
        }
        self.drain();
    }

    fn init(&mut self, ops: &mut EventOps) {
        let stdin = io::stdin();
        if let Err(e) = ops.add(Events::new(&stdin.as_raw_fd(), EventSet::IN)) {
            log::warn!("cannot watch stdin: {e:?}");
        }
    }
}

/// Puts the terminal on stdin in raw mode and restores it when dropped.
pub struct RawTerminal {
    saved: Option<libc::termios>,
}

impl RawTerminal {
    /// Raw mode when stdin is a terminal; a no-op otherwise.
    pub fn enter() -> Self {
        let fd = io::stdin().as_raw_fd();
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(fd) } != 1 {
            return RawTerminal { saved: None };
        }
        // SAFETY: termios is plain data; tcgetattr fills it for a valid tty fd.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is a terminal and `t` is a valid termios to fill.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return RawTerminal { saved: None };
        }
        let saved = t;
        // SAFETY: cfmakeraw edits the struct we own.
        unsafe { libc::cfmakeraw(&mut t) };
        // Keep output post-processing so our own messages line up.
        t.c_oflag |= libc::OPOST | libc::ONLCR;
        // SAFETY: valid fd and termios.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = self.saved {
            // SAFETY: restores the settings read in `enter` on the same fd.
            unsafe { libc::tcsetattr(io::stdin().as_raw_fd(), libc::TCSANOW, &t) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2pvm_agent::proto::encode;

    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn agent_sink_splits_streams_and_records_status() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let (mut sink, report) =
            AgentSink::new(Box::new(Shared(out.clone())), Box::new(Shared(err.clone())));
        let mut bytes = encode(&Frame::Hello(b"p2pvm-agent 1".to_vec()));
        bytes.extend(encode(&Frame::Stdout(b"hello\n".to_vec())));
        bytes.extend(encode(&Frame::Stderr(b"oops\n".to_vec())));
        bytes.extend(encode(&Frame::Exit(7)));
        // Byte at a time, as the UART delivers it.
        for b in &bytes {
            sink.write_all(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(&*out.lock().unwrap(), b"hello\n");
        assert_eq!(&*err.lock().unwrap(), b"oops\n");
        let r = report.lock().unwrap();
        assert!(r.started);
        assert_eq!(r.status, Some(7));
    }

    #[test]
    fn console_tail_keeps_last_lines() {
        let mut log = ConsoleLog::new(None);
        for i in 0..100 {
            write!(log, "line {i}\r\n").unwrap();
        }
        assert_eq!(log.last_lines(2), "line 98\nline 99");
    }
}
