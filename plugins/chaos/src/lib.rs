//! Misbehaving tasks for testing the Corral host: runaway loops, memory and
//! stack exhaustion, panics, sandbox escapes, floods, disk filling, and a few
//! well-behaved helpers (`echo`, `noop`, `env`, `read_file`,
//! `cooperative_sleep`).
//!
//! None of these tasks has a default timeout or retry count: the tests decide.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use corral_guest::serde_json::{Map, Value};
use corral_guest::{Context, TaskError, cancelled, log, plugin, task};

/// Loops forever, burning CPU, without ever calling the host.
#[task]
fn spin(_ctx: &mut Context) -> Result<(), TaskError> {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Burns CPU for `ms` milliseconds (default 1000), then outputs how many
/// rounds it ran: a busy task that does end, for lifecycle tests.
#[task]
fn burn(ctx: &mut Context) -> Result<(), TaskError> {
    let ms: u64 = ctx.get_or("ms", 1000)?;
    let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    let mut rounds: u64 = 0;
    while std::time::Instant::now() < until {
        for _ in 0..10_000 {
            rounds = black_box(rounds.wrapping_add(1));
        }
    }
    ctx.set("rounds", rounds)
}

/// Allocates `mib` MiB (default 1024) and touches every byte.
#[task]
fn alloc(ctx: &mut Context) -> Result<(), TaskError> {
    let mib: usize = ctx.get_or("mib", 1024)?;
    let memory = vec![1u8; mib << 20];
    let memory = black_box(memory);
    let sum: u64 = memory
        .iter()
        .step_by(4096)
        .map(|&byte| u64::from(byte))
        .sum();
    ctx.set("touched_pages", black_box(sum))
}

/// Panics with "chaos: deliberate panic".
#[task]
fn panic(_ctx: &mut Context) -> Result<(), TaskError> {
    if black_box(true) {
        panic!("chaos: deliberate panic");
    }
    Ok(())
}

/// Sleeps `seconds` (default 60) in one WASI sleep, ignoring cancellation.
#[task]
fn sleep(ctx: &mut Context) -> Result<(), TaskError> {
    let seconds: f64 = ctx.get_or("seconds", 60.0)?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds.max(0.0)));
    ctx.set("slept_ms", started.elapsed().as_millis() as u64)
}

/// One frame of unbounded, non-tail recursion with a frame the optimiser
/// must keep.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[(depth % 512) as usize] = depth as u8;
    let frame = black_box(frame);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = recurse(black_box(depth + 1));
    below.wrapping_add(u64::from(frame[(depth % 7) as usize]))
}

/// Recurses until the stack overflows.
#[task]
fn stack_overflow(ctx: &mut Context) -> Result<(), TaskError> {
    let depth = recurse(0);
    ctx.set("depth", depth)
}

/// `"READ"`/`"WROTE"` if the attempt succeeded, `"denied: <error>"` if not.
fn outcome(result: std::io::Result<()>, success: &str) -> String {
    match result {
        Ok(()) => success.to_owned(),
        Err(err) => format!("denied: {err}"),
    }
}

/// Tries to leave the sandbox and reports each attempt without failing:
/// `{"etc_passwd": .., "dotdot": .., "write_readonly": ..}`, each `"READ"` /
/// `"WROTE"` if it worked or `"denied: <error>"`.
#[task]
fn escape(ctx: &mut Context) -> Result<(), TaskError> {
    let etc_passwd = outcome(std::fs::read("/etc/passwd").map(drop), "READ");
    let dotdot = outcome(std::fs::read("/data/../../etc/passwd").map(drop), "READ");
    let target = "/data/chaos-escape.txt";
    let wrote = std::fs::write(target, b"chaos was here\n");
    if wrote.is_ok() {
        let _ = std::fs::remove_file(target);
    }
    let write_readonly = outcome(wrote, "WROTE");
    for (attempt, result) in [
        ("etc_passwd", &etc_passwd),
        ("dotdot", &dotdot),
        ("write_readonly", &write_readonly),
    ] {
        log::warn(format!("escape attempt {attempt}: {result}"));
    }
    ctx.set("etc_passwd", etc_passwd)?;
    ctx.set("dotdot", dotdot)?;
    ctx.set("write_readonly", write_readonly)
}

