//! One run of the box: its directory on the host, the run script that
//! box-init executes, the kernel command line and QEMU's arguments.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::image::BoxImages;
use super::BoxConfig;
use crate::error::{Error, Result};

/// Environment variables passed into the box, besides every `P2PVM_*`.
pub(crate) const ENV_PASSED: &[&str] = &["RUST_LOG", "RUST_BACKTRACE", "HOME", "PATH", "TERM"];

/// The 9p mount tag box-init mounts on /host.
const MOUNT_TAG: &str = "hostroot";

/// Quotes `word` for a POSIX shell: single quotes, with each `'` written as
/// `'\''`. Everything else, newlines and non-UTF-8 bytes included, is literal.
pub(crate) fn shell_quote(word: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(word.len() + 2);
    out.push(b'\'');
    for &b in word {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

fn is_shell_name(name: &[u8]) -> bool {
    !name.is_empty()
        && !name[0].is_ascii_digit()
        && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The part of `vars` that goes into the box: [`ENV_PASSED`] and `P2PVM_*`,
/// sorted by name.
pub(crate) fn passed_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<_> = vars
        .into_iter()
        .filter(|(name, _)| {
            let n = name.as_bytes();
            is_shell_name(n)
                && (n.starts_with(b"P2PVM_") || ENV_PASSED.iter().any(|p| p.as_bytes() == n))
        })
        .collect();
    env.sort();
    env
}

/// The script box-init runs with `/bin/sh` in the chroot (an empty
/// environment, stdin/stdout on ttyS0, stderr on ttyS1): it exports `env`,
/// sets the terminal size when given (`(rows, cols)`), enters `cwd` and
/// execs `program args…`.
pub(crate) fn run_script(
    cwd: &Path,
    program: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    winsize: Option<(u16, u16)>,
) -> Result<Vec<u8>> {
    let words = [program.as_os_str(), cwd.as_os_str()]
        .into_iter()
        .chain(args.iter().map(OsString::as_os_str))
        .chain(env.iter().map(|(_, v)| v.as_os_str()));
    for word in words {
        if word.as_bytes().contains(&0) {
            return Err(Error::HostBox(format!("{word:?} contains a NUL byte")));
        }
    }
    let mut s = b"# Written by p2pvm; run by box-init inside the KVM host box.\n".to_vec();
    for (name, value) in env {
        s.extend_from_slice(b"export ");
        s.extend_from_slice(name.as_bytes());
        s.push(b'=');
        s.extend_from_slice(&shell_quote(value.as_bytes()));
        s.push(b'\n');
    }
    s.extend_from_slice(b"export P2PVM_IN_HOST_BOX=1\n");
    if let Some((rows, cols)) = winsize {
        s.extend_from_slice(format!("stty rows {rows} cols {cols} 2>/dev/null\n").as_bytes());
    }
    s.extend_from_slice(b"cd ");
    s.extend_from_slice(&shell_quote(cwd.as_os_str().as_bytes()));
    s.extend_from_slice(b" || exit 127\nexec");
    for word in std::iter::once(program.as_os_str()).chain(args.iter().map(OsString::as_os_str)) {
        s.push(b' ');
        s.extend_from_slice(&shell_quote(word.as_bytes()));
    }
    s.push(b'\n');
    Ok(s)
}

/// True when `dir` can go on the kernel command line unquoted and is seen
/// the same inside the box: the box mounts its own /proc, /sys and /dev.
fn is_usable_run_base(dir: &Path) -> bool {
    let b = dir.as_os_str().as_bytes();
    dir.is_absolute()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"/._+-".contains(&c))
        && !["/proc", "/sys", "/dev"].iter().any(|p| dir.starts_with(p))
}

/// Creates this run's directory, `p2pvm-box.XXXXXX` in `$TMPDIR` when that
/// is usable (see `is_usable_run_base`), else in /tmp.
pub(crate) fn make_run_dir() -> Result<PathBuf> {
    let tmp = std::env::temp_dir();
    let base = if is_usable_run_base(&tmp) {
        tmp
    } else {
        PathBuf::from("/tmp")
    };
    let mut template = base.join("p2pvm-box.XXXXXX").into_os_string().into_vec();
    template.push(0);
    // SAFETY: `template` is a writable NUL-terminated buffer that mkdtemp
    // rewrites in place, without changing its length.
    let p = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if p.is_null() {
        return Err(Error::io(
            format!("creating a directory in {}", base.display()),
            std::io::Error::last_os_error(),
        ));
    }
    template.pop();
    Ok(PathBuf::from(OsString::from_vec(template)))
}

/// The terminal size of our stdin as `(rows, cols)`, if it is a terminal.
pub(crate) fn terminal_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` to the pointer, which is valid.
    let r = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The box kernel's command line: the kernel console on ttyS2 (a log file on
/// the host), reboot (so QEMU exits) on panic, and where the run script is.
pub(crate) fn kernel_cmdline(run_dir: &Path, interactive: bool) -> Result<String> {
    if !is_usable_run_base(run_dir) {
        return Err(Error::HostBox(format!(
            "run directory {} cannot be passed to the box",
            run_dir.display()
        )));
    }
    Ok(format!(
        "console=ttyS2 panic=-1 p2pvm.run={} p2pvm.interactive={}",
        run_dir.display(),
        u8::from(interactive)
    ))
}

/// QEMU's arguments: TCG with every CPU feature (so AMD SVM with nested
/// paging), ttyS0 = our stdio (the command's stdout, and stdin when
/// interactive), ttyS1 = our stderr, ttyS2 = `console.log` in the run
/// directory, and the host's `/` over virtio-9p.
pub(crate) fn qemu_args(
    images: &BoxImages,
    run_dir: &Path,
    cfg: &BoxConfig,
) -> Result<Vec<OsString>> {
    let machine = "-accel tcg,thread=multi -cpu max -nodefaults -no-user-config \
                   -display none -no-reboot";
    // `signal=off`: with a terminal on stdin, ^C goes to the box. QEMU's own
    // stderr is a pipe to us (see run_in_box); reopening it through /proc
    // keeps the command's stderr apart from its stdout.
    let ports = "-chardev stdio,id=out,signal=off -serial chardev:out \
                 -chardev file,id=err,path=/proc/self/fd/2,append=on -serial chardev:err \
                 -serial chardev:con";
    let share = format!(
        "-fsdev local,id={MOUNT_TAG},path=/,security_model=none,multidevs=remap \
         -device virtio-9p-pci,fsdev={MOUNT_TAG},mount_tag={MOUNT_TAG}"
    );
    let console = format!("file,id=con,path={}", run_dir.join("console.log").display());
    let words = |s: &str| s.split_whitespace().map(OsString::from).collect::<Vec<_>>();
    let mut args = words(machine);
    args.extend([
        "-smp".into(),
        cfg.cpus.max(1).to_string().into(),
        "-m".into(),
        cfg.memory_mib.to_string().into(),
        "-kernel".into(),
        images.kernel.clone().into(),
        "-initrd".into(),
        images.initrd.clone().into(),
        "-append".into(),
        kernel_cmdline(run_dir, cfg.interactive)?.into(),
        "-chardev".into(),
        console.into(),
    ]);
    args.extend(words(ports));
    if let Some(sock) = &cfg.control {
        args.extend([
            "-chardev".into(),
            format!("socket,id=ctl,path={},server=on,wait=off", sock.display()).into(),
            "-serial".into(),
            "chardev:ctl".into(),
        ]);
    }
    args.extend(words(&share));
    Ok(args)
}

/// `words` as one shell-pasteable line, for logs.
pub(crate) fn display_command(words: impl IntoIterator<Item = impl AsRef<OsStr>>) -> String {
    let quoted: Vec<String> = words
        .into_iter()
        .map(|w| {
            let b = w.as_ref().as_bytes();
            if !b.is_empty()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || b"/._+-=,:".contains(&c))
            {
                String::from_utf8_lossy(b).into_owned()
            } else {
                String::from_utf8_lossy(&shell_quote(b)).into_owned()
            }
        })
        .collect();
    quoted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// Runs `script` with the host's /bin/sh and returns its stdout.
    fn sh(script: &[u8]) -> Vec<u8> {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(OsStr::from_bytes(script))
            .env_clear()
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn quoting_survives_the_shell() {
        let nasty: &[&[u8]] = &[
            b"",
            b"plain",
            b"it's",
            b"''",
            b"a b\tc\nd",
            b"$(echo no) `echo no` $HOME \\ \" ; & | * ? ~ #",
            b"\xff\xfe not utf-8",
            b"-n",
        ];
        for word in nasty {
            let mut script = b"printf '%s' ".to_vec();
            script.extend_from_slice(&shell_quote(word));
            assert_eq!(sh(&script), *word, "word {word:?}");
        }
    }

    #[test]
    fn run_script_exports_cds_and_execs() {
        let dir = std::env::temp_dir().join(format!("p2pvm hostbox 'cwd' {}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let env = vec![
            (OsString::from("P2PVM_X"), OsString::from("it's x")),
            (OsString::from("RUST_LOG"), OsString::from("debug")),
        ];
        let args = os(&[
            "-c",
            "pwd; printf '<%s>' \"$P2PVM_X\" \"$RUST_LOG\" \"$P2PVM_IN_HOST_BOX\" \"$0\" \"$@\"",
            "zero",
            "a b",
            "c'd",
        ]);
        let script = run_script(&dir, Path::new("/bin/sh"), &args, &env, None).unwrap();
        let out = String::from_utf8(sh(&script)).unwrap();
        assert_eq!(
            out,
            format!("{}\n<it's x><debug><1><zero><a b><c'd>", dir.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn run_script_fails_127_on_missing_cwd_and_sets_winsize() {
        let script = run_script(
            Path::new("/nonexistent/dir"),
            Path::new("/bin/true"),
            &[],
            &[],
            Some((40, 120)),
        )
        .unwrap();
        let text = String::from_utf8(script.clone()).unwrap();
        assert!(
            text.contains("stty rows 40 cols 120 2>/dev/null\n"),
            "{text}"
        );
        let st = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(OsStr::from_bytes(&script))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(127));
    }

    #[test]
    fn run_script_rejects_nul() {
        let args = vec![OsString::from_vec(b"a\0b".to_vec())];
        assert!(run_script(Path::new("/"), Path::new("/bin/true"), &args, &[], None).is_err());
    }

    #[test]
    fn env_whitelist() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("P2PVM_CACHE", "/c"),
            ("LD_PRELOAD", "evil.so"),
            ("RUST_LOG", "info"),
            ("P2PVM_BAD-NAME", "x"),
            ("SSH_AUTH_SOCK", "/s"),
            ("TERM", "xterm"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let names: Vec<_> = passed_env(vars).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, os(&["P2PVM_CACHE", "PATH", "RUST_LOG", "TERM"]));
    }

    #[test]
    fn cmdline() {
        assert_eq!(
            kernel_cmdline(Path::new("/tmp/p2pvm-box.aB3_x-"), false).unwrap(),
            "console=ttyS2 panic=-1 p2pvm.run=/tmp/p2pvm-box.aB3_x- p2pvm.interactive=0"
        );
        assert!(kernel_cmdline(Path::new("/tmp/x"), true)
            .unwrap()
            .ends_with(" p2pvm.interactive=1"));
        for bad in [
            "/tmp/a b",
            "/tmp/a\"b",
            "tmp/rel",
            "/dev/shm/x",
            "/proc/x",
            "/tmp/a,b",
        ] {
            assert!(kernel_cmdline(Path::new(bad), false).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_dir_is_fresh_and_usable() {
        let a = make_run_dir().unwrap();
        let b = make_run_dir().unwrap();
        assert_ne!(a, b);
        assert!(a.is_dir() && is_usable_run_base(&a));
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("p2pvm-box."));
        std::fs::remove_dir(&a).unwrap();
        std::fs::remove_dir(&b).unwrap();
    }

    #[test]
    fn qemu_command_line() {
        let images = BoxImages {
            kernel: PathBuf::from("/c/box/k/vmlinux"),
            initrd: PathBuf::from("/c/box/k/initrd.gz"),
        };
        let cfg = BoxConfig {
            control: None,
            cpus: 2,
            memory_mib: 3072,
            interactive: false,
            deadline: None,
        };
        let args = qemu_args(&images, Path::new("/tmp/p2pvm-box.abc"), &cfg).unwrap();
        let line = display_command(&args);
        for part in [
            "-accel tcg,thread=multi -cpu max",
            "-smp 2 -m 3072",
            "-kernel /c/box/k/vmlinux -initrd /c/box/k/initrd.gz",
            "-append 'console=ttyS2 panic=-1 p2pvm.run=/tmp/p2pvm-box.abc p2pvm.interactive=0'",
            "-chardev stdio,id=out,signal=off -serial chardev:out",
            "-chardev file,id=err,path=/proc/self/fd/2,append=on -serial chardev:err",
            "-chardev file,id=con,path=/tmp/p2pvm-box.abc/console.log",
            "-fsdev local,id=hostroot,path=/,security_model=none,multidevs=remap",
            "-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            "-nodefaults -no-user-config -display none -no-reboot",
        ] {
            assert!(line.contains(part), "{part} not in {line}");
        }
        // ttyS0, ttyS1, ttyS2 in that order.
        let serials: Vec<_> = args
            .windows(2)
            .filter(|w| w[0] == "-serial")
            .map(|w| w[1].clone())
            .collect();
        assert_eq!(serials, os(&["chardev:out", "chardev:err", "chardev:con"]));
    }
}
