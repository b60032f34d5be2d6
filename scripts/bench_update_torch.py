"""The reference side of `mt10 bench update --compare-torch`: the same multi-task SAC update
written the usual PyTorch way, to time ours against.

mtrl's MT-SAC (3x400 actor and twin critics, one shared temperature, batch drawn uniformly from
one replay buffer of synthetic MT10-shaped transitions), the per-task losses of each component
as task means, `torch.optim.Adam` with its defaults. `ls` steps on the mean of the task losses;
`fairgrad` and `nash` take each task's gradient with its own `torch.autograd.grad` call, form the
Gram matrix `J J^T`, solve for the weights and step on `d = w^T J`, as their published MT10
code does. FairGrad: 20 clipped SGD-with-momentum steps on `||G w - w^(-1/alpha)||^2` in torch
(alpha 2, lr 0.1, momentum 0.5), keeping the best iterate. Nash-MTL: `G w = 1/w` by Newton steps
from the last weights (the published code solves a conic program with cvxpy/ECOS instead).

`--serve`: builds the agents, prints `ready`, then for each `round` line read from stdin runs one
update per method and prints a JSON object of milliseconds per method, so that the caller can
interleave these updates with its own. Without `--serve`: times `--updates` rounds itself and
prints the medians as JSON.
"""
import argparse
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
GAMMA, TAU, LR = 0.99, 0.005, 3e-4


def mlp(inputs, hidden, outputs):
    layers, width = [], inputs
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, outputs))


