//! A small extract-transform-load pipeline over a CSV file of sales.
//!
//! | task | reads | writes |
//! |---|---|---|
//! | `extract` | `file` (default `sales.csv`, under the read-only grant `/data`) | `rows`: the CSV's records as objects of strings, `source`: the path read |
//! | `transform` | `rows` | `totals`: `{category: {count, amount}}` sorted by category, `grand_total`: `{count, amount}` |
//! | `load` | `totals`, `grand_total`, `report_file` (default `report.json`, under the writable grant `/out`) | `report_path`, `totals`, `grand_total` |
//!
//! Amounts are summed exactly, in cents.

use corral_guest::{Context, TaskError, log, plugin, progress, task};

mod csv;
mod money;
mod paths;

use std::collections::BTreeMap;

use corral_guest::serde_json::{Map, Value, json};
use money::Cents;

/// Where the operator grants the input data (read-only).
const DATA_DIR: &str = "/data";
/// Where the operator grants room for the report (writable).
const OUT_DIR: &str = "/out";

/// Reads a CSV file from /data into rows.
#[task(timeout = "30s", max_attempts = 3)]
fn extract(ctx: &mut Context) -> Result<(), TaskError> {
    let file: String = ctx.get_or("file", "sales.csv".to_owned())?;
    let path = paths::join_granted(DATA_DIR, &file)?;
    log::info(format!("reading {path}"));
    progress(0.0, format!("reading {path}"));
    let text = std::fs::read_to_string(&path)
        .map_err(|err| TaskError::from(err).context(format!("cannot read {path}")))?;
    let rows = csv::parse(&text)?;
    log::info(format!("extracted {} rows from {path}", rows.len()));
    progress(1.0, format!("{} rows", rows.len()));
    ctx.set("rows", rows)?;
    ctx.set("source", path)
}

/// Totals of one category (or of everything).
#[derive(Default)]
struct Total {
    count: u64,
    amount: Cents,
}

impl Total {
    fn to_json(&self) -> Value {
        json!({ "count": self.count, "amount": self.amount.to_json() })
    }
}

/// Sums the rows' amounts per category.
#[task(timeout = "30s")]
fn transform(ctx: &mut Context) -> Result<(), TaskError> {
    let rows: Vec<Map<String, Value>> = ctx.get("rows")?;
    let mut totals: BTreeMap<String, Total> = BTreeMap::new();
    let mut grand = Total::default();
    for (index, row) in rows.iter().enumerate() {
        let field = |name: &str| -> Result<String, TaskError> {
            match row.get(name) {
                Some(Value::String(text)) => Ok(text.clone()),
                Some(Value::Number(number)) => Ok(number.to_string()),
                _ => Err(TaskError::permanent(format!(
                    "row {} has no `{name}`",
                    index + 1
                ))),
            }
        };
        let category = field("category")?;
        let amount = Cents::parse(&field("amount")?)
            .map_err(|err| err.context(format!("row {}", index + 1)))?;
        let total = totals.entry(category).or_default();
        for total in [total, &mut grand] {
            total.count += 1;
            total.amount = total.amount.checked_add(amount)?;
        }
        if (index + 1) % 10 == 0 {
            progress(
                (index + 1) as f32 / rows.len() as f32,
                format!("{} rows", index + 1),
            );
        }
    }
    log::info(format!(
        "{} rows in {} categories, grand total {}",
        grand.count,
        totals.len(),
        grand.amount
    ));
    let totals: Map<String, Value> = totals
        .iter()
        .map(|(category, total)| (category.clone(), total.to_json()))
        .collect();
    ctx.set("totals", totals)?;
    ctx.set("grand_total", grand.to_json())
}

/// Writes the totals as a JSON report into /out.
#[task(timeout = "30s", max_attempts = 3)]
fn load(ctx: &mut Context) -> Result<(), TaskError> {
    let totals: Map<String, Value> = ctx.get("totals")?;
    let grand_total: Value = ctx.get("grand_total")?;
    let file: String = ctx.get_or("report_file", "report.json".to_owned())?;
    let path = paths::join_granted(OUT_DIR, &file)?;
    let report = json!({
        "report": "sales by category",
        "totals": totals,
        "grand_total": grand_total,
    });
    let mut text = corral_guest::serde_json::to_string_pretty(&report)?;
    text.push('\n');
    std::fs::write(&path, text)
        .map_err(|err| TaskError::from(err).context(format!("cannot write {path}")))?;
    log::info(format!("wrote {path}"));
    progress(1.0, format!("wrote {path}"));
    ctx.set("report_path", path)?;
    ctx.set("totals", totals)?;
    ctx.set("grand_total", grand_total)
}

plugin!(
    name = "etl",
    version = "0.1.0",
    tasks = [extract, transform, load],
);
