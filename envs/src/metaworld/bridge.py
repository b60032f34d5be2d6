"""The Python half of the MetaWorld bridge (run inside the embedded interpreter).

It builds the vector env and turns one vector step into a few flat numpy arrays (true next
observations merged from `final_obs`, success merged from `final_info`), so Rust makes one call
per step and reads each array through one readonly view.
"""

import functools
import gc
import multiprocessing
import sys
import threading
import time
import warnings

import gymnasium as gym
import metaworld  # noqa: F401  (registers the Meta-World/* envs)
import mujoco
import numpy as np

# MuJoCo resets an unstable simulation by itself and only counts a warning: bad qpos, qvel or
# qacc, adjacent in `mjtWarning`.
UNSTABLE = slice(int(mujoco.mjtWarning.mjWARN_BADQPOS), int(mujoco.mjtWarning.mjWARN_BADQACC) + 1)


# Meta-World's one-hot wrapper builds a float32 observation space from float64 bounds; harmless.
warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")

# Meta-World passes `num_goals` through a module global while it builds the tasks, so envs built
# on several threads at once (several workers) would see each other's value.
_BUILDING = threading.Lock()

# MuJoCo's default warning handler also appends to MUJOCO_LOG.TXT in the working directory.
mujoco.set_mju_user_warning(lambda message: print(f"MuJoCo warning: {message}", file=sys.stderr))


# `async` envs run in worker processes forked from a fork server (a clean process started for
# the purpose), never from this one: by then libtorch may run threads, whose locks a fork would
# copy in whatever state they are. Its workers start with Meta-World already imported.
multiprocessing.set_forkserver_preload(["gymnasium", "metaworld"])
AsyncVectorEnv = functools.partial(gym.vector.AsyncVectorEnv, context="forkserver")


