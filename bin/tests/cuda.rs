//! The release binary can use a GPU: it links libtorch's CUDA library (a linker under
//! `--as-needed` drops it, which silently leaves only the CPU), and where there is no GPU,
//! asking for one is a usage error with one clear line.
use std::process::Command;

#[test]
fn mt10_links_libtorch_cuda() {
    let output = Command::new("readelf").args(["-d", env!("CARGO_BIN_EXE_mt10")]).output().expect("readelf (binutils) runs");
    assert!(output.status.success(), "readelf failed: {}", String::from_utf8_lossy(&output.stderr));
    let dynamic = String::from_utf8(output.stdout).unwrap();
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split('[').nth(1)?.strip_suffix(']'))
        .collect();
    assert!(needed.contains(&"libtorch_cuda.so"), "NEEDED: {needed:?}");
}

#[test]
fn bench_update_on_cuda_without_a_gpu_is_a_one_line_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_mt10"))
        .args(["bench", "update", "--device", "cuda", "--methods", "ls", "--batch", "64", "--updates", "1", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if std::path::Path::new("/dev/nvidia0").exists() {
        assert!(output.status.success(), "a GPU is here, yet: {stderr}");
        return;
    }
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cuda") && stderr.contains("no CUDA device"), "{stderr}");
}
