//! Rows of figures, the machine they were measured on, and their output as
//! a table and as JSON.

use serde_json::{Value, json};

/// A goal from issue 6: the figure must be at least / at most `value`.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met(self, figure: f64) -> bool {
        match self {
            Target::AtLeast(v) => figure >= v,
            Target::AtMost(v) => figure <= v,
        }
    }

    fn describe(self) -> String {
        match self {
            Target::AtLeast(v) => format!(">= {}", num(v)),
            Target::AtMost(v) => format!("<= {}", num(v)),
        }
    }
}

/// One figure: the median over repeats and the spread (min/max).
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: &'static str,
    pub metric: String,
    pub unit: &'static str,
    /// `None`: not measured.
    pub samples: Option<Vec<f64>>,
    pub target: Option<Target>,
    pub note: String,
}

impl Row {
    pub fn new(scenario: &'static str, metric: impl Into<String>, unit: &'static str) -> Self {
        Self {
            scenario,
            metric: metric.into(),
            unit,
            samples: None,
            target: None,
            note: String::new(),
        }
    }

    pub fn samples(mut self, samples: Vec<f64>) -> Self {
        self.samples = Some(samples);
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// (median, min, max) of the samples.
    pub fn stats(&self) -> Option<(f64, f64, f64)> {
        let mut s = self.samples.clone()?;
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let mid = s.len() / 2;
        let median = if s.len() % 2 == 1 {
            s[mid]
        } else {
            (s[mid - 1] + s[mid]) / 2.0
        };
        Some((median, s[0], s[s.len() - 1]))
    }

    fn verdict(&self) -> &'static str {
        match (self.stats(), self.target) {
            (None, _) => "not measured",
            (Some(_), None) => "",
            (Some((median, ..)), Some(t)) if t.met(median) => "met",
            (Some(_), Some(_)) => "missed",
        }
    }

    pub fn to_json(&self) -> Value {
        let stats = self.stats();
        json!({
            "scenario": self.scenario,
            "metric": self.metric,
            "unit": self.unit,
            "median": stats.map(|s| s.0),
            "min": stats.map(|s| s.1),
            "max": stats.map(|s| s.2),
            "samples": self.samples,
            "target": self.target.map(Target::describe),
            "verdict": self.verdict(),
            "note": self.note,
        })
    }
}

/// Formats a figure with about 3 significant digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A Markdown table (it reads fine in a terminal too).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | metric | median | min – max | unit | target | verdict | note |\n\
         | --- | --- | ---: | ---: | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let (median, spread) = match r.stats() {
            Some((m, lo, hi)) => (num(m), format!("{} – {}", num(lo), num(hi))),
            None => ("—".into(), "—".into()),
        };
        let target = r.target.map(Target::describe).unwrap_or_default();
        out.push_str(&format!(
            "| {} | {} | {median} | {spread} | {} | {target} | {} | {} |\n",
            r.scenario,
            r.metric,
            r.unit,
            r.verdict(),
            r.note
        ));
    }
    out
}

/// Cores, memory, kernel of this machine.
pub fn machine() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    json!({
        "cores": cores,
        "memory_bytes": meminfo_kib(&meminfo, "MemTotal:").map(|k| k * 1024),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

/// The value in KiB of a `/proc/meminfo`-style line (`Name:  123 kB`).
pub fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    meminfo_kib(&status, "VmRSS:")
        .map(|k| k * 1024)
        .ok_or_else(|| anyhow::anyhow!("no VmRSS line in /proc/self/status"))
}

/// `git rev-parse --short HEAD`, or "unknown".
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
