"""Does each MT10 task's reward pay for success? One 150-step episode per task of Meta-World's
own scripted policy (which solves the task) and of a policy that never moves, under a reward
version, with the papers' fixed goals.

When the scripted policy's return is not above the still policy's, the reward does not pay for
the usual route to success, and a learner that maximises it must find another one or fail: the
reward, not the learner, is what fails. Meta-World v3's port of the v1 rewards (the `mtrl`
protocol's) has such a task: window-open, whose handle position starts 0.24 from the goal while
its v1 reward assumes at most 0.2, so reaching the handle costs about -37 a step until the window
has moved 4 cm.

    .venv/bin/python scripts/reward_check.py [--reward-version v1|v2] [--seed N] [--json]
"""
import argparse
import json

import gymnasium as gym
import metaworld  # noqa: F401  (registers Meta-World/MT10)
import numpy as np
from metaworld import policies

TASKS = ["reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close",
         "button-press-topdown", "peg-insert-side", "window-open", "window-close"]
EPISODE_STEPS = 150


def scripted_policy(task):
    words = "".join(w.capitalize() for w in task.split("-")).replace("PegInsertSide", "PegInsertionSide")
    return getattr(policies, f"Sawyer{words}V3Policy")()


def episode(reward_version, seed, act):
    """Returns, successes (any step) and final observations of one episode of all ten tasks."""
    envs = gym.make_vec("Meta-World/MT10", vector_strategy="sync", seed=seed, use_one_hot=False,
                        num_goals=1, max_episode_steps=EPISODE_STEPS,
                        reward_function_version=reward_version)
    obs, _ = envs.reset()
    returns, success = np.zeros(len(TASKS)), np.zeros(len(TASKS), dtype=bool)
    for _ in range(EPISODE_STEPS):
        obs, reward, _, _, info = envs.step(act(obs))
        returns += reward
        # On the last step every env ends at once and the flags move into final_info.
        success |= np.asarray(info["final_info"]["success"] if "final_info" in info else info["success"]) > 0
    envs.close()
    return returns, success


def check(reward_version, seed):
    experts = [scripted_policy(task) for task in TASKS]
    scripted, scripted_success = episode(
        reward_version, seed, lambda obs: np.stack([p.get_action(o) for p, o in zip(experts, obs)]).astype(np.float32))
    still, still_success = episode(reward_version, seed, lambda obs: np.zeros((len(TASKS), 4), dtype=np.float32))
    return [{"task": task, "scripted_success": bool(scripted_success[k]), "scripted_return": float(scripted[k]),
             "still_success": bool(still_success[k]), "still_return": float(still[k]), "success_pays": bool(scripted[k] > still[k])}
            for k, task in enumerate(TASKS)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reward-version", choices=["v1", "v2"], default="v1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON list instead of the table")
    args = parser.parse_args()
    rows = check(args.reward_version, args.seed)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"reward {args.reward_version}, seed {args.seed}, one {EPISODE_STEPS}-step episode each")
    print(f"{'task':22s} {'scripted success':>16s} {'scripted return':>16s} {'still success':>13s} {'still return':>13s}  success pays")
    for r in rows:
        print(f"{r['task']:22s} {str(r['scripted_success']):>16s} {r['scripted_return']:16.1f} "
              f"{str(r['still_success']):>13s} {r['still_return']:13.1f}  {'yes' if r['success_pays'] else 'NO'}")


if __name__ == "__main__":
    main()
