//! `scripts/gpu-check` in its CPU mode with tiny sizes, so that the script a lent GPU machine
//! runs cannot rot: directly with this build, and through `scripts/gpu-bundle`'s bundle on a
//! simulated GPU node (`gpu_node.sh`: CPython 3.12 with numpy and scipy only, no network, the
//! project's venvs and other Pythons hidden; with the node's libpython, and without it), where
//! every part must pass as on the node.
#![cfg(feature = "metaworld")]
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mt10-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every part ran and its figures are in the JSON.
fn assert_every_figure(out: &Path) {
    let result: Value = serde_json::from_str(&std::fs::read_to_string(out.join("gpu-check.json")).unwrap()).unwrap();
    assert_eq!(result["complete"], true, "{result:#}");
    assert!(result.get("errors").is_none(), "{result:#}");
    assert!(result["machine"]["cores"].as_u64().unwrap() > 0, "{result:#}");
    assert_eq!(result["device_check"], "cpu");
    for batch in ["64", "16"] {
        for method in ["ls", "fairgrad", "nash"] {
            assert!(result["update"][batch]["methods"][method]["ms_per_update"].as_f64().unwrap() > 0.0, "{batch} {method}: {result:#}");
        }
    }
    let launch_bound = &result["launch_bound"];
    assert_eq!(launch_bound["ms_ratio_large_to_small"].as_object().unwrap().len(), 3, "{launch_bound}");
    assert!(["launch-bound", "compute-bound", "mixed"].contains(&launch_bound["verdict"].as_str().unwrap()), "{launch_bound}");
    let share = result["share"].as_array().unwrap();
    assert_eq!(share.iter().map(|s| s["processes"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 4]);
    for row in share {
        let each = row["updates_per_s_each"].as_array().unwrap();
        assert_eq!(each.len() as u64, row["processes"].as_u64().unwrap(), "{row}");
        assert!(row["updates_per_s_total"].as_f64().unwrap() > 0.0, "{row}");
    }
    let env = result["env"].as_array().unwrap();
    assert_eq!(env.iter().map(|e| e["seeds"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2]);
    assert!(env.iter().all(|e| e["total_steps_per_s"].as_f64().unwrap() > 0.0), "{env:?}");
    let train = &result["train"];
    let seeds = train["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 2, "{train}");
    assert!(seeds.iter().all(|s| s["learning_steps_per_s"].as_f64().unwrap() > 0.0), "{train}");
    let (one, ten) = (train["full_run_hours_1_seed"].as_f64().unwrap(), train["full_run_hours_10_seeds_2_at_a_time"].as_f64().unwrap());
    assert!(one > 0.0 && (ten / one - 5.0).abs() < 1e-9, "{train}");
}

#[test]
fn gpu_check_runs_on_the_cpu_and_writes_every_figure() {
    let out = temp_dir("gpu-check");
    let status = Command::new(root().join("scripts/gpu-check"))
        .args(["--device", "cpu", "--tiny", "--out", out.to_str().unwrap(), "--mt10", env!("CARGO_BIN_EXE_mt10")])
        .status()
        .expect("scripts/gpu-check runs");
    assert!(status.success(), "scripts/gpu-check failed: {status}");
    assert_every_figure(&out);
    std::fs::remove_dir_all(&out).unwrap();
}

/// Builds the bundle (the CPython 3.12 build of mt10 in target/py312 is incremental, the
/// wheels are cached) and runs it on the simulated node. Skipped, with a message, where there
/// is no CPython 3.12 with a shared libpython or no permission to hide folders.
#[test]
fn gpu_bundle_runs_gpu_check_on_a_node_with_only_python_numpy_scipy_and_torch() {
    const CANNOT: i32 = 3;
    let bundle = temp_dir("gpu-bundle");
    let status = Command::new(root().join("scripts/gpu-bundle")).arg(&bundle).status().expect("scripts/gpu-bundle runs");
    if status.code() == Some(CANNOT) {
        eprintln!("skipped: scripts/gpu-bundle found no CPython 3.12 (see above)");
        return;
    }
    assert!(status.success(), "scripts/gpu-bundle failed: {status}");
    // The node's Python with its libpython, then without one (mt10 runs on the bundle's runtime).
    for hide in [&[][..], &["--hide-libpython"][..]] {
        let out = temp_dir("gpu-node");
        let status = Command::new(root().join("bin/tests/gpu_node.sh"))
            .args(hide)
            .args([&bundle, &out])
            .args(["--device", "cpu", "--tiny"])
            .status()
            .expect("bin/tests/gpu_node.sh runs");
        if status.code() == Some(CANNOT) {
            eprintln!("skipped: this machine cannot play the GPU node (see above)");
            break;
        }
        assert!(status.success(), "the bundle failed on the simulated node {hide:?}: {status}");
        assert_every_figure(&out);
        // The agent's unit tests ran first, on the node's device (here the CPU).
        let result: Value = serde_json::from_str(&std::fs::read_to_string(out.join("gpu-check.json")).unwrap()).unwrap();
        let tests = &result["agent_tests"];
        assert!(tests["passed"].as_u64().unwrap() > 0 && tests["failed"] == 0 && tests["test_device"] == "cpu", "{tests}");
        // The device call brings back at most 8 files: the bundle writes only the JSON there.
        let written: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(written, ["gpu-check.json"]);
        std::fs::remove_dir_all(&out).unwrap();
    }
    std::fs::remove_dir_all(&bundle).unwrap();
}
