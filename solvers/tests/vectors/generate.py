"""Runs TorchJD's and LibMTL's own code on fixed inputs and writes the JSON test vectors here.

Not shipped code: the recipe for the vectors. Usage, with both repositories unpacked and a venv
holding torch, numpy, qpsolvers and quadprog (TorchJD's QP solver):

    PYTHONPATH=/path/to/torchjd/src python generate.py OUT_DIR /path/to/LibMTL
"""
import json, random, sys, types, importlib.util
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
OUT, LIBMTL = sys.argv[1], sys.argv[2]

# LibMTL's package __init__ imports every method (cvxpy for Nash-MTL): load single files instead.
for name, path in [("LibMTL", f"{LIBMTL}/LibMTL"), ("LibMTL.weighting", f"{LIBMTL}/LibMTL/weighting")]:
    mod = types.ModuleType(name); mod.__path__ = [path]; sys.modules[name] = mod
import importlib
def libmtl(name):
    return getattr(importlib.import_module(f"LibMTL.weighting.{name}"), name)
# LibMTL's Aligned-MTL calls torch.symeig, removed in torch 2: eigh is its documented replacement.
torch.symeig = lambda M, eigenvectors=True: torch.linalg.eigh(M)

from torchjd.aggregation import UPGrad, DualProj, ConFIG, AlignedMTL

def lists(t):
    return t.detach().tolist()

def inputs():
    rng = np.random.default_rng(0)
    common = rng.uniform(-1, 1, 16)
    scales = 10 ** rng.uniform(-1, 1, 10)
    k10 = [(s * (0.5 * common + rng.uniform(-1, 1, 16))).tolist() for s in scales]
    return {
        "conflicting_pair": [[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]],
        "pareto_stationary": [[2.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]],
        "agreeing": [[1.0, 2.0, 0.0], [2.0, 1.0, 0.5], [0.5, 0.5, 1.0]],
        "random_k10": k10,
    }

def losses_for(k, seed):
    return np.random.default_rng(100 + seed).uniform(0.2, 5.0, k).tolist()

def torchjd_cases():
    out = {}
    for method, make in [("upgrad", UPGrad), ("dualproj", DualProj), ("aligned_mtl", AlignedMTL)]:
        cases = []
        for name, rows in inputs().items():
            J = torch.tensor(rows)
            agg = make()
            w = agg.gramian_weighting(J @ J.T)
            case = {"name": name, "jacobian": rows, "weights": lists(w), "direction": lists(agg(J))}
            if method == "aligned_mtl":
                task = Harness(libmtl("Aligned_MTL"), len(rows), len(rows[0]))
                lw, ld = task.run(rows, [1.0] * len(rows))
                case["libmtl_weights"], case["libmtl_direction"] = lw, ld
            cases.append(case)
        out[method] = cases
    cases = []
    for name, rows in inputs().items():
        J = torch.tensor(rows)
        cases.append({"name": name, "jacobian": rows, "direction": lists(ConFIG()(J))})
    out["config"] = cases
    return out

class Harness:
    """A LibMTL weighting on linear task losses L_i(theta) = c_i + g_i . theta at theta = 0, so the
    task gradients are the rows g_i and the losses are c_i."""
    def __init__(self, cls, k, p, epoch=0):
        class Task(cls):
            def get_share_params(inner):
                return [self.theta]
            def zero_grad_share_params(inner):
                self.theta.grad = torch.zeros_like(self.theta)
        self.theta = torch.zeros(p, requires_grad=True)
        self.method = Task()
        self.method.task_num, self.method.device, self.method.rep_grad, self.method.epoch = k, "cpu", False, epoch
        self.method.init_param()

    def run(self, rows, losses, **kwargs):
        self.theta.grad = None
        J = torch.tensor(rows)
        L = torch.tensor(losses) + J @ self.theta
        L.retain_grad()
        batch_weight = self.method.backward(L, **kwargs)
        d = self.theta.grad
        w = None if batch_weight is None else [float(x) for x in batch_weight]
        return w, lists(d)

