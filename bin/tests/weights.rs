//! `mt10 weights` end to end: the binary, its JSON output and its exit codes.
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const SPEC_JACOBIAN: &str = r#"{"jacobian": [[-4, 1, 1], [6, 1, 1]], "losses": [1.0, 2.0]}"#;

fn mt10_weights(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mt10"))
        .arg("weights")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mt10 runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn json(args: &[&str], stdin: &str) -> Value {
    let out = mt10_weights(args, stdin);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn numbers(value: &Value) -> Vec<f64> {
    value.as_array().expect("an array").iter().map(|x| x.as_f64().unwrap()).collect()
}

fn usage_error(args: &[&str], stdin: &str) -> String {
    let out = mt10_weights(args, stdin);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn nash_on_the_spec_jacobian() {
    let out = json(&["--method", "nash", "--input", "-"], SPEC_JACOBIAN);
    let w = numbers(&out["weights"]);
    assert!((w[0] - 0.591461).abs() < 1e-6 && (w[1] - 0.407071).abs() < 1e-6, "{w:?}");
    let d = numbers(&out["direction"]);
    assert!((d[1] - 0.998533).abs() < 1e-6, "{d:?}");
    assert_eq!(out["fallback"], Value::Null);
}

#[test]
fn every_method_answers_from_a_file() {
    let path = std::env::temp_dir().join(format!("mt10-weights-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"jacobian": [[-4, 1, 1], [6, 1, 1], [1, -2, 0.5], [0, 1, -1]], "losses": [1.0, 2.0, 0.5, 3.0]}"#).unwrap();
    for method in solvers::Method::names() {
        let out = json(&["--method", method, "--input", path.to_str().unwrap(), "--seed", "3"], "");
        assert_eq!(numbers(&out["weights"]).len(), 4, "{method}");
        assert_eq!(numbers(&out["direction"]).len(), 3, "{method}");
    }
    std::fs::remove_file(path).unwrap();
}

#[test]
fn hyper_parameters_reach_the_method() {
    let exact = json(&["--method", "fairgrad", "--solver", "exact", "--alpha", "2", "--input", "-"], SPEC_JACOBIAN);
    let w = numbers(&exact["weights"]);
    assert!((w[0] - 0.471363).abs() < 1e-6, "{w:?}");
    let gram = r#"{"gram": [[18, -22], [-22, 38]]}"#;
    let cagrad = json(&["--method", "cagrad", "--c", "0.5", "--input", "-"], gram);
    assert!((numbers(&cagrad["weights"])[0] - 0.563341).abs() < 1e-6);
    assert!(cagrad.get("direction").is_none(), "no Jacobian, no direction");
}

/// A shared temperature's rank-1 Gram with mixed signs: Pareto-stationary, no root. The answer
/// names the fallback and gives the weights training would apply (uniform: there is no last
/// good solve), not the diverged iterate (2.4e8 and 1.2e8 before).
#[test]
fn a_fallback_is_reported_with_bounded_weights() {
    let stationary = r#"{"gram": [[1, -2], [-2, 4]]}"#;
    for args in [&["--method", "nash"][..], &["--method", "nash", "--solver", "ccp"], &["--method", "fairgrad", "--solver", "exact"]] {
        let out = json(&[args, &["--input", "-"]].concat(), stationary);
        assert_eq!(out["fallback"], "diverged", "{args:?}");
        assert_eq!(numbers(&out["weights"]), vec![0.5, 0.5], "{args:?}");
    }
}

#[test]
fn nash_as_published_takes_ccp_steps() {
    let one_step = json(&["--method", "nash", "--solver", "ccp", "--input", "-"], SPEC_JACOBIAN);
    let w = numbers(&one_step["weights"]);
    assert!((w[0] - 0.591461).abs() < 1e-5 && (w[1] - 0.407071).abs() < 1e-5, "{w:?}");
    let unused = usage_error(&["--method", "nash", "--iters", "3", "--input", "-"], SPEC_JACOBIAN);
    assert!(unused.contains("nash does not take iters"), "{unused}");
}

#[test]
fn bad_input_is_a_one_line_usage_error() {
    let missing = usage_error(&["--method", "nash", "--input", "/nonexistent/grads.json"], "");
    assert!(missing.contains("cannot read /nonexistent/grads.json"), "{missing}");
    let ragged = usage_error(&["--method", "nash", "--input", "-"], r#"{"jacobian": [[1, 2], [3]]}"#);
    assert!(ragged.contains("row 1"), "{ragged}");
    let unknown = usage_error(&["--method", "nashmtl", "--input", "-"], SPEC_JACOBIAN);
    assert!(unknown.contains("unknown method 'nashmtl'"), "{unknown}");
    let no_losses = usage_error(&["--method", "famo", "--input", "-"], r#"{"gram": [[1, 0], [0, 1]]}"#);
    assert!(no_losses.contains("famo needs the task losses"), "{no_losses}");
    let graddrop = usage_error(&["--method", "graddrop", "--input", "-"], r#"{"gram": [[1, 0], [0, 1]]}"#);
    assert!(graddrop.contains("needs the full Jacobian"), "{graddrop}");
    let excessmtl = usage_error(&["--method", "excessmtl", "--input", "-"], r#"{"gram": [[1, 0], [0, 1]]}"#);
    assert!(excessmtl.contains("excessmtl needs the full Jacobian"), "{excessmtl}");
    let alpha = usage_error(&["--method", "fairgrad", "--alpha", "-1", "--input", "-"], SPEC_JACOBIAN);
    assert!(alpha.contains("invalid alpha = -1"), "{alpha}");
    let unused = usage_error(&["--method", "mgda", "--alpha", "2", "--input", "-"], SPEC_JACOBIAN);
    assert!(unused.contains("mgda does not take alpha"), "{unused}");
    let asymmetric = usage_error(&["--method", "mgda", "--input", "-"], r#"{"gram": [[1, 2], [0, 1]]}"#);
    assert!(asymmetric.contains("symmetric"), "{asymmetric}");
    let nan = usage_error(&["--method", "ls", "--input", "-"], r#"{"gram": [[1, 0], [0, 1]], "losses": [1, "x"]}"#);
    assert!(nan.contains("not valid input"), "{nan}");
    usage_error(&["--method", "ls", "--input", "-"], r#"{"gram": [[1]], "jacobian": [[1]]}"#);
    usage_error(&["--method", "ls", "--input", "-"], "{}");
}

/// MoCo's first step (from a zero average) on the spec Jacobian, as LibMTL's `MoCo.py` computes
/// it (see solvers/tests/reference_values.rs): `lambda`, the direction `Y^T lambda`, and the
/// weights on the raw gradients that give the same direction.
#[test]
fn moco_takes_its_first_step() {
    let out = json(&["--method", "moco", "--input", "-"], SPEC_JACOBIAN);
    let (lambda, d, w) = (numbers(&out["lambda"]), numbers(&out["direction"]), numbers(&out["weights"]));
    assert!((lambda[0] - 0.5093739014958458).abs() < 1e-12 && (lambda[1] - 0.4906260985041541).abs() < 1e-12, "{lambda:?}");
    for (a, e) in d.iter().zip([0.23741921751230305, 0.13962035265710734, 0.13962035265710734]) {
        assert!((a - e).abs() < 1e-12, "{d:?}");
    }
    assert!((-4.0 * w[0] + 6.0 * w[1] - d[0]).abs() < 1e-12, "{w:?}");
    assert!(usage_error(&["--method", "nash", "--beta-sigma", "0.5", "--input", "-"], SPEC_JACOBIAN).contains("beta_sigma"));
    assert!(usage_error(&["--method", "moco", "--beta", "1.5", "--input", "-"], SPEC_JACOBIAN).contains("beta"));
    assert!(usage_error(&["--method", "moco", "--input", "-"], r#"{"jacobian": [[-4, 1, 1], [6, 1, 1]]}"#).contains("losses"));
}
