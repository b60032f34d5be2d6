//! The device a run trains on, in words for the start-up line, `summary.json` and TensorBoard:
//! `cuda:0 (NVIDIA H200)`, or `cpu` with the reason where `auto` found no usable GPU. `auto` on
//! a machine with an NVIDIA driver (`nvidia-smi` or `/dev/nvidiactl`) where libtorch sees no GPU
//! also gets a warning: that run would otherwise train on the CPU without a word.
use agent::DeviceChoice;
use std::path::Path;
use std::process::Command;

pub struct DeviceInfo {
    pub on_gpu: bool,
    /// `cuda:0 (NVIDIA H200)`, `cpu`, `cpu (auto: no NVIDIA GPU on this machine)`.
    pub description: String,
    /// One line for stderr where `auto` falls back to the CPU despite an NVIDIA driver.
    pub warning: Option<String>,
}

pub fn describe(choice: DeviceChoice) -> DeviceInfo {
    let cuda = choice != DeviceChoice::Cpu && tch::Cuda::is_available();
    if cuda {
        let description = gpu_name().map_or_else(|| "cuda:0".to_string(), |name| format!("cuda:0 ({name})"));
        return DeviceInfo { on_gpu: true, description, warning: None };
    }
    if choice != DeviceChoice::Auto {
        return DeviceInfo { on_gpu: false, description: "cpu".into(), warning: None };
    }
    let driver = [Path::new("/dev/nvidiactl").exists().then_some("/dev/nvidiactl"), on_path("nvidia-smi").then_some("nvidia-smi")];
    let driver: Vec<&str> = driver.into_iter().flatten().collect();
    if driver.is_empty() {
        return DeviceInfo { on_gpu: false, description: "cpu (auto: no NVIDIA GPU on this machine)".into(), warning: None };
    }
    DeviceInfo {
        on_gpu: false,
        description: "cpu (auto: libtorch sees no GPU although an NVIDIA driver is here)".into(),
        warning: Some(format!(
            "mt10: warning: --device auto: {} is here but libtorch sees no GPU (CUDA_VISIBLE_DEVICES? a driver too old for libtorch's CUDA?); training on the CPU",
            driver.join(" and ")
        )),
    }
}

/// The name of the GPU that libtorch calls `cuda:0` (the first of `CUDA_VISIBLE_DEVICES`), as
/// `nvidia-smi` gives it; `None` where it cannot say.
fn gpu_name() -> Option<String> {
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let first = visible.as_deref().and_then(|v| v.split(',').next()).map(str::trim).filter(|v| !v.is_empty()).unwrap_or("0");
    let out = Command::new("nvidia-smi").args(["--query-gpu=name", "--format=csv,noheader", "--id", first]).output().ok()?;
    let name = String::from_utf8(out.stdout).ok()?;
    let name = name.lines().next()?.trim();
    (out.status.success() && !name.is_empty()).then(|| name.to_string())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