/// Returns `mib` MiB (default 100) of `x` in output `data`.
#[task]
fn huge_output(ctx: &mut Context) -> Result<(), TaskError> {
    let mib: usize = ctx.get_or("mib", 100)?;
    ctx.set_value("data", Value::String("x".repeat(mib << 20)));
    Ok(())
}

/// Logs `lines` info lines (default 1 000 000) through the host, then prints
/// `stdout_lines` lines (default 1 000 000) to stdout.
#[task]
fn log_flood(ctx: &mut Context) -> Result<(), TaskError> {
    let lines: u64 = ctx.get_or("lines", 1_000_000)?;
    let stdout_lines: u64 = ctx.get_or("stdout_lines", 1_000_000)?;
    for i in 0..lines {
        log::info(format!("flood line {i}"));
    }
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0u64;
    for i in 0..stdout_lines {
        // The host may drop output past its cap; a write error is not ours.
        if writeln!(stdout, "stdout flood line {i}").is_ok() {
            printed += 1;
        }
    }
    let _ = stdout.flush();
    ctx.set("logged", lines)?;
    ctx.set("printed", printed)
}

/// Fails with a retryable error, "chaos: transient failure".
#[task]
fn fail_retryable(_ctx: &mut Context) -> Result<(), TaskError> {
    Err(TaskError::retryable("chaos: transient failure"))
}

/// Fails with a permanent error, "chaos: permanent failure".
#[task]
fn fail_permanent(_ctx: &mut Context) -> Result<(), TaskError> {
    Err(TaskError::permanent("chaos: permanent failure"))
}

/// Outputs its input unchanged.
#[task]
fn echo(ctx: &mut Context) -> Result<(), TaskError> {
    for (key, value) in ctx.input().clone() {
        ctx.set_value(key, value);
    }
    Ok(())
}

/// Does nothing; outputs `{}`.
#[task]
fn noop(_ctx: &mut Context) -> Result<(), TaskError> {
    Ok(())
}

/// Outputs the environment variables it sees, as `{"env": {NAME: value}}`.
#[task]
fn env(ctx: &mut Context) -> Result<(), TaskError> {
    let vars: Map<String, Value> = std::env::vars()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    ctx.set("env", vars)
}

/// Reads the text file at input `path` into output `contents`; any failure
/// is a permanent error.
#[task]
fn read_file(ctx: &mut Context) -> Result<(), TaskError> {
    let path: String = ctx.get("path")?;
    let contents = std::fs::read_to_string(&path)
        .map_err(|err| TaskError::permanent(format!("cannot read {path}: {err}")))?;
    ctx.set("contents", contents)
}

