//! `p2pvm-agent`: the guest's PID 1 when the host asked for a command.
//!
//! `/init` execs this binary when `/p2pvm/exec` exists. It sends a hello
//! frame on `/dev/ttyS1`, runs `/bin/sh -c <contents of /p2pvm/exec>`,
//! streams the command's stdout and stderr as frames while it runs, reaps
//! every child (it is PID 1), sends the exit frame, and powers the guest off.
//! On any failure it sends an error frame instead and still powers off: PID 1
//! must never exit or panic. See `p2pvm_agent::proto` for the wire format.
//!
//! For tests on the host, `P2PVM_AGENT_TEST_OUT=<file>` writes the frames to
//! that file instead of the UART and exits (status 0 when the command ran, 1
//! on an agent error) instead of powering off; `P2PVM_AGENT_TEST_CMD=<cmd>`
//! then supplies the command instead of `/p2pvm/exec`.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use p2pvm_agent::proto::{self, Frame, MAX_CHUNK};

/// The file holding the command, put there by the host's appended initramfs.
const EXEC_FILE: &str = "/p2pvm/exec";
/// The UART the host reads frames from.
const AGENT_TTY: &str = "/dev/ttyS1";
/// Where human-readable notes go (ttyS0 in the guest).
const CONSOLE: &str = "/dev/console";
/// The command's whole environment.
const COMMAND_ENV: [(&str, &str); 3] = [
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("HOME", "/root"),
    ("TERM", "dumb"),
];
/// Test mode: write frames to this file and exit instead of powering off.
const TEST_OUT_VAR: &str = "P2PVM_AGENT_TEST_OUT";
/// Test mode: the command to run, instead of reading `EXEC_FILE`.
const TEST_CMD_VAR: &str = "P2PVM_AGENT_TEST_CMD";
/// While the shell runs, how often to look for exited children even when no
/// output arrives.
const REAP_INTERVAL: Duration = Duration::from_millis(100);
/// Once the shell has exited, stop reading after this long without output...
const DRAIN_QUIET: Duration = Duration::from_millis(200);
/// ...or after this long in all: background processes the command left
/// behind may hold its pipes open forever. Generous, because the pipes can
/// still hold 64 KiB per stream when the shell exits, and the UART moves
/// only tens of KiB per second under nested virtualization; a command whose
/// pipes reach EOF never waits for it.
const DRAIN_MAX: Duration = Duration::from_secs(60);

/// Longest wait for the UART to send the last frames before powering off.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How the agent was started.
struct Mode {
    /// `Some(file)` in test mode.
    test_out: Option<OsString>,
    /// The command given by the test environment, if any.
    test_cmd: Option<OsString>,
}

impl Mode {
    fn from_env() -> Self {
        let test_out = std::env::var_os(TEST_OUT_VAR).filter(|v| !v.is_empty());
        let test_cmd = test_out
            .as_ref()
            .and_then(|_| std::env::var_os(TEST_CMD_VAR));
        Mode { test_out, test_cmd }
    }

    fn is_test(&self) -> bool {
        self.test_out.is_some()
    }

    /// Writes a one-line note for humans to the console (stderr in tests).
    /// Failures are ignored: the note is only for debugging.
    fn note(&self, msg: &str) {
        let line = format!("p2pvm-agent: {msg}\n");
        if self.is_test() {
            let _ = io::stderr().write_all(line.as_bytes());
            return;
        }
        if let Ok(mut console) = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(CONSOLE)
        {
            let _ = console.write_all(line.as_bytes());
        }
    }
}

/// Where frames go: the agent UART, or a file in test mode.
struct Channel {
    file: File,
    is_tty: bool,
}

impl Channel {
    fn open(mode: &Mode) -> Result<Self, String> {
        match &mode.test_out {
            Some(path) => File::create(path)
                .map(|file| Channel {
                    file,
                    is_tty: false,
                })
                .map_err(|e| format!("cannot create {}: {e}", path.to_string_lossy())),
            None => open_tty(AGENT_TTY)
                .map(|file| Channel { file, is_tty: true })
                .map_err(|e| format!("cannot open {AGENT_TTY}: {e}")),
        }
    }

