//! `scripts/reward_check.py` and the Meta-World reward quirk the README's MT10 results rest on:
//! under the v1 rewards (the `mtrl` protocol's) solving window-open earns less than standing
//! still, under v2 it earns more. If a Meta-World upgrade changes this, the README's
//! explanation of window-open must change with it.
#![cfg(feature = "metaworld")]
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn reward_check(version: &str) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let python = std::env::var_os("VIRTUAL_ENV").map_or_else(|| root.join(".venv/bin/python"), |venv| PathBuf::from(venv).join("bin/python"));
    let output = Command::new(&python)
        .arg(root.join("scripts/reward_check.py"))
        .args(["--reward-version", version, "--json"])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(output.status.success(), "reward_check.py failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("reward_check.py prints a JSON list")
}

fn task<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter().find(|r| r["task"] == name).unwrap_or_else(|| panic!("{name} missing from {rows:?}"))
}

#[test]
fn solving_window_open_does_not_pay_under_the_v1_rewards_and_does_under_v2() {
    let v1 = reward_check("v1");
    assert_eq!(v1.len(), 10);
    let window_open = task(&v1, "window-open");
    assert_eq!(window_open["scripted_success"], true, "{window_open}");
    assert_eq!(window_open["success_pays"], false, "{window_open}");
    for name in ["reach", "door-open", "button-press-topdown", "window-close"] {
        assert_eq!(task(&v1, name)["success_pays"], true, "{}", task(&v1, name));
    }
    let v2 = reward_check("v2");
    let window_open = task(&v2, "window-open");
    assert_eq!((&window_open["scripted_success"], &window_open["success_pays"]), (&Value::Bool(true), &Value::Bool(true)), "{window_open}");
}
