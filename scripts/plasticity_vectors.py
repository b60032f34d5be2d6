"""Writes the plasticity fidelity vectors (agent/tests/data/plasticity/metrics.json): fixed
feature matrices run through the scaling paper's own metric functions (McLean et al. 2025,
rainx0r/mtrl, `mtrl/monitoring/metrics.py`: `get_dormant_neuron_logs` and `compute_srank`), so
that agent/src/plasticity.rs can be checked against them to 1e-5. Only these inputs and outputs
are committed, never mtrl's code.

    # mtrl (fetched bare) with its metrics file unpacked to /tmp/mtrl-ref, a venv on the CPU:
    git --git-dir=MIRROR archive HEAD mtrl/monitoring/metrics.py | tar -x -C /tmp/mtrl-ref
    python3 -m venv /tmp/plasticity-ref
    /tmp/plasticity-ref/bin/pip install jax==0.10.2 chex==0.1.92 jaxtyping==0.3.11 numpy
    /tmp/plasticity-ref/bin/python scripts/plasticity_vectors.py /tmp/mtrl-ref COMMIT \
        agent/tests/data/plasticity

metrics.py imports three type aliases from `mtrl.types`, written with Python 3.12's `type`
statement; they only annotate, so a stand-in module gives them as `dict` and metrics.py itself
is loaded unchanged (this machine has Python 3.11).

Each case is a `[rows, units]` matrix of post-ReLU features (`{"shape", "data"}`, float32 values
written exactly) with mtrl's `<layer>_ratio` (percent of dormant units, threshold 0.1) and
`compute_srank` (delta 0.01) of it, both in float32 as mtrl computes them.
"""
import importlib.util
import json
import sys
import types
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_platforms", "cpu")

MTRL, COMMIT, OUT = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

stand_in = types.ModuleType("mtrl.types")
stand_in.Intermediates = stand_in.LayerActivationsDict = stand_in.LogDict = dict
sys.modules["mtrl"] = types.ModuleType("mtrl")
sys.modules["mtrl.types"] = stand_in
spec = importlib.util.spec_from_file_location("mtrl_metrics", MTRL / "mtrl/monitoring/metrics.py")
metrics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(metrics)


def tensor(x):
    x = np.asarray(x, dtype=np.float32)
    # The shortest decimal that reads back as the same float32.
    return {"shape": list(x.shape), "data": [float(str(v)) for v in x.reshape(-1)]}


def cases():
    rng = np.random.default_rng(27)
    relu = lambda x: np.maximum(x, 0.0).astype(np.float32)
    # A hidden layer's features as a network makes them: ReLU of a random affine map.
    healthy = relu(rng.normal(size=(64, 32)) @ rng.normal(size=(32, 24)) * 0.3 + 0.1)
    # Units that never fire (all zero), and units firing far below the layer's average.
    dead = healthy.copy()
    dead[:, [1, 5, 6, 11, 17]] = 0.0
    dead[:, [2, 20]] *= 0.01
    # Rank 3 (non-negative factors) plus a little noise: srank well below the width.
    low_rank = relu(np.abs(rng.normal(size=(80, 3))) @ np.abs(rng.normal(size=(3, 40))) + 1e-3 * rng.normal(size=(80, 40)))
    # Fewer rows than units (srank is bounded by the rows), on a wide scale of magnitudes.
    wide = relu(rng.normal(size=(12, 48)) * np.exp(rng.normal(size=48)))
    # Every unit dead: mtrl's normalisation keeps the score finite, and its srank of all-zero
    # singular values (NaN ratios) is 1.
    silent = np.zeros((16, 8), dtype=np.float32)
    return {"healthy": healthy, "dead_units": dead, "low_rank": low_rank, "wide": wide, "silent": silent}


def margins(features):
    """How far the case is from flipping a decision, so that float32 rounding (the SVD above
    all) cannot: each unit's normalised score from the 0.1 threshold, the cumulative share of the
    singular values from 0.99."""
    score = np.abs(features).mean(0)
    score = score / (score.mean() + 1e-9)
    s = np.linalg.svd(features.astype(np.float64), compute_uv=False)
    share = np.cumsum(s) / s.sum() if s.sum() > 0 else np.array([np.inf])
    return np.abs(score - 0.1).min(), np.abs(share - 0.99).min()


def main():
    out = {"source": f"rainx0r/mtrl {COMMIT} mtrl/monitoring/metrics.py", "cases": {}}
    for name, features in cases().items():
        assert min(margins(features)) > 1e-4, (name, margins(features))
        features = jax.numpy.asarray(features, dtype=jax.numpy.float32)
        logs = metrics.get_dormant_neuron_logs({"layer": features})
        out["cases"][name] = {
            "features": tensor(features),
            "dormant_percent": float(logs["layer_ratio"]),
            "dormant_count": int(logs["layer_count"]),
            "srank": int(metrics.compute_srank(features)),
        }
        print(name, out["cases"][name]["dormant_percent"], out["cases"][name]["srank"])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "metrics.json").write_text(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
