"""Writes the BRC fidelity vectors (agent/tests/data/brc/*.json): fixed weights and inputs run
through BRC's own JAX code (Nauman et al. 2025, naumix/BiggerRegularizedCategorical), so the Rust
critic can be checked against it to 1e-5. Only these inputs and outputs are committed, never BRC's
code.

    # the repository (fetched bare) unpacked to /tmp/brc, a venv with its pinned JAX on the CPU:
    python3 -m venv /tmp/brc-venv
    /tmp/brc-venv/bin/pip install jax==0.4.35 jaxlib==0.4.35 numpy==1.26.4 scipy==1.12.0 \
        flax==0.10.1 optax==0.2.5 distrax==0.1.5
    PYTHONPATH=/tmp/brc /tmp/brc-venv/bin/python scripts/brc_vectors.py agent/tests/data/brc

Every JSON file names the commit it came from. Tensors are `{"shape": [...], "data": [...]}`,
row-major float32 values written exactly. Dense kernels are stored as PyTorch lays them out,
`[out, in]` (flax's `[in, out]` transposed); a leading axis of 2 on critic parameters is the
ensemble (flax vmap), member 0 first.

What is captured, and how, without changing BRC's code:
- `bronet_block.json`, `critic.json`, `actor.json`: `flax.linen.Module.apply` of BRC's
  `BronetBlock`, `Critic` (task embedding, input layer, blocks, 101-bin head, ensemble of 2) and
  `NormalTanhPolicy`, with its orthogonal init and then LayerNorm gains, biases and dense biases
  set to random values, so that every parameter matters.
- `critic_update.json`: one call of BRC's `update_critic`. The projected target distribution is
  the argument of its one `jax.lax.stop_gradient` call (recorded by wrapping that function for the
  call); the gradient of its loss is what its optimiser receives (recorded by an optax
  transformation placed before its `adamw`), and the parameters after the step are its result.
  The sampled next actions and their log-probabilities are recomputed by the same call on the same
  key, and checked against the recorded target.
- `actor_update.json`: one call of `update_actor`; the loss is in its info.
- `reward_normalizer.json`: `RewardNormalizer` as `train.py` builds it (variable-length
  episodes), fed fixed rewards, then `normalize` on a batch.
- `adamw.json`: three steps of `optax.adamw` with BRC's settings (lr 3e-4, defaults otherwise).
"""
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.agent import update as brc_update
from jaxrl.networks import BronetBlock, Critic, NormalTanhPolicy, Temperature
from jaxrl.normalizer import RewardNormalizer
from jaxrl.utils import Batch, Model

jax.config.update("jax_platforms", "cpu")

OBS, ACT, TASKS, EMBED, WIDTH, BINS, ENSEMBLE = 6, 3, 3, 4, 8, 101, 2
PER_TASK = 2  # samples of each task in a batch
V_MAX, DISCOUNT = 10.0, 0.99  # BRC's defaults (brc_learner.py)


def tensor(x):
    x = np.asarray(x, dtype=np.float32)
    # The shortest decimal that reads back as the same float32.
    return {"shape": list(x.shape), "data": [float(repr(v)) for v in x.reshape(-1)]}