def sequence(k, p, steps, seed):
    rng = np.random.default_rng(seed)
    common = rng.uniform(-1, 1, p)
    out = []
    for _ in range(steps):
        rows = [(10 ** rng.uniform(-1, 1) * (0.3 * common + rng.uniform(-1, 1, p))).tolist() for _ in range(k)]
        out.append((rows, rng.uniform(0.2, 5.0, k).tolist()))
    return out

def gradvac_cases():
    cases = []
    for name, k, p, steps, seed in [("pair", 2, 3, 4, 1), ("k3", 3, 4, 5, 2), ("k10", 10, 16, 4, 3)]:
        h = Harness(libmtl("GradVac"), k, p)
        h.method.step = 0
        orders = []
        real_shuffle = random.shuffle
        random.seed(seed)
        def recording(x):
            real_shuffle(x); orders[-1].append(list(x))
        random.shuffle = recording
        out = []
        for rows, losses in sequence(k, p, steps, seed):
            orders.append([])
            _, d = h.run(rows, losses, GradVac_beta=0.5, GradVac_group_type=0)
            out.append({"jacobian": rows, "orders": orders[-1], "direction": d, "rho": lists(h.method.rho_T[:, :, 0])})
        random.shuffle = real_shuffle
        cases.append({"name": name, "beta": 0.5, "steps": out})
    return cases

def db_mtl_cases():
    cases = []
    for name, k, p, steps, seed, beta, sigma in [("k3", 3, 4, 4, 4, 0.9, 0.0), ("k10", 10, 16, 4, 5, 0.9, 0.0), ("k3_sigma", 3, 4, 4, 6, 0.9, 0.5)]:
        h = Harness(libmtl("DB_MTL"), k, p)
        h.method._compute_grad_dim(); h.method.init_param()
        out = []
        for rows, losses in sequence(k, p, steps, seed):
            _, d = h.run(rows, losses, DB_beta=beta, DB_beta_sigma=sigma)
            buf = h.method.grad_buffer
            u = buf.norm(dim=-1)
            out.append({"jacobian": rows, "losses": losses, "direction": d, "weights": lists(u.max() / (u + 1e-8))})
        cases.append({"name": name, "beta": beta, "beta_sigma": sigma, "steps": out})
    return cases

def stch_cases():
    cases = []
    for name, k, p, warmup, steps, seed, mu in [("k3", 3, 4, 2, 6, 7, 1.0), ("k10", 10, 16, 1, 4, 8, 0.5)]:
        h = Harness(libmtl("STCH"), k, p)
        out = []
        # LibMTL counts epochs; one solve per epoch here, so warmup_epoch counts solves.
        for epoch, (rows, losses) in enumerate(sequence(k, p, steps, seed)):
            h.method.epoch = epoch
            h.theta.grad = None
            J = torch.tensor(rows)
            L = torch.tensor(losses) + J @ h.theta
            L.retain_grad()
            h.method.backward(L, STCH_mu=mu, STCH_warmup_epoch=warmup)
            out.append({"losses": losses, "weights": lists(L.grad)})
        cases.append({"name": name, "mu": mu, "warmup": warmup, "steps": out})
    return cases

def gradnorm_cases():
    cases = []
    for name, k, p, warmup, steps, seed, alpha, lr in [("k3", 3, 4, 2, 6, 9, 1.5, 0.025), ("k10", 10, 16, 1, 4, 10, 1.5, 0.1)]:
        h = Harness(libmtl("GradNorm"), k, p)
        optimizer = torch.optim.Adam([h.method.loss_scale], lr=lr)
        seq = sequence(k, p, steps, seed)
        # LibMTL's trainer keeps each epoch's mean losses; epoch 0 is the warm-up, one solve an epoch
        # here except that the warm-up spans `warmup` solves.
        h.method.train_loss_buffer = np.array([np.mean([l for _, l in seq[:warmup]], axis=0)]).T
        out = []
        for t, (rows, losses) in enumerate(seq):
            h.method.epoch = 0 if t < warmup else 1
            optimizer.zero_grad()
            w, d = h.run(rows, losses, alpha=alpha)
            optimizer.step()
            out.append({"jacobian": rows, "losses": losses, "weights": w, "direction": d})
        cases.append({"name": name, "alpha": alpha, "lr": lr, "warmup": warmup, "steps": out})
    return cases

