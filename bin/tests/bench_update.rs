//! `mt10 bench update` on networks other than the default `mtrl` ones: the agent section of a
//! config file (here BRC-shaped: BroNet, categorical critic, LayerNorm, AdamW, its reward
//! scaling) is timed and counted, and a bad choice of networks is a one-line usage error.
mod common;

use common::{ok, run, scratch};

/// A run config whose agent section has BRC's ingredients at toy widths.
const BRC_SHAPED: &str = r#"
[run]
steps = 1_000
seeds = [1]
random_steps = 100
initial_updates = 100
updates_per_step = 2
eval_every = 500
eval_episodes = 1
checkpoint_every = 1_000
log_every = 100

[env]
kind = "toy"

[agent]
hidden = [32, 32]
critic_hidden = [64, 64, 64]
critic_block = "bronet"
actor_block = "bronet"
layer_norm = true
critic = "categorical"
weight_decay = 1e-4
reward_scaling = "return_range"
init_temperature = 0.1
target_entropy = -2.0
batch_size = 100
"#;

fn brc_config(name: &str) -> (std::path::PathBuf, String) {
    let dir = scratch(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("brc-shaped.toml");
    std::fs::write(&path, BRC_SHAPED).unwrap();
    let text = path.to_str().unwrap().to_string();
    (dir, text)
}

#[test]
fn a_config_files_networks_are_timed_and_counted() {
    let (dir, config) = brc_config("brc-counts");
    let common = ["bench", "update", "--config", &config, "--updates", "2", "--threads", "1"];
    let json: serde_json::Value = serde_json::from_str(&ok(&[&common[..], &["--methods", "ls,fairgrad", "--json"]].concat())).unwrap();
    // The batch is the config's; the critic is the config's: per Q-network, the input layer
    // (39 + 4 inputs) and its LayerNorm, two residual blocks of two 64-wide layers with
    // LayerNorms, and the 101-bin head.
    assert_eq!(json["batch"], 100);
    let per_q = (43 * 64 + 64 + 128) + 2 * 2 * (64 * 64 + 64 + 128) + (64 * 101 + 101);
    assert_eq!(json["parameters"]["critic"], 2 * per_q, "{json}");
    for method in ["ls", "fairgrad"] {
        let timing = &json["methods"][method];
        for count in ["ms_per_update", "ops_per_update", "host_syncs_per_update"] {
            assert!(timing[count].as_f64().is_some_and(|v| v > 0.0), "{method} {count}: {json}");
        }
    }
    // A gradient method solves per component, so it waits for the device more often than `ls`.
    assert!(json["methods"]["fairgrad"]["host_syncs_per_update"].as_f64() > json["methods"]["ls"]["host_syncs_per_update"].as_f64(), "{json}");

    let text = ok(&[&common[..], &["--methods", "ls", "--set", "agent.critic_hidden=[32,32]"]].concat());
    assert!(text.contains("critic bronet [32, 32], categorical (101 bins), actor bronet [32, 32]"), "{text}");
    assert!(text.lines().any(|line| line.starts_with("| ls |")), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_networks_are_one_line_usage_errors() {
    let (dir, config) = brc_config("brc-rejected");
    let missing = dir.join("missing.toml").to_str().unwrap().to_string();
    let cases: [(Vec<&str>, &str); 6] = [
        (vec!["--preset", "nope"], "unknown preset `nope`"),
        (vec!["--config", &missing], "cannot read"),
        (vec!["--config", &config, "--set", "agent.critic_block=resnet"], "unknown variant `resnet`"),
        (vec!["--config", &config, "--set", "agent.critic_hidden=[64,32]"], "a bronet critic has one width"),
        (vec!["--set", "agent.hidden=[8]"], "--preset"),
        (vec!["--preset", "toy", "--config", &config], "cannot be used with"),
    ];
    for (extra, message) in cases {
        let command = [&["bench", "update", "--methods", "ls", "--updates", "1"][..], &extra].concat();
        let result = run(&command);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{command:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{command:?}: one line, got {stderr}");
        assert!(stderr.starts_with("mt10: ") && stderr.contains(message), "{command:?}: {stderr}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
