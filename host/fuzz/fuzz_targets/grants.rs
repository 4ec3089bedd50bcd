//! Grant parsing and checking: `DirGrant::from_str` (`--dir HOST:GUEST[:rw]`)
//! and `Grants::validate`, the check the sandbox makes before an attempt.
//!
//! Input: lines; `KEY=VALUE` after `env ` is an environment grant, any other
//! line a directory grant.
//!
//! Properties: nothing panics; a grant that parses displays as text that
//! parses back to an equal grant; a parsed grant's parts are non-empty and
//! its guest path has no `:`; `Grants::validate` accepts exactly what the
//! workflow validator accepts (for an existing host directory), so a grant
//! a workflow may carry never fails at run time and the reverse.
#![no_main]

use std::str::FromStr;

use corral::Workflow;
use corral::sandbox::{DirGrant, Grants};
use corral::workflow::Step;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut grants = Grants::default();
    for line in text.split('\n') {
        if let Some(env) = line.strip_prefix("env ") {
            if let Some((key, value)) = env.split_once('=') {
                grants.env.insert(key.to_owned(), value.to_owned());
            }
            continue;
        }
        let Ok(grant) = DirGrant::from_str(line) else {
            continue;
        };
        assert!(!grant.host.as_os_str().is_empty() && !grant.guest.is_empty());
        assert!(!grant.guest.contains(':'), "{grant:?}");
        let shown = grant.to_string();
        let back = DirGrant::from_str(&shown)
            .unwrap_or_else(|e| panic!("{grant:?} shows as {shown:?}, which fails: {e}"));
        assert_eq!(back, grant, "{shown:?}");
        // Checked with a host directory that exists: only the guest path
        // and the set of grants decide.
        grants.dirs.push(DirGrant {
            host: "/".into(),
            ..grant
        });
    }
    let at_run_time = grants.validate();
    let mut step = Step::new("s", "p/t");
    step.grants = grants.clone();
    let in_a_workflow = Workflow::builder("w").step(step).build();
    assert_eq!(
        at_run_time.is_ok(),
        in_a_workflow.is_ok(),
        "Grants::validate: {at_run_time:?}, workflow: {:?}, grants: {grants:?}",
        in_a_workflow.err()
    );
});
