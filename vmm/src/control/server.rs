//! Serving the control protocol: on a UNIX socket (a thread per client),
//! on one byte stream (the KVM host box's serial port), and the relay the
//! p2pvm outside the box runs from the user's socket to that port.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::{error_reply, Control};
use crate::error::{Error, Result};

/// Longest request line; longer ones get a `LineTooLong` error (the rest
/// of the line is read and dropped).
pub const MAX_LINE: usize = 64 << 10;

/// What one read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line (without its newline).
    Text(Vec<u8>),
    /// A line longer than [`MAX_LINE`], dropped.
    TooLong,
    /// The peer closed the stream (a partial last line is dropped).
    End,
}

/// Reads one line of at most [`MAX_LINE`] bytes.
pub fn read_line<R: BufRead>(r: &mut R) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(Line::End);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        r.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
    }
}

/// Writes the greeting, then answers each request line from `r` on `w`
/// with `answer` until the peer closes: empty lines are skipped, a line
/// past [`MAX_LINE`] gets a `LineTooLong` error.
fn serve_lines<R: BufRead, W: Write>(
    mut r: R,
    mut w: W,
    mut answer: impl FnMut(&str) -> io::Result<String>,
) -> io::Result<()> {
    writeln!(w, "{}", Control::greeting())?;
    w.flush()?;
    loop {
        let reply = match read_line(&mut r)? {
            Line::End => return Ok(()),
            Line::TooLong => error_reply(
                "LineTooLong",
                &format!("request longer than {MAX_LINE} bytes"),
                None,
            ),
            Line::Text(t) => {
                let text = String::from_utf8_lossy(&t);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                answer(text)?
            }
        };
        writeln!(w, "{reply}")?;
        w.flush()?;
    }
}

/// Serves requests from `r`, replies to `w`, until the peer closes; the
/// greeting first.
pub fn serve_stream<R: BufRead, W: Write>(r: R, w: W, control: &Control) -> io::Result<()> {
    serve_lines(r, w, |text| Ok(control.handle(text)))
}

/// Binds `path` (replacing a stale socket there).
fn bind(path: &Path) -> Result<UnixListener> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        } else {
            return Err(Error::Usage(format!(
                "--control {}: exists and is not a socket",
                path.display()
            )));
        }
    }
    UnixListener::bind(path).map_err(|e| Error::io(format!("binding {}", path.display()), e))
}

/// Serves `control` on a UNIX socket at `path`, a thread per client.
pub fn serve_unix(path: &Path, control: Arc<Control>) -> Result<()> {
    let listener = bind(path)?;
    let name = path.display().to_string();
    thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                let control = control.clone();
                let _ = thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || {
                        let Ok(read) = stream.try_clone() else { return };
                        if let Err(e) = serve_stream(BufReader::new(read), &stream, &control) {
                            log::debug!("control client: {e}");
                        }
                    });
            }
            log::debug!("control socket {name} closed");
        })
        .map_err(|e| Error::io("starting the control thread", e))?;
    Ok(())
}

/// The p2pvm outside the KVM host box: serves the user's socket at `path`
/// and forwards each request line to the VMM in the box over the stream
/// QEMU offers at `upstream` (the box's serial port), one request at a
/// time, so several clients work. Requests wait until the VMM has sent
/// its greeting.
pub fn relay(path: &Path, upstream: PathBuf) -> Result<()> {
    let listener = bind(path)?;
    let up: Arc<Upstream> = Arc::new(Mutex::new(None));
    let ready = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    {
        let (up, ready) = (up.clone(), ready.clone());
        thread::Builder::new()
            .name("control-upstream".into())
            .spawn(move || {
                // QEMU creates the socket as it starts.
                let stream = loop {
                    match UnixStream::connect(&upstream) {
                        Ok(s) => break s,
                        Err(_) => thread::sleep(Duration::from_millis(100)),
                    }
                };
                let Ok(w) = stream.try_clone() else { return };
                let mut r = BufReader::new(stream);
                // The VMM's greeting says it is serving.
                loop {
                    match read_line(&mut r) {
                        Ok(Line::Text(t)) if t.starts_with(b"{\"p2pvm\"") => break,
                        Ok(Line::End) | Err(_) => return,
                        _ => {}
                    }
                }
                *up.lock().unwrap_or_else(|p| p.into_inner()) = Some((r, w));
                let (m, cv) = &*ready;
                *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
                cv.notify_all();
            })
            .map_err(|e| Error::io("starting the control relay", e))?;
    }
    thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                let (up, ready) = (up.clone(), ready.clone());
                let _ = thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || {
                        let _ = relay_client(stream, &up, &ready);
                    });
            }
        })
        .map_err(|e| Error::io("starting the control relay", e))?;
    Ok(())
}

type Upstream = Mutex<Option<(BufReader<UnixStream>, UnixStream)>>;

fn relay_client(
    stream: UnixStream,
    up: &Upstream,
    ready: &(Mutex<bool>, std::sync::Condvar),
) -> io::Result<()> {
    let w = stream.try_clone()?;
    serve_lines(BufReader::new(stream), w, |text| {
        let (m, cv) = ready;
        let mut ok = m.lock().unwrap_or_else(|p| p.into_inner());
        while !*ok {
            ok = cv.wait(ok).unwrap_or_else(|p| p.into_inner());
        }
        drop(ok);
        let mut g = up.lock().unwrap_or_else(|p| p.into_inner());
        let Some((ur, uw)) = g.as_mut() else {
            return Ok(error_reply("GenericError", "the VM is not running", None));
        };
        writeln!(uw, "{text}")?;
        Ok(match read_line(ur)? {
            Line::Text(t) => String::from_utf8_lossy(&t).into_owned(),
            _ => {
                *g = None;
                error_reply("GenericError", "the VM has stopped", None)
            }
        })
    })
}
/// Serves `control` on the serial device `tty` (inside the KVM host box),
/// put in raw mode first so bytes pass unchanged and nothing echoes.
pub fn serve_tty(tty: &Path, control: Arc<Control>) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(tty)
        .map_err(|e| Error::io(format!("opening {}", tty.display()), e))?;
    raw(&file).map_err(|e| Error::io(format!("setting {} raw", tty.display()), e))?;
    let read = file
        .try_clone()
        .map_err(|e| Error::io(format!("opening {}", tty.display()), e))?;
    thread::Builder::new()
        .name("control-tty".into())
        .spawn(move || {
            if let Err(e) = serve_stream(BufReader::new(read), &file, &control) {
                log::debug!("control port: {e}");
            }
        })
        .map_err(|e| Error::io("starting the control thread", e))?;
    Ok(())
}

fn raw(f: &std::fs::File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: termios is plain data filled by tcgetattr on our own fd.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
