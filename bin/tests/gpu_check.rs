//! `scripts/gpu-check` in its CPU mode with tiny sizes, so that the script a lent GPU machine
//! runs cannot rot: every step runs and the JSON it writes holds every figure.
#![cfg(feature = "metaworld")]
use std::path::Path;
use std::process::Command;

#[test]
fn gpu_check_runs_on_the_cpu_and_writes_every_figure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = std::env::temp_dir().join(format!("mt10-test-{}-gpu-check", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(root.join("scripts/gpu-check"))
        .args(["--device", "cpu", "--tiny", "--out", out.to_str().unwrap(), "--mt10", env!("CARGO_BIN_EXE_mt10")])
        .status()
        .expect("scripts/gpu-check runs");
    assert!(status.success(), "scripts/gpu-check failed: {status}");
    let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("gpu-check.json")).unwrap()).unwrap();
    assert_eq!(result["device_check"], "cpu");
    for method in ["ls", "fairgrad", "nash"] {
        assert!(result["update"]["methods"][method]["ms_per_update"].as_f64().unwrap() > 0.0, "{method}: {result}");
    }
    let env = result["env"].as_array().unwrap();
    assert_eq!(env.iter().map(|e| e["seeds"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2]);
    assert!(env.iter().all(|e| e["total_steps_per_s"].as_f64().unwrap() > 0.0), "{env:?}");
    let train = &result["train"];
    assert_eq!(train["seeds"].as_array().unwrap().len(), 2);
    let (one, ten) = (train["full_run_hours_1_seed"].as_f64().unwrap(), train["full_run_hours_10_seeds_2_at_a_time"].as_f64().unwrap());
    assert!(one > 0.0 && (ten / one - 5.0).abs() < 1e-9, "{train}");
    std::fs::remove_dir_all(&out).unwrap();
}