    fn send(&mut self, frame: &Frame) -> Result<(), String> {
        self.file
            .write_all(&proto::encode(frame))
            .map_err(|e| format!("cannot write to the host channel: {e}"))
    }

    /// Waits until everything written has left the UART, for at most
    /// `DRAIN_TIMEOUT`: a UART whose interrupt never comes must not keep the
    /// guest from powering off.
    fn drain(&self) {
        if !self.is_tty {
            return;
        }
        let Ok(file) = self.file.try_clone() else {
            return;
        };
        let (done, wait) = mpsc::channel();
        let drainer = thread::Builder::new().spawn(move || {
            // SAFETY: tcdrain only reads the descriptor number, which `file`
            // keeps open for the duration of the call.
            unsafe { libc::tcdrain(file.as_raw_fd()) };
            let _ = done.send(());
        });
        if drainer.is_ok() {
            let _ = wait.recv_timeout(DRAIN_TIMEOUT);
        }
    }
}

/// Opens a serial port for raw 8-bit output at 115200 baud.
fn open_tty(path: &str) -> io::Result<File> {
    // O_NONBLOCK so the open cannot wait for carrier detect before CLOCAL is
    // set; cleared again below.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    let fd = file.as_raw_fd();
    make_raw(fd)?;
    // SAFETY: fcntl on a descriptor `file` keeps open; no pointers involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Puts the tty in raw mode (what `cfmakeraw` does), ignoring modem control
/// lines and flow control, at 115200 baud.
fn make_raw(fd: RawFd) -> io::Result<()> {
    // SAFETY: termios is plain old data, so all-zero is a valid value; it is
    // overwritten by tcgetattr below.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `t` is a valid, writable termios.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    t.c_iflag &= !(libc::IGNBRK
        | libc::BRKINT
        | libc::PARMRK
        | libc::ISTRIP
        | libc::INLCR
        | libc::IGNCR
        | libc::ICRNL
        | libc::IXON
        | libc::IXOFF
        | libc::IXANY);
    t.c_oflag &= !libc::OPOST;
    t.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
    t.c_cflag &= !(libc::CSIZE | libc::PARENB | libc::CRTSCTS);
    t.c_cflag |= libc::CS8 | libc::CLOCAL | libc::CREAD;
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
    // 115200 baud in and out. Set directly rather than with cfset[io]speed:
    // the libc crate binds those to a versioned glibc symbol that a static
    // link cannot resolve. On Linux both speeds live in the CBAUD bits (an
    // input speed of 0 means "same as output").
    t.c_cflag = (t.c_cflag & !libc::CBAUD) | libc::B115200;
    t.c_ispeed = libc::B115200;
    t.c_ospeed = libc::B115200;
    // SAFETY: `fd` is open and `t` is a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn main() {
    let mode = Mode::from_env();
    let ok = agent(&mode);
    finish(&mode, ok)
}

/// Runs the whole protocol. Returns whether the command ran and its exit
/// frame was sent. Never panics.
fn agent(mode: &Mode) -> bool {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut chan = match Channel::open(mode) {
            Ok(chan) => chan,
            Err(msg) => {
                mode.note(&msg);
                return false;
            }
        };
        if let Err(msg) = chan.send(&Frame::hello()) {
            mode.note(&msg);
            return false;
        }
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| run(mode, &mut chan)))
            .unwrap_or_else(|payload| Err(format!("agent panicked: {}", panic_text(&*payload))));
        let (frame, ok) = match outcome {
            Ok(status) => {
                mode.note(&format!("command exited with status {status}"));
                (Frame::Exit(status), true)
            }
            Err(msg) => {
                mode.note(&format!("error: {msg}"));
                (Frame::Error(msg), false)
            }
        };
        let sent = chan.send(&frame);
        chan.drain();
        match sent {
            Ok(()) => ok,
            Err(msg) => {
                mode.note(&msg);
                false
            }
        }
    }));
    result.unwrap_or_else(|payload| {
        mode.note(&format!("agent panicked: {}", panic_text(&*payload)));
        false
    })
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Exits (test mode) or syncs and powers the guest off. PID 1 never returns.
fn finish(mode: &Mode, ok: bool) -> ! {
    if mode.is_test() {
        std::process::exit(if ok { 0 } else { 1 });
    }
    // Collect any zombies left behind; nothing waits for them otherwise.
    while let Ok(Some(_)) = wait_any(false) {}
    mode.note("powering off");
    // SAFETY: sync and reboot take no pointers; reboot only returns on
    // failure.
    let err = unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
        io::Error::last_os_error()
    };
    mode.note(&format!("power off failed: {err}"));
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        std::process::exit(1);
    }
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    }
}