/// Sleeps in 10 ms steps until the host cancels it, then fails with a
/// retryable "cancelled". With `max_seconds`, gives up waiting after that
/// long and succeeds with `{"cancelled": false}`.
#[task]
fn cooperative_sleep(ctx: &mut Context) -> Result<(), TaskError> {
    let max: Option<f64> = ctx.get_opt("max_seconds")?;
    let started = Instant::now();
    loop {
        if cancelled() {
            log::info("cancelled: stopping cleanly");
            return Err(TaskError::retryable("cancelled"));
        }
        if max.is_some_and(|max| started.elapsed().as_secs_f64() >= max) {
            return ctx.set("cancelled", false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The POSIX calls of wasi-libc (which Rust's std on wasm32-wasip2 is built
/// on) that std does not expose on stable: what a C guest would call.
mod posix {
    use std::ffi::{CString, c_char, c_int, c_void};

    unsafe extern "C" {
        fn symlink(target: *const c_char, path: *const c_char) -> c_int;
        fn link(old: *const c_char, new: *const c_char) -> c_int;
        fn pwrite(fd: c_int, buf: *const c_void, len: usize, offset: i64) -> isize;
    }

    fn c_path(path: &str) -> std::io::Result<CString> {
        CString::new(path).map_err(|_| std::io::Error::other("NUL in path"))
    }

    fn check(result: c_int) -> std::io::Result<()> {
        if result == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// `symlink(target, path)`: the link at `path` will read `target`.
    pub fn make_symlink(target: &str, path: &str) -> std::io::Result<()> {
        let (target, path) = (c_path(target)?, c_path(path)?);
        // SAFETY: both are NUL-terminated strings that outlive the call.
        check(unsafe { symlink(target.as_ptr(), path.as_ptr()) })
    }

    /// `link(old, new)`: a hard link.
    pub fn hard_link(old: &str, new: &str) -> std::io::Result<()> {
        let (old, new) = (c_path(old)?, c_path(new)?);
        // SAFETY: both are NUL-terminated strings that outlive the call.
        check(unsafe { link(old.as_ptr(), new.as_ptr()) })
    }

    /// `pwrite(fd, buf, offset)`: WASI `descriptor.write`.
    pub fn write_at(file: &std::fs::File, buf: &[u8], offset: u64) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        let offset = i64::try_from(offset).map_err(std::io::Error::other)?;
        // SAFETY: `buf` is valid for `buf.len()` bytes during the call, and
        // the descriptor is owned by `file`, which outlives it.
        let n = unsafe { pwrite(file.as_raw_fd(), buf.as_ptr().cast(), buf.len(), offset) };
        usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
    }
}

/// An I/O error as the guest saw it: message, kind and raw errno.
fn io_error(err: &std::io::Error) -> String {
    format!("{err} (kind {:?})", err.kind())
}

/// Writes `bytes` bytes (default 200 MiB) to the file at `path` in chunks of
/// `chunk` bytes (default 64 KiB), through `write` (`how = "stream"`,
/// default), `pwrite` (`"pwrite"`) or appends (`"append"`). Succeeds with
/// `{"written": n}`; on the first error fails permanently with "write failed
/// after N bytes: <error>".
#[task]
fn fill_disk(ctx: &mut Context) -> Result<(), TaskError> {
    let path: String = ctx.get("path")?;
    let total: u64 = ctx.get_or("bytes", 200 << 20)?;
    let chunk: usize = ctx.get_or("chunk", 64 << 10)?;
    let how: String = ctx.get_or("how", "stream".to_owned())?;
    let keep: bool = ctx.get_or("keep", false)?;
    let buf = vec![b'x'; chunk.max(1)];
    let opened = match how.as_str() {
        "append" => std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path),
        _ if keep => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path),
        _ => std::fs::File::create(&path),
    };
    let mut file = opened
        .map_err(|e| TaskError::permanent(format!("cannot open {path}: {}", io_error(&e))))?;
    let mut written: u64 = 0;
    while written < total {
        let n = buf
            .len()
            .min(usize::try_from(total - written).unwrap_or(usize::MAX));
        let result = if how == "pwrite" {
            posix::write_at(&file, &buf[..n], written).map(|w| w as u64)
        } else {
            file.write(&buf[..n]).map(|w| w as u64)
        };
        match result {
            Ok(0) => {
                return Err(TaskError::permanent(format!(
                    "write failed after {written} bytes: wrote nothing"
                )));
            }
            Ok(w) => written += w,
            Err(e) => {
                return Err(TaskError::permanent(format!(
                    "write failed after {written} bytes: {}",
                    io_error(&e)
                )));
            }
        }
    }
    ctx.set("written", written)
}

/// Creates `count` (default 20,000) entries named `e<i>` in directory `dir`:
/// empty files (`kind = "file"`, default), directories (`"dir"`), symlinks
/// to `.` (`"symlink"`) or hard links to one file (`"hardlink"`). Succeeds
/// with `{"created": n}`; on the first error fails permanently with "create
/// failed after N entries: <error>".
#[task]
fn create_files(ctx: &mut Context) -> Result<(), TaskError> {
    let dir: String = ctx.get("dir")?;
    let count: u64 = ctx.get_or("count", 20_000)?;
    let kind: String = ctx.get_or("kind", "file".to_owned())?;
    let first = format!("{dir}/hardlink-source");
    if kind == "hardlink" {
        std::fs::write(&first, b"x")
            .map_err(|e| TaskError::permanent(format!("cannot create {first}: {e}")))?;
    }
    for i in 0..count {
        let path = format!("{dir}/e{i}");
        let result = match kind.as_str() {
            "dir" => std::fs::create_dir(&path),
            "symlink" => posix::make_symlink(".", &path),
            "hardlink" => posix::hard_link(&first, &path),
            _ => std::fs::File::create(&path).map(drop),
        };
        if let Err(e) = result {
            return Err(TaskError::permanent(format!(
                "create failed after {i} entries: {}",
                io_error(&e)
            )));
        }
    }
    ctx.set("created", count)
}

/// `"CREATED"` if it worked, `"denied: <error>"` if not.
fn created(result: std::io::Result<()>) -> String {
    match result {
        Ok(()) => "CREATED".to_owned(),
        Err(err) => format!("denied: {}", io_error(&err)),
    }
}

/// Tries to plant symlinks in directory `dir` that point outside it, and one
/// that does not; reports each as `"CREATED"` or `"denied: <error>"`:
/// `{"dotdot": .., "deep_dotdot": .., "absolute": .., "inside": ..}`.
#[task]
fn plant_symlinks(ctx: &mut Context) -> Result<(), TaskError> {
    let dir: String = ctx.get("dir")?;
    let _ = std::fs::create_dir(format!("{dir}/sub"));
    let attempts = [
        ("dotdot", "../outside", format!("{dir}/dotdot")),
        (
            "deep_dotdot",
            "sub/../../../../etc/passwd",
            format!("{dir}/sub/deep"),
        ),
        ("absolute", "/etc/passwd", format!("{dir}/absolute")),
        ("inside", "sub", format!("{dir}/inside")),
    ];
    for (name, target, path) in attempts {
        let result = created(posix::make_symlink(target, &path));
        log::warn(format!("symlink {name} -> {target}: {result}"));
        ctx.set(name, result)?;
    }
    Ok(())
}

/// Grows the file at `path` without writing data: `set_len` to `bytes`
/// (`how = "set_size"`, default), one byte written at offset `bytes` by
/// `pwrite` (`"pwrite"`) or after seeking there (`"seek"`). Outputs
/// `{"result": "CREATED" | "denied: <error>", "size": <size after>}`.
#[task]
fn grow_file(ctx: &mut Context) -> Result<(), TaskError> {
    use std::io::{Seek, SeekFrom};
    let path: String = ctx.get("path")?;
    let bytes: u64 = ctx.get_or("bytes", 1 << 40)?;
    let how: String = ctx.get_or("how", "set_size".to_owned())?;
    let mut file = std::fs::File::create(&path)
        .map_err(|e| TaskError::permanent(format!("cannot create {path}: {e}")))?;
    let result = match how.as_str() {
        "pwrite" => posix::write_at(&file, b"x", bytes).map(drop),
        "seek" => file
            .seek(SeekFrom::Start(bytes))
            .and_then(|_| file.write_all(b"x")),
        _ => file.set_len(bytes),
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    ctx.set("result", created(result))?;
    ctx.set("size", size)
}

/// Renames `from` to `to` (or, with `hard_link = true`, links `to` to the
/// entry `from`); outputs `{"result": "CREATED" | "denied: .."}`.
#[task]
fn rename(ctx: &mut Context) -> Result<(), TaskError> {
    let from: String = ctx.get("from")?;
    let to: String = ctx.get("to")?;
    let result = if ctx.get_or("hard_link", false)? {
        posix::hard_link(&from, &to)
    } else {
        std::fs::rename(&from, &to)
    };
    ctx.set("result", created(result))
}

plugin!(
    name = "chaos",
    version = "0.1.0",
    tasks = [
        spin,
        burn,
        alloc,
        panic,
        sleep,
        stack_overflow,
        escape,
        huge_output,
        log_flood,
        fail_retryable,
        fail_permanent,
        echo,
        noop,
        env,
        read_file,
        cooperative_sleep,
        fill_disk,
        create_files,
        plant_symlinks,
        grow_file,
        rename,
    ],
);