def make_envs(tasks, seed, vector_strategy, options):
    """`tasks=None`: all of MT10 through `Meta-World/MT10`; otherwise one `Meta-World/MT1`
    env per named task, in that order, with a one-hot as wide as the subset."""
    if tasks is not None:
        vector_env = AsyncVectorEnv if vector_strategy == "async" else gym.vector.SyncVectorEnv
        return vector_env(task_env_fns(tasks, seed, options), autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    if vector_strategy == "sync":
        return gym.make_vec("Meta-World/MT10", seed=seed, vector_strategy="sync", **options)
    # Meta-World's MT10 entry point looks `gym.vector.AsyncVectorEnv` up when it is called.
    plain = gym.vector.AsyncVectorEnv
    gym.vector.AsyncVectorEnv = AsyncVectorEnv
    try:
        return gym.make_vec("Meta-World/MT10", seed=seed, vector_strategy="async", **options)
    finally:
        gym.vector.AsyncVectorEnv = plain


def task_env_fns(tasks, seed, options):
    """What the `Meta-World/MT1` entry point builds for each task, as picklable constructors
    (`async` workers receive them pickled): the goals are drawn here, with `num_goals` passed the
    way that entry point passes it, through a module global."""
    options = dict(options)
    metaworld._N_GOALS = options.pop("num_goals")
    env_fns = []
    for index, name in enumerate(tasks):
        env_name = f"{name}-v3"
        benchmark = metaworld.MT1(env_name, seed=seed)
        env_fns.append(
            functools.partial(
                metaworld._init_each_env,
                env_cls=benchmark.train_classes[env_name],
                tasks=list(benchmark.train_tasks),
                seed=seed,
                env_id=index,
                num_tasks=len(tasks),
                **options,
            )
        )
    return env_fns


class Bridge:
    def __init__(self, tasks, seed, vector_strategy, options):
        with _BUILDING:
            self.envs = make_envs(tasks, seed, vector_strategy, options)
        self.num_envs = self.envs.num_envs
        self.obs_dim = int(np.prod(self.envs.single_observation_space.shape))
        self.action_dim = int(np.prod(self.envs.single_action_space.shape))
        # Live views of each simulation's warning counters. Async envs live in other processes,
        # where their MuJoCo state cannot be read cheaply.
        sync_envs = getattr(self.envs, "envs", None)
        self._counters = None if sync_envs is None else [env.unwrapped.data.warning.number for env in sync_envs]
        self._warnings = self._warning_counts()
        self.instability_resets = 0
        self._renderers, self._size = None, None

    def _warning_counts(self):
        if self._counters is None:
            return None
        return np.array([counter[UNSTABLE].sum() for counter in self._counters])

    def reset(self):
        obs, _ = self.envs.reset()
        self._warnings = self._warning_counts()
        return obs

    def step(self, actions):
        """Returns (obs, next_obs, rewards, terminated, truncated, success)."""
        obs, rewards, terminated, truncated, info = self.envs.step(actions)
        success = np.zeros(self.num_envs, dtype=bool)
        if "success" in info:
            present = info["_success"]
            success[present] = info["success"][present] > 0
        next_obs = obs
        if "final_obs" in info:
            ended = info["_final_obs"]
            next_obs = obs.copy()
            next_obs[ended] = np.stack(info["final_obs"][ended])
            final_info = info["final_info"]
            if "success" in final_info:
                present = final_info["_success"]
                success[present] = final_info["success"][present] > 0
        unstable = self._unstable(obs, next_obs) & ~(terminated | truncated)
        if unstable.any():
            obs, next_obs, rewards, truncated = self._restart(unstable, obs, next_obs, rewards, truncated)
            success[unstable] = False
        return obs, next_obs, rewards, terminated, truncated, success

    def _unstable(self, obs, next_obs):
        counts = self._warning_counts()
        unstable = ~(np.isfinite(obs).all(axis=1) & np.isfinite(next_obs).all(axis=1))
        if counts is not None:
            unstable |= counts > self._warnings
            self._warnings = counts
        return unstable

    def _restart(self, unstable, obs, next_obs, rewards, truncated):
        """Ends the unstable envs' episodes as truncated (the transition is not terminal, only
        cut), with zero reward and a finite last observation, and starts them afresh."""
        self.instability_resets += int(unstable.sum())
        next_obs = np.nan_to_num(next_obs if next_obs is not obs else obs.copy(), posinf=0.0, neginf=0.0)
        rewards = np.where(unstable, 0.0, rewards)
        truncated = truncated | unstable
        restarted, _ = self.envs.reset(options={"reset_mask": unstable})
        obs = np.where(unstable[:, None], restarted, obs)
        self._warnings = self._warning_counts()
        return obs, next_obs, rewards, truncated

    def render(self, size, camera, indices):
        """One RGB frame of the current state of each env in `indices`, `(len(indices), size,
        size, 3)` uint8, the right way up: a camera whose image "up" points below the horizon
        (Meta-World's `corner`, `corner2`, `corner3` and `corner4` look down with their up axis
        flipped) has its frame turned by 180 degrees, a rotation, so the scene is never mirrored.
        Each env gets its renderer at its first frame. Rendering reads the simulation and
        changes nothing in it."""
        if self._counters is None:
            raise ValueError("rendering needs the sync vector strategy")
        if self._renderers is None or self._size != size:
            self._close_renderers()
            self._renderers, self._size = [None] * self.num_envs, size
        frames = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        for frame, index in zip(frames, indices):
            env = self.envs.envs[index]
            if self._renderers[index] is None:
                self._renderers[index] = new_renderer(env.unwrapped.model, size)
            renderer, data = self._renderers[index], env.unwrapped.data
            renderer.update_scene(data, camera=camera)
            renderer.render(out=frame)
            camera_id = mujoco.mj_name2id(env.unwrapped.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
            if data.cam_xmat[camera_id][7] < 0:  # the world z of the camera's y (up) axis
                frame[:] = frame[::-1, ::-1]
        return frames

    def camera_names(self):
        """The cameras of the scene (every Meta-World task has the same ones)."""
        model = self.envs.envs[0].unwrapped.model
        return [model.camera(i).name for i in range(model.ncam)]

    def _close_renderers(self):
        # `Renderer.close` frees MuJoCo's GL objects in whichever GL context is current, which
        # with several renderers may be another one's (whose textures would vanish): make each
        # renderer's own context current first.
        for renderer in filter(None, self._renderers or []):
            renderer._gl_context.make_current()
            renderer.close()
        self._renderers, self._size = None, None

    def close(self):
        self._close_renderers()
        self.envs.close()
        # The embedded interpreter is never finalised: free the async envs' semaphores now, or
        # multiprocessing's resource tracker reports them as leaked when the process ends.
        self.envs = None
        gc.collect()


def new_renderer(model, size):
    """A renderer of `size` x `size` frames; MuJoCo's offscreen buffer (640 x 480 in
    Meta-World's scenes) is enlarged where needed, which changes only how it draws."""
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, size)
    model.vis.global_.offheight = max(model.vis.global_.offheight, size)
    return mujoco.Renderer(model, size, size)


def check_renderer():
    """Renders one frame of an empty scene, so a missing GL library is found before any work.
    The backends' warnings (GLFW's "DISPLAY is missing") are left out: the exception says it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        renderer = mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 8, 8)
    renderer.update_scene(mujoco.MjData(renderer.model))
    renderer.render()
    renderer.close()


def plain_loop(bridge, steps):
    """The baseline the bench compares with: a plain gymnasium loop over the same envs, random
    actions, nothing else. Returns the seconds taken."""
    envs = bridge.envs
    envs.action_space.seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(envs.action_space.sample())
    return time.perf_counter() - start