def sdmgrad_cases():
    cases = []
    for name, k, p, steps, seed, lamda, niter in [("pair", 2, 3, 3, 11, 0.3, 20), ("k10", 10, 16, 3, 12, 0.3, 20), ("k3_lambda1", 3, 4, 3, 13, 1.0, 5)]:
        h = Harness(libmtl("SDMGrad"), k, p)
        out = []
        for rows, losses in sequence(k, p, steps, seed):
            h.theta.grad = torch.zeros_like(h.theta)
            J = torch.tensor(rows)
            L = torch.tensor(losses) + J @ h.theta
            # The three batches (zeta, xi1, xi2) are the same batch.
            h.method.backward([L, L, L], SDMGrad_lamda=lamda, SDMGrad_niter=niter)
            w = (h.method.w + lamda / k) / (1 + lamda)
            out.append({"jacobian": rows, "weights": lists(w), "direction": lists(h.theta.grad)})
        cases.append({"name": name, "lambda": lamda, "iters": niter, "steps": out})
    return cases

def excess_mtl_cases():
    cases = []
    for name, k, p, steps, seed, eta in [("pair", 2, 3, 5, 14, 0.01), ("k3", 3, 4, 5, 15, 0.1), ("k10", 10, 16, 4, 16, 0.01)]:
        h = Harness(libmtl("ExcessMTL"), k, p)
        h.method._compute_grad_dim()
        # It clears the shared gradients through its encoder.
        h.method.encoder = types.SimpleNamespace(zero_grad=h.method.zero_grad_share_params)
        out = []
        for rows, losses in sequence(k, p, steps, seed):
            w, d = h.run(rows, losses, robust_step_size=eta)
            out.append({"jacobian": rows, "weights": w, "direction": d})
        cases.append({"name": name, "eta": eta, "steps": out})
    return cases

TORCHJD = "TorchJD/torchjd 46962c2 (2026-02-13), float64, quadprog 0.1.14 via qpsolvers 4.13.0"
LIBMTL_AT = "median-research-group/LibMTL 4336804 (2025-05-14), float64, torch 2.11"
SOURCES = {
    "upgrad": f"torchjd.aggregation.UPGrad: {TORCHJD}",
    "dualproj": f"torchjd.aggregation.DualProj: {TORCHJD}",
    "config": f"torchjd.aggregation.ConFIG (direction only: it exposes no weights): {TORCHJD}",
    "aligned_mtl": f"torchjd.aggregation.AlignedMTL; libmtl_*: LibMTL Aligned_MTL (torch.symeig as torch.linalg.eigh): {TORCHJD}; {LIBMTL_AT}",
    "gradvac": f"LibMTL GradVac, GradVac_group_type 0, with Python's random.shuffle orders recorded: {LIBMTL_AT}",
    "db_mtl": f"LibMTL DB_MTL (weights: max ||buffer|| / (||buffer_i|| + 1e-8) of its grad_buffer): {LIBMTL_AT}",
    "gradnorm": f"LibMTL GradNorm, its loss_scale stepped by torch.optim.Adam (lr as given), epoch 0 the warm-up: {LIBMTL_AT}",
    "sdmgrad": f"LibMTL SDMGrad with the same batch as zeta, xi1 and xi2; weights = (w + lambda / K) / (1 + lambda): {LIBMTL_AT}",
    "excess_mtl": f"LibMTL ExcessMTL (robust_step_size as eta); weights = its loss_weight: {LIBMTL_AT}",
    "stch": f"LibMTL STCH, one backward per epoch; weights = d loss / d L_i: {LIBMTL_AT}",
}
vectors = torchjd_cases()
vectors["gradvac"] = gradvac_cases()
vectors["db_mtl"] = db_mtl_cases()
vectors["stch"] = stch_cases()
vectors["gradnorm"] = gradnorm_cases()
vectors["sdmgrad"] = sdmgrad_cases()
vectors["excess_mtl"] = excess_mtl_cases()
for method, cases in vectors.items():
    with open(f"{OUT}/{method}.json", "w") as f:
        json.dump({"source": SOURCES[method], "cases": cases}, f, indent=1)
print("wrote", list(vectors))