/// Reads the command, runs it and streams its output. Returns the exit
/// status to report, or the message for an error frame.
fn run(mode: &Mode, chan: &mut Channel) -> Result<i32, String> {
    let command = match &mode.test_cmd {
        Some(cmd) => cmd.clone(),
        None => std::fs::read(EXEC_FILE)
            .map(OsString::from_vec)
            .map_err(|e| format!("cannot read the command from {EXEC_FILE}: {e}"))?,
    };
    if command
        .as_encoded_bytes()
        .iter()
        .all(u8::is_ascii_whitespace)
    {
        return Err(format!("the command in {EXEC_FILE} is empty"));
    }
    mode.note("running command");
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&command)
        .env_clear()
        .envs(COMMAND_ENV)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot spawn /bin/sh -c: {e}"))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| format!("bad child pid: {e}"))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("child has no stdout/stderr pipes".to_string());
    };
    // The child is reaped by `wait_any` below, never through `child`.
    drop(child);
    let pipes = [
        Pipe::new(OwnedFd::from(stdout), Frame::Stdout),
        Pipe::new(OwnedFd::from(stderr), Frame::Stderr),
    ];
    stream(chan, pipes, pid)
}

/// One of the command's output pipes.
struct Pipe {
    file: Option<File>,
    frame: fn(Vec<u8>) -> Frame,
}

impl Pipe {
    fn new(fd: OwnedFd, frame: fn(Vec<u8>) -> Frame) -> Self {
        Pipe {
            file: Some(File::from(fd)),
            frame,
        }
    }

    /// Reads one chunk (poll said it is ready) and forwards it. Closes the
    /// pipe at end of file or on a read error.
    fn forward(&mut self, chan: &mut Channel, buf: &mut [u8]) -> Result<bool, String> {
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        match file.read(buf) {
            Ok(0) => {
                self.file = None;
                Ok(false)
            }
            Ok(n) => chan.send(&(self.frame)(buf[..n].to_vec())).map(|()| true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(false)
            }
            Err(_) => {
                self.file = None;
                Ok(false)
            }
        }
    }
}

/// Streams both pipes until they close (or, once the shell has exited, go
/// quiet), reaping children all along. Returns the shell's exit status.
fn stream(chan: &mut Channel, mut pipes: [Pipe; 2], shell: libc::pid_t) -> Result<i32, String> {
    let mut buf = vec![0u8; MAX_CHUNK];
    let mut status = None;
    let mut exited_at = None::<Instant>;
    let mut last_data = Instant::now();
    loop {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(2);
        let mut which = Vec::with_capacity(2);
        for (i, p) in pipes.iter().enumerate() {
            if let Some(f) = &p.file {
                fds.push(libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                which.push(i);
            }
        }
        if fds.is_empty() {
            break;
        }
        if let Some(t) = exited_at {
            if t.elapsed() >= DRAIN_MAX || last_data.elapsed() >= DRAIN_QUIET {
                break;
            }
        }
        let timeout = if status.is_some() {
            DRAIN_QUIET
        } else {
            REAP_INTERVAL
        };
        let nfds = libc::nfds_t::try_from(fds.len()).unwrap_or(2);
        // SAFETY: `fds` is a valid array of `nfds` pollfds that lives across
        // the call, and every fd in it is kept open by `pipes`.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), nfds, timeout.as_millis() as libc::c_int) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll failed: {e}"));
            }
        }
        for (pfd, &i) in fds.iter().zip(&which) {
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
                && pipes[i].forward(chan, &mut buf)?
            {
                last_data = Instant::now();
            }
        }
        if status.is_none() {
            status = reap(shell, false)?;
            if status.is_some() {
                exited_at = Some(Instant::now());
                last_data = Instant::now();
            }
        }
    }
    match status {
        Some(s) => Ok(s),
        None => reap(shell, true).map(|s| s.unwrap_or(-1)),
    }
}