class Actor(nn.Module):
    def __init__(self, obs_dim, action_dim, hidden):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 2 * action_dim)

    def sample(self, obs):
        mean, raw_log_std = self.net(obs).chunk(2, -1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (raw_log_std.tanh() + 1)
        noise = torch.randn_like(mean)
        action = (mean + noise * log_std.exp()).tanh()
        gaussian = (-0.5 * noise.square() - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * mean.shape[-1]
        return action, gaussian - ((1 - action.square()).relu() + 1e-6).log().sum(-1)


class Critic(nn.Module):
    def __init__(self, obs_dim, action_dim, hidden):
        super().__init__()
        self.q1 = mlp(obs_dim + action_dim, hidden, 1)
        self.q2 = mlp(obs_dim + action_dim, hidden, 1)

    def forward(self, obs, action):
        x = torch.cat([obs, action], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


def fairgrad_weights(gram, alpha=2.0, iters=20, lr=0.1):
    k = gram.shape[0]
    w = torch.full((k,), 1.0 / k, dtype=gram.dtype, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=lr, momentum=0.5)
    best = (math.inf, w.detach().clone())
    for _ in range(iters):
        optimizer.zero_grad()
        loss = (gram @ w - (1.0 / (w + 1e-8)).pow(1.0 / alpha)).square().sum()
        if loss.item() < best[0]:
            best = (loss.item(), w.detach().clone())
        loss.backward()
        torch.nn.utils.clip_grad_norm_([w], 1.0)
        optimizer.step()
        with torch.no_grad():
            w.clamp_(min=1e-8)
    return best[1]


class NashWeights:
    """`G w = 1/w` (Nash-MTL's bargaining solution) by damped Newton steps, warm-started."""

    def __init__(self, k):
        self.w = torch.full((k,), 1.0, dtype=torch.float64)

    def __call__(self, gram, steps=20):
        gram = gram / gram.norm()
        w = self.w.clone()
        for _ in range(steps):
            residual = gram @ w - 1.0 / w
            if residual.abs().max() < 1e-9:
                break
            step = torch.linalg.solve(gram + torch.diag(1.0 / w.square()), residual)
            scale = 1.0
            while (w - scale * step).min() <= 0:
                scale *= 0.5
            w = w - scale * step
        self.w = w
        return w


class Agent:
    def __init__(self, method, args, seed):
        torch.manual_seed(seed)
        self.method, self.k, self.batch = method, args.tasks, args.batch
        self.device = torch.device(args.device)
        hidden = [400] * 3
        self.actor = Actor(args.obs, args.action, hidden).to(self.device)
        self.critic = Critic(args.obs, args.action, hidden).to(self.device)
        self.critic_target = Critic(args.obs, args.action, hidden).to(self.device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.log_alpha = torch.zeros(1, device=self.device, requires_grad=True)
        self.target_entropy = -float(args.action)
        self.learners = [
            (list(self.critic.parameters()), torch.optim.Adam(self.critic.parameters(), lr=LR)),
            (list(self.actor.parameters()), torch.optim.Adam(self.actor.parameters(), lr=LR)),
            ([self.log_alpha], torch.optim.Adam([self.log_alpha], lr=LR)),
        ]
        self.nash = [NashWeights(self.k) for _ in self.learners]
        self.rng = np.random.default_rng(seed)
        self.fill_replay(args)

    def fill_replay(self, args):
        steps = 2 * self.batch // self.k + 1
        rows = steps * self.k
        self.obs = self.rng.standard_normal((rows, args.obs), dtype=np.float32)
        self.next_obs = self.rng.standard_normal((rows, args.obs), dtype=np.float32)
        self.action = self.rng.uniform(-1, 1, (rows, args.action)).astype(np.float32)
        self.reward = self.rng.uniform(0, 10, rows).astype(np.float32)
        self.not_done = (self.rng.uniform(size=rows) >= 0.05).astype(np.float32)
        self.task = np.tile(np.arange(self.k), steps)

    def sample(self):
        idx = self.rng.integers(0, len(self.task), self.batch)
        as_tensor = lambda a: torch.as_tensor(a[idx], device=self.device)
        task = as_tensor(self.task)
        counts = torch.bincount(task, minlength=self.k).clamp(min=1).to(torch.float32)
        return [as_tensor(a) for a in (self.obs, self.action, self.reward, self.next_obs, self.not_done)], task, counts

    def task_means(self, values, task, counts):
        return torch.zeros(self.k, device=values.device).index_add(0, task, values) / counts

    def update(self):
        (obs, action, reward, next_obs, not_done), task, counts = self.sample()
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(next_obs)
            q1, q2 = self.critic_target(next_obs, next_action)
            target_q = reward + GAMMA * not_done * (torch.min(q1, q2) - alpha * next_log_prob)
        q1, q2 = self.critic(obs, action)
        self.step(0, self.task_means((q1 - target_q).square() + (q2 - target_q).square(), task, counts))

        new_action, log_prob = self.actor.sample(obs)
        q1, q2 = self.critic(obs, new_action)
        self.step(1, self.task_means(alpha * log_prob - torch.min(q1, q2), task, counts))

        entropy_gap = self.task_means(-log_prob.detach() - self.target_entropy, task, counts)
        self.step(2, self.log_alpha.exp() * entropy_gap)

        with torch.no_grad():
            for target, param in zip(self.critic_target.parameters(), self.critic.parameters()):
                target.lerp_(param, TAU)

    def step(self, component, losses):
        params, optimizer = self.learners[component]
        if self.method == "ls":
            grads = torch.autograd.grad(losses.mean(), params)
        else:
            rows = [
                torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[k], params, retain_graph=True)])
                for k in range(self.k)
            ]
            jacobian = torch.stack(rows)
            gram = (jacobian @ jacobian.T).double().cpu()
            weights = fairgrad_weights(gram) if self.method == "fairgrad" else self.nash[component](gram)
            direction = weights.to(jacobian) @ jacobian
            grads = direction.split([p.numel() for p in params])
        for param, grad in zip(params, grads):
            param.grad = grad.view_as(param)
        optimizer.step()


def timed_round(agents):
    times = {}
    for method, agent in agents.items():
        start = time.perf_counter()
        agent.update()
        if agent.device.type == "cuda":
            torch.cuda.synchronize()
        times[method] = (time.perf_counter() - start) * 1e3
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="ls,fairgrad,nash")
    parser.add_argument("--batch", type=int, default=1280)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--obs", type=int, default=39)
    parser.add_argument("--action", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    agents = {method: Agent(method, args, seed=0) for method in args.methods.split(",")}
    if args.serve:
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "round":
                sys.exit(f"unexpected request {line.strip()!r}")
            print(json.dumps(timed_round(agents)), flush=True)
        return
    rounds = [timed_round(agents) for _ in range(args.warmup + args.updates)][args.warmup:]
    medians = {method: float(np.median([r[method] for r in rounds])) for method in agents}
    print(json.dumps({"threads": torch.get_num_threads(), "batch": args.batch, "ms_per_update": medians}))


if __name__ == "__main__":
    main()