def params_json(tree):
    """Flattened `a/b/c` names; kernels transposed to `[..., out, in]`."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = "/".join(p.key for p in path)
        leaf = np.asarray(leaf)
        if name.endswith("kernel"):
            leaf = np.swapaxes(leaf, -1, -2)
        out[name] = tensor(leaf)
    return out


def randomise(tree, rng):
    """LayerNorm gains around 1, LayerNorm and dense biases around 0: none of them trivial."""
    def leaf(path, x):
        name = path[-1].key
        if name == "scale":
            return x + 0.3 * rng.standard_normal(x.shape).astype(np.float32)
        if name == "bias":
            return x + 0.2 * rng.standard_normal(x.shape).astype(np.float32)
        return x
    return jax.tree_util.tree_map_with_path(leaf, tree)


def write(directory, name, doc):
    doc = {"source": SOURCE, **doc}
    (directory / name).write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def bronet_block(rng):
    x = rng.standard_normal((5, WIDTH)).astype(np.float32)
    block = BronetBlock(hidden_dims=WIDTH, activations=jax.nn.relu)
    params = randomise(block.init(jax.random.PRNGKey(1), x)["params"], rng)
    y = block.apply({"params": params}, x)
    return {"about": "BronetBlock(hidden_dims=8, relu): x + LN(Dense(relu(LN(Dense(x))))); flax LayerNorm epsilon 1e-6",
            "layer_norm_epsilon": 1e-6, "params": params_json(params), "x": tensor(x), "y": tensor(y)}


def batch(rng):
    task_ids = np.repeat(np.arange(TASKS, dtype=np.int32), PER_TASK)
    n = task_ids.size
    rewards = np.array([12.0, 0.5, -0.7, -12.0, 3.25, 0.0], dtype=np.float32)[:n]
    masks = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0], dtype=np.float32)[:n]
    return Batch(observations=rng.standard_normal((n, OBS)).astype(np.float32),
                 actions=rng.uniform(-0.95, 0.95, (n, ACT)).astype(np.float32),
                 rewards=rewards, masks=masks,
                 next_observations=rng.standard_normal((n, OBS)).astype(np.float32),
                 task_ids=task_ids)


def batch_json(b):
    return {"observations": tensor(b.observations), "actions": tensor(b.actions), "rewards": tensor(b.rewards),
            "masks": tensor(b.masks), "next_observations": tensor(b.next_observations),
            "task_ids": [int(t) for t in b.task_ids]}


class Recorder:
    """An optax transformation that keeps the gradient it is given, then passes it on."""
    def __init__(self):
        self.grads = []

    def transformation(self):
        def init(params):
            return optax.EmptyState()

        def update(grads, state, params=None):
            self.grads.append(grads)
            return grads, state
        return optax.GradientTransformation(init, update)


def models(rng, recorder):
    critic_def = Critic(num_tasks=TASKS, embedding_size=EMBED, ensemble_size=ENSEMBLE, hidden_dims=WIDTH,
                        depth=2, output_nodes=BINS, multitask=True)
    actor_def = NormalTanhPolicy(action_dim=ACT, hidden_dims=WIDTH)
    obs0, act0, ids0 = jnp.zeros((1, OBS)), jnp.zeros((1, ACT)), jnp.zeros((1,), jnp.int32)
    critic_tx = optax.chain(recorder.transformation(), optax.adamw(learning_rate=3e-4))
    critic = Model.create(critic_def, inputs=[jax.random.PRNGKey(2), obs0, act0, ids0], tx=critic_tx)
    critic = critic.replace(params=randomise(critic.params, rng))
    critic = critic.replace(opt_state=critic.tx.init(critic.params))
    target = Model.create(critic_def, inputs=[jax.random.PRNGKey(3), obs0, act0, ids0])
    target = target.replace(params=randomise(target.params, rng))
    actor = Model.create(actor_def, inputs=[jax.random.PRNGKey(4), jnp.zeros((1, OBS + EMBED))],
                         tx=optax.adamw(learning_rate=3e-4))
    actor_params = randomise(actor.params, rng)
    # Standard deviations near 0.5 rather than e^-10: log-probabilities of a trained policy.
    actor_params["Dense_1"]["kernel"] = 0.1 * actor_params["Dense_1"]["kernel"]
    actor_params["Dense_1"]["bias"] = actor_params["Dense_1"]["bias"] + 0.7
    actor = actor.replace(params=actor_params)
    actor = actor.replace(opt_state=actor.tx.init(actor.params))
    temp = Model.create(Temperature(0.1), inputs=[jax.random.PRNGKey(5)], tx=optax.adam(3e-4, b1=0.5))
    return actor, critic, target, temp


def critic_forward(rng, critic, b):
    logits = critic(b.observations, b.actions, b.task_ids)
    embedding = critic(None, None, b.task_ids, True)
    return {"about": "BRC Critic(num_tasks=3, embedding_size=4, ensemble_size=2, hidden_dims=8, depth=2, "
                     "output_nodes=101, multitask=True): input concat(obs, action, task_embedding / |task_embedding|)",
            "layer_norm_epsilon": 1e-6, "params": params_json(critic.params), **batch_json(b),
            "task_embedding": tensor(embedding), "logits": tensor(logits)}


def actor_forward(actor, critic, b):
    inputs = brc_update.build_actor_input(critic, b.observations, b.task_ids, True)
    dist = actor(inputs)
    actions = np.clip(b.actions, -0.9, 0.9)
    return {"about": "BRC NormalTanhPolicy(action_dim=3, hidden_dims=8, depth=1) on concat(obs, critic's task "
                     "embedding); log_std = -10 + 6 * (1 + tanh(raw)); log_prob of tanh-squashed actions",
            "layer_norm_epsilon": 1e-6, "params": params_json(actor.params), "inputs": tensor(inputs),
            "means": tensor(dist.distribution.loc), "stds": tensor(dist.distribution.scale_diag),
            "actions": tensor(actions), "log_probs": tensor(dist.log_prob(actions))}


def critic_update(actor, critic, target, temp, b, recorder):
    key = jax.random.PRNGKey(7)
    targets = []
    stop_gradient = jax.lax.stop_gradient

    def recording(x):
        # JAX's softmax also stops gradients (of its row maxima, [ensemble, B, 1]).
        if not isinstance(x, jax.core.Tracer) and x.shape == (b.rewards.size, BINS):
            targets.append(np.asarray(x))
        return stop_gradient(x)
    brc_update.jax.lax.stop_gradient = recording
    try:
        new_critic, info = brc_update.update_critic(key, actor, critic, target, temp, b, DISCOUNT, BINS, V_MAX, True)
    finally:
        brc_update.jax.lax.stop_gradient = stop_gradient
    assert len(targets) == 1, len(targets)
    target_probs = targets[0]
    # The same calls update_critic makes before its projection, on the same key.
    inputs = brc_update.build_actor_input(critic, b.next_observations, b.task_ids, True)
    next_actions, next_log_probs = actor(inputs).sample_and_log_prob(seed=key)
    next_logits = target(b.next_observations, next_actions, b.task_ids)
    next_probs = jax.nn.softmax(next_logits, axis=-1).mean(axis=0)
    check = projection(np.asarray(next_probs, np.float64), b, float(temp()), np.asarray(next_log_probs, np.float64))
    assert np.abs(check - target_probs).max() < 1e-5, np.abs(check - target_probs).max()
    logits = critic(b.observations, b.actions, b.task_ids)
    return {"about": "one BRC update_critic: target critic -> mean of the ensemble's softmax -> projection of "
                     "r + discount * mask * (z - temperature * next_log_prob) onto the 101 bins of [-v_max, v_max]; "
                     "loss = sum over the ensemble of the batch mean of cross-entropy; then AdamW(3e-4, wd 1e-4). "
                     "The online critic and the actor are those of critic.json and actor.json",
            "discount": DISCOUNT, "v_max": V_MAX, "num_bins": BINS, "layer_norm_epsilon": 1e-6,
            "temperature": float(temp()), **batch_json(b),
            "target_params": params_json(target.params),
            "next_actions": tensor(next_actions), "next_log_probs": tensor(next_log_probs),
            "next_logits": tensor(next_logits), "next_probs": tensor(next_probs),
            "target_probs": tensor(target_probs), "logits": tensor(logits),
            "q_target_mean": float(info["q_mean"]), "critic_loss": float(info["critic_loss"]),
            "critic_grads": params_json(recorder.grads[-1]), "critic_params_after": params_json(new_critic.params)}


def projection(next_probs, b, temperature, next_log_probs):
    """An independent float64 rewrite of the C51 projection, to check what was recorded."""
    z = np.linspace(-V_MAX, V_MAX, BINS)
    dz = 2 * V_MAX / (BINS - 1)
    shifted = b.rewards[:, None] + DISCOUNT * b.masks[:, None] * (z[None] - temperature * next_log_probs[:, None])
    position = (np.clip(shifted, -V_MAX, V_MAX) + V_MAX) / dz
    out = np.zeros_like(next_probs)
    for i in range(out.shape[0]):
        for j in range(BINS):
            lo, hi = int(np.floor(position[i, j])), int(np.ceil(position[i, j]))
            if lo == hi:
                out[i, lo] += next_probs[i, j]
            else:
                out[i, lo] += next_probs[i, j] * (hi - position[i, j])
                out[i, hi] += next_probs[i, j] * (position[i, j] - lo)
    return out


def actor_update(actor, critic, temp, b):
    key = jax.random.PRNGKey(11)
    _, info = brc_update.update_actor(key, actor, critic, temp, b, BINS, V_MAX, True)
    inputs = brc_update.build_actor_input(critic, b.observations, b.task_ids, True)
    actions, log_probs = actor(inputs).sample_and_log_prob(seed=key)
    q_probs = jax.nn.softmax(critic(b.observations, actions, b.task_ids), axis=-1).mean(axis=0)
    q = (np.linspace(-V_MAX, V_MAX, BINS)[None] * np.asarray(q_probs)).sum(-1)
    loss = float(np.mean(np.asarray(log_probs) * float(temp()) - q))
    assert abs(loss - float(info["actor_loss"])) < 1e-5, (loss, info["actor_loss"])
    return {"about": "one BRC update_actor: Q = sum over bins of z * (mean over the ensemble of softmax); "
                     "loss = mean(temperature * log_prob - Q); sampled_actions: those the policy drew. "
                     "The critic is that of critic.json",
            "v_max": V_MAX, "num_bins": BINS, "temperature": float(temp()), **batch_json(b),
            "sampled_actions": tensor(actions), "log_probs": tensor(log_probs),
            "q": tensor(q), "actor_loss": float(info["actor_loss"]), "entropy": float(info["entropy"])}


def reward_normalizer(rng):
    target_entropy = -ACT / 2  # BRC's default, -|A| / 2
    normalizer = RewardNormalizer(TASKS, target_entropy=target_entropy, discount=DISCOUNT)
    steps = []
    # Episodes of different lengths per task; task 2 ends by a terminal (no bootstrap) once.
    lengths = {0: [5, 7], 1: [4, 4, 4], 2: [6]}
    ends = {k: np.cumsum(v) for k, v in lengths.items()}
    for t in range(12):
        rewards = (rng.standard_normal(TASKS) * np.array([1.0, 4.0, 0.5]) + np.array([0.5, -1.0, 2.0])).astype(np.float32)
        terminal = np.array([False, False, t + 1 == 6])
        truncate = np.array([t + 1 in ends[0], t + 1 in ends[1], False])
        normalizer.update(rewards, terminal, truncate)
        steps.append({"rewards": [float(r) for r in rewards], "terminal": terminal.tolist(), "truncate": truncate.tolist()})
    task_ids = np.array([0, 1, 2, 2, 1, 0], dtype=np.int32)
    b = Batch(observations=None, actions=None, rewards=rng.standard_normal(6).astype(np.float32), masks=None,
              next_observations=None, task_ids=task_ids)
    temperature = np.float32(0.37)
    normalised = normalizer.normalize(b, temperature)
    return {"about": "RewardNormalizer(num_tasks=3, target_entropy=-1.5, discount=0.99, v_max=10) as train.py builds "
                     "it (variable-length episodes); update() per step, then normalize(batch, temperature)",
            "discount": DISCOUNT, "v_max": V_MAX, "target_entropy": target_entropy, "steps": steps,
            "returns_min": tensor(normalizer.returns_min_norm), "returns_max": tensor(normalizer.returns_max_norm),
            "temperature": float(temperature), "task_ids": task_ids.tolist(), "rewards": tensor(b.rewards),
            "normalized_rewards": tensor(normalised.rewards)}


def adamw(rng):
    tx = optax.adamw(learning_rate=3e-4)
    params = rng.standard_normal(5).astype(np.float32)
    state = tx.init(jnp.asarray(params))
    grads = [rng.standard_normal(5).astype(np.float32) * s for s in (1.0, 0.01, 3.0)]
    p, after = jnp.asarray(params), []
    for g in grads:
        updates, state = tx.update(jnp.asarray(g), state, p)
        p = optax.apply_updates(p, updates)
        after.append(tensor(p))
    return {"about": "optax.adamw(learning_rate=3e-4) as BRC builds its actor and critic optimisers: "
                     "b1 0.9, b2 0.999, eps 1e-8, weight_decay 1e-4 on every parameter",
            "learning_rate": 3e-4, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 1e-4,
            "params": tensor(params), "grads": [tensor(g) for g in grads], "params_after": after}


def main():
    directory = Path(sys.argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(27)
    write(directory, "bronet_block.json", bronet_block(rng))
    recorder = Recorder()
    actor, critic, target, temp = models(rng, recorder)
    b = batch(rng)
    write(directory, "critic.json", critic_forward(rng, critic, b))
    write(directory, "actor.json", actor_forward(actor, critic, b))
    write(directory, "critic_update.json", critic_update(actor, critic, target, temp, b, recorder))
    write(directory, "actor_update.json", actor_update(actor, critic, temp, b))
    write(directory, "reward_normalizer.json", reward_normalizer(rng))
    write(directory, "adamw.json", adamw(rng))


MIRROR = "/work/.mirror/naumix+BiggerRegularizedCategorical/repo"
SOURCE = "naumix/BiggerRegularizedCategorical@" + subprocess.run(
    ["git", "--git-dir", MIRROR, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

if __name__ == "__main__":
    main()
