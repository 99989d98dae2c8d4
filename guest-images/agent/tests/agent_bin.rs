//! Runs the built `p2pvm-agent` in test mode (frames to a file, exit instead
//! of power off) and decodes what it wrote.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use p2pvm_agent::proto::{Decoder, Frame, HELLO, MAX_CHUNK};

/// Output of one agent run.
struct Run {
    frames: Vec<Frame>,
    exit_code: Option<i32>,
    elapsed: Duration,
}

impl Run {
    fn stdout(&self) -> Vec<u8> {
        self.frames
            .iter()
            .filter_map(|f| match f {
                Frame::Stdout(b) => Some(b.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    fn stderr(&self) -> Vec<u8> {
        self.frames
            .iter()
            .filter_map(|f| match f {
                Frame::Stderr(b) => Some(b.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }
}

fn out_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "p2pvm-agent-test-{}-{name}.bin",
        std::process::id()
    ))
}

fn run_agent(name: &str, cmd: Option<&str>) -> Run {
    let out = out_file(name);
    let mut c = Command::new(env!("CARGO_BIN_EXE_p2pvm-agent"));
    c.env("P2PVM_AGENT_TEST_OUT", &out);
    match cmd {
        Some(cmd) => c.env("P2PVM_AGENT_TEST_CMD", cmd),
        None => c.env_remove("P2PVM_AGENT_TEST_CMD"),
    };
    let start = Instant::now();
    let status = c.status().expect("run p2pvm-agent");
    let elapsed = start.elapsed();
    let bytes = std::fs::read(&out).expect("agent wrote its output file");
    let _ = std::fs::remove_file(&out);
    let mut d = Decoder::new();
    let frames = d.push(&bytes);
    assert_eq!(d.buffered(), 0, "truncated frame at the end: {frames:?}");
    assert!(
        frames.iter().all(|f| !f.is_decoder_error()),
        "corrupt stream: {frames:?}"
    );
    Run {
        frames,
        exit_code: status.code(),
        elapsed,
    }
}

#[test]
fn streams_stdout_stderr_and_exit_status() {
    let r = run_agent(
        "basic",
        Some("echo out-one; echo err-one >&2; echo out-two; printf err-two >&2; exit 7"),
    );
    assert_eq!(r.frames.first(), Some(&Frame::Hello(HELLO.to_vec())));
    assert_eq!(r.frames.last(), Some(&Frame::Exit(7)), "{:?}", r.frames);
    assert_eq!(r.stdout(), b"out-one\nout-two\n");
    assert_eq!(r.stderr(), b"err-one\nerr-two");
    let hellos = r
        .frames
        .iter()
        .filter(|f| matches!(f, Frame::Hello(_)))
        .count();
    let exits = r
        .frames
        .iter()
        .filter(|f| matches!(f, Frame::Exit(_)))
        .count();
    assert_eq!((hellos, exits), (1, 1));
    assert_eq!(r.exit_code, Some(0));
}

#[test]
fn large_output_is_chunked() {
    let r = run_agent(
        "large",
        Some("head -c 100000 /dev/zero | tr '\\0' a; head -c 9000 /dev/zero | tr '\\0' b >&2"),
    );
    assert_eq!(r.stdout(), vec![b'a'; 100_000]);
    assert_eq!(r.stderr(), vec![b'b'; 9000]);
    for f in &r.frames {
        if let Frame::Stdout(b) | Frame::Stderr(b) = f {
            assert!(
                !b.is_empty() && b.len() <= MAX_CHUNK,
                "chunk of {}",
                b.len()
            );
        }
    }
    assert_eq!(r.frames.last(), Some(&Frame::Exit(0)));
}

#[test]
fn output_is_streamed_before_exit() {
    // The first chunk must be sent while the command still runs: check that
    // the agent wrote it to the file before the sleep ended.
    let out = out_file("stream");
    let mut child = Command::new(env!("CARGO_BIN_EXE_p2pvm-agent"))
        .env("P2PVM_AGENT_TEST_OUT", &out)
        .env("P2PVM_AGENT_TEST_CMD", "echo early; sleep 2; echo late")
        .spawn()
        .expect("spawn agent");
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let bytes = std::fs::read(&out).unwrap_or_default();
        seen = Decoder::new().push(&bytes);
        if seen.contains(&Frame::Stdout(b"early\n".to_vec())) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        seen.contains(&Frame::Stdout(b"early\n".to_vec())),
        "early output not streamed: {seen:?}"
    );
    assert!(!seen.iter().any(|f| matches!(f, Frame::Exit(_))));
    assert!(child.wait().expect("agent exits").success());
    let frames = Decoder::new().push(&std::fs::read(&out).expect("output"));
    let _ = std::fs::remove_file(&out);
    assert_eq!(frames.last(), Some(&Frame::Exit(0)));
    assert!(frames.contains(&Frame::Stdout(b"late\n".to_vec())));
}

#[test]
fn killed_by_signal_reports_128_plus_signal() {
    let r = run_agent("signal", Some("echo before; kill -9 $$; echo after"));
    assert_eq!(r.stdout(), b"before\n");
    assert_eq!(r.frames.last(), Some(&Frame::Exit(128 + 9)));
}

#[test]
fn environment_cwd_and_stdin() {
    let r = run_agent(
        "env",
        Some("pwd; echo \"$PATH|$HOME|$TERM|${P2PVM_AGENT_TEST_OUT:-unset}\"; cat; echo eof"),
    );
    assert_eq!(
        String::from_utf8_lossy(&r.stdout()),
        "/\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/root|dumb|unset\neof\n"
    );
    assert_eq!(r.frames.last(), Some(&Frame::Exit(0)));
}

#[test]
fn background_process_holding_the_pipe_does_not_hang() {
    let r = run_agent("background", Some("sleep 30 & echo started; exit 3"));
    assert_eq!(r.stdout(), b"started\n");
    assert_eq!(r.frames.last(), Some(&Frame::Exit(3)));
    assert!(r.elapsed < Duration::from_secs(10), "took {:?}", r.elapsed);
}

#[test]
fn empty_command_is_an_agent_error() {
    let r = run_agent("empty", Some("  \n"));
    assert_eq!(r.frames.first(), Some(&Frame::Hello(HELLO.to_vec())));
    assert!(
        matches!(r.frames.last(), Some(Frame::Error(m)) if m.contains("empty")),
        "{:?}",
        r.frames
    );
    assert!(!r.frames.iter().any(|f| matches!(f, Frame::Exit(_))));
    assert_eq!(r.exit_code, Some(1));
}

#[test]
fn missing_command_file_is_an_agent_error() {
    if std::path::Path::new("/p2pvm/exec").exists() {
        return; // running inside a p2pvm guest: the file is real
    }
    let r = run_agent("missing", None);
    assert_eq!(r.frames.len(), 2, "{:?}", r.frames);
    assert!(
        matches!(&r.frames[1], Frame::Error(m) if m.contains("/p2pvm/exec")),
        "{:?}",
        r.frames
    );
    assert_eq!(r.exit_code, Some(1));
}
