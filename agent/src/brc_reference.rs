//! BRC's own outputs on fixed inputs (`agent/tests/data/brc/`, written by
//! `scripts/brc_vectors.py` from its JAX code), for the tests that pin this crate's BRC pieces to
//! them; the same reader serves the other references' vectors under `agent/tests/data/`.
use serde_json::Value;
use tch::{Device, Kind, Tensor};

/// One vector file: scalars, tensors (`{"shape", "data"}`) and parameter sets (name -> tensor).
pub(crate) struct Vectors(Value);

impl Vectors {
    pub fn load(name: &str) -> Self {
        Self::read(&format!("brc/{name}"))
    }

    /// A vector file of any reference, by its path under `tests/data/`.
    pub fn read(path: &str) -> Self {
        let path = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")))
    }

    pub fn field(&self, key: &str) -> &Value {
        self.0.get(key).unwrap_or_else(|| panic!("no `{key}` in the vectors"))
    }

    pub fn scalar(&self, key: &str) -> f64 {
        self.field(key).as_f64().unwrap_or_else(|| panic!("`{key}` is not a number"))
    }

    pub fn floats(&self, key: &str) -> Vec<f32> {
        floats(self.field(key))
    }

    pub fn indices(&self, key: &str) -> Vec<i64> {
        self.field(key).as_array().expect("an array").iter().map(|v| v.as_i64().expect("an integer")).collect()
    }

    pub fn tensor(&self, key: &str, device: Device) -> Tensor {
        tensor(self.field(key), device)
    }

    /// Parameter `name` of the set `group` (flax's path joined by `/`; kernels as `[out, in]`).
    pub fn param(&self, group: &str, name: &str, device: Device) -> Tensor {
        tensor(self.field(group).get(name).unwrap_or_else(|| panic!("no `{name}` in `{group}`")), device)
    }
}

impl From<Value> for Vectors {
    fn from(value: Value) -> Self {
        Self(value)
    }
}

fn floats(value: &Value) -> Vec<f32> {
    let data = value.get("data").unwrap_or(value);
    data.as_array().expect("an array of numbers").iter().map(|v| v.as_f64().expect("a number") as f32).collect()
}

fn tensor(value: &Value, device: Device) -> Tensor {
    let shape: Vec<i64> = value["shape"].as_array().expect("a shape").iter().map(|d| d.as_i64().expect("a size")).collect();
    Tensor::from_slice(&floats(value)).view(shape.as_slice()).to_kind(Kind::Float).to_device(device)
}

/// Where flax keeps the critic ensemble's BroNet among the critic's parameters.
pub(crate) const CRITIC: &str = "q_value_ensemble/q_value_ensemble/critic/";

/// Flax's names of a BroNet's parameters (under `prefix`), in the order of this crate's forward
/// pass: input layer and its LayerNorm, each block's two layers and norms, the head if any.
pub(crate) fn bronet_names(prefix: &str, blocks: usize, head: bool) -> Vec<String> {
    let mut layers = vec!["Dense_0".to_string(), "LayerNorm_0".to_string()];
    for block in 0..blocks {
        for layer in ["Dense_0", "LayerNorm_0", "Dense_1", "LayerNorm_1"] {
            layers.push(format!("BronetBlock_{block}/{layer}"));
        }
    }
    if head {
        layers.push("Dense_1".to_string());
    }
    layers
        .iter()
        .flat_map(|layer| {
            let first = if layer.contains("LayerNorm") { "scale" } else { "kernel" };
            [format!("{prefix}{layer}/{first}"), format!("{prefix}{layer}/bias")]
        })
        .collect()
}

/// The largest absolute difference between two tensors of the same shape.
pub(crate) fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}
