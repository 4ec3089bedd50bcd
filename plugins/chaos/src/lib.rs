//! Misbehaving tasks for testing the Corral host: runaway loops, memory and
//! stack exhaustion, panics, sandbox escapes, floods, and a few well-behaved
//! helpers (`echo`, `noop`, `env`, `read_file`, `cooperative_sleep`).
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
    ],
);