/// Reaps exited children (all of them: PID 1 inherits orphans). Returns the
/// shell's status once it has been reaped; `block` waits for it.
fn reap(shell: libc::pid_t, block: bool) -> Result<Option<i32>, String> {
    loop {
        match wait_any(block) {
            Ok(Some((pid, status))) if pid == shell => return Ok(Some(status)),
            Ok(Some(_)) => continue,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("waitpid failed: {e}")),
        }
    }
}

/// One `waitpid(-1)`: `Some((pid, exit status))` for a reaped child, `None`
/// when (not blocking) no child has exited yet. ECHILD is an error.
fn wait_any(block: bool) -> io::Result<Option<(libc::pid_t, i32)>> {
    loop {
        let mut st: libc::c_int = 0;
        let flags = if block { 0 } else { libc::WNOHANG };
        // SAFETY: `st` is a valid, writable c_int.
        let pid = unsafe { libc::waitpid(-1, &mut st, flags) };
        if pid > 0 {
            let status = if libc::WIFSIGNALED(st) {
                128 + libc::WTERMSIG(st)
            } else {
                libc::WEXITSTATUS(st)
            };
            return Ok(Some((pid, status)));
        }
        if pid == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens a pseudo-terminal pair: (master, slave path).
    fn pty() -> (File, String) {
        let master = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/ptmx")
            .expect("open /dev/ptmx");
        let fd = master.as_raw_fd();
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: `fd` is an open pty master and `name` is a writable buffer
        // of the length passed.
        unsafe {
            assert_eq!(libc::grantpt(fd), 0);
            assert_eq!(libc::unlockpt(fd), 0);
            assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        }
        // SAFETY: ptsname_r wrote a NUL-terminated string into `name`.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
        (master, path.to_string_lossy().into_owned())
    }

    #[test]
    fn tty_is_raw_and_passes_bytes_unmodified() {
        let (mut master, slave_path) = pty();
        let mut slave = open_tty(&slave_path).expect("open slave as agent tty");
        // SAFETY: all-zero termios is valid; tcgetattr overwrites it.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: the slave is open and `t` is writable.
        assert_eq!(unsafe { libc::tcgetattr(slave.as_raw_fd(), &mut t) }, 0);
        assert_eq!(t.c_oflag & libc::OPOST, 0);
        assert_eq!(t.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG), 0);
        assert_eq!(t.c_cflag & libc::CSIZE, libc::CS8);
        assert_ne!(t.c_cflag & libc::CLOCAL, 0);
        assert_eq!(t.c_cflag & libc::CBAUD, libc::B115200);
        // SAFETY: fcntl on an open descriptor.
        let flags = unsafe { libc::fcntl(slave.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "left non-blocking");

        let frame = Frame::Stdout(b"a\nb\r\x03\x04\x11\x13\x7f\0\xff".to_vec());
        let mut chan = Channel {
            file: slave.try_clone().expect("dup"),
            is_tty: true,
        };
        chan.send(&frame).expect("send");
        chan.drain();
        let want = proto::encode(&frame);
        let mut got = vec![0u8; want.len()];
        master.read_exact(&mut got).expect("read from master");
        assert_eq!(got, want);
        slave.flush().expect("flush");
    }

    #[test]
    fn wait_status_decoding() {
        for (cmd, want) in [
            ("exit 0", 0),
            ("exit 7", 7),
            ("exit 255", 255),
            ("kill -TERM $$", 128 + 15),
        ] {
            let child = Command::new("/bin/sh")
                .arg("-c")
                .arg(cmd)
                .spawn()
                .expect("spawn sh");
            let pid = libc::pid_t::try_from(child.id()).expect("pid");
            // Reaped by `reap` below, as the agent does.
            drop(child);
            assert_eq!(reap(pid, true), Ok(Some(want)), "{cmd}");
        }
    }
}
