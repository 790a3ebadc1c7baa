"""Shared test helpers: run a script as a user would, import it to test its functions, and build Minari datasets."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["sac_continuous", "sac_discrete", "cql", "a2c", "reinforce_gaussian"]


def pytest_configure(config):
    config.addinivalue_line("markers", "learning: short fixed-seed learning runs (slowest tests)")
    config.addinivalue_line("markers", "cuda: needs a CUDA device")


@pytest.fixture(scope="session")
def load_script():
    """Import one of the top-level scripts as a module (its main() does not run)."""
    cache = {}

    def _load(name):
        if name not in cache:
            spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses need the module registered
            spec.loader.exec_module(module)
            cache[name] = module
        return cache[name]

    return _load


def script_env(extra=None):
    """The environment of a script run by a test: offline W&B, unbuffered output, one torch thread."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    env.setdefault("OMP_NUM_THREADS", "1")
    return {**env, **(extra or {})}


@pytest.fixture
def run_script(tmp_path):
    """Run `python <script>.py <args>` in a fresh working directory; returns the CompletedProcess."""

    def _run(name, *args, timeout=600, env=None, check=True):
        proc = subprocess.run(
            [sys.executable, str(ROOT / f"{name}.py"), *map(str, args)],
            cwd=tmp_path,
            env=script_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{name}.py exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
            )
        return proc

    _run.cwd = tmp_path
    return _run


def parse_metric(stdout, key):
    """All float values printed as `key=value` in a run's output, in order."""
    values = []
    for line in stdout.splitlines():
        for part in line.replace(",", " ").split():
            if part.startswith(key + "="):
                values.append(float(part.split("=", 1)[1]))
    return values


class CounterEnv(gym.Env):
    """The test env for transitions and autoreset: obs = [episode number, t], reward t after the step (never 0).
    Odd-numbered episodes (the first is 1) terminate at t == 3; the TimeLimit of 5 steps truncates the even ones.
    A transition that crossed two episodes shows two episode numbers; a NEXT_STEP autoreset step would show reward 0."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)

    def __init__(self, discrete=False):
        self.action_space = gym.spaces.Discrete(2) if discrete else gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.episode = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return np.array([self.episode, 0], np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.episode % 2 == 1 and self.t == 3
        return np.array([self.episode, self.t], np.float32), float(self.t), terminated, False, {}


gym.register("CounterBox-v0", entry_point=CounterEnv, max_episode_steps=5)
gym.register("CounterDiscrete-v0", entry_point=CounterEnv, max_episode_steps=5, kwargs={"discrete": True})


@pytest.fixture
def minari_path(tmp_path, monkeypatch):
    """A private MINARI_DATASETS_PATH for this test (minari reads the variable at each call); in-process runs of
    cql.main write their runs/ directory into tmp_path too."""
    path = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    monkeypatch.chdir(tmp_path)
    return path


def write_dataset(dataset_id, env_id, episodes):
    """Write episodes (dicts of observations/actions/rewards/terminations/truncations) as a Minari dataset."""
    import minari
    from minari.data_collector import EpisodeBuffer

    buffers = [EpisodeBuffer(id=i, **ep) for i, ep in enumerate(episodes)]
    minari.create_dataset_from_buffers(
        dataset_id=dataset_id,
        buffer=buffers,
        env=gym.make(env_id),
        eval_env=env_id,
        algorithm_name="test",
        author="test",
        author_email="test",
        code_permalink="test",
        description="test",
    )


def gaussian_episodes(env_id, n_episodes, action_std, seed=0):
    """Episodes of a narrow behaviour policy: actions ~ N(0, action_std) per dimension, clipped to the bounds."""
    env, rng, episodes = gym.make(env_id), np.random.default_rng(seed), []
    space = env.action_space
    for ep in range(n_episodes):
        obs, _ = env.reset(seed=seed + ep)
        arrays = {"observations": [obs], "actions": [], "rewards": [], "terminations": [], "truncations": []}
        done = False
        while not done:
            action = np.clip(rng.normal(0.0, action_std, space.shape), space.low, space.high).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in zip(arrays, (obs, action, reward, terminated, truncated)):
                arrays[key].append(value)
            done = terminated or truncated
        episodes.append({k: np.array(v, dtype=np.float64 if k == "rewards" else None) for k, v in arrays.items()})
    env.close()
    return episodes


class TinyImageEnv(gym.Env):
    """An image env for fast tests: a one-hot frame (channels last for bool grids, first for uint8 frames) that shows
    which of the 3 actions pays 1 this step; episodes of 8 steps, the last one truncated by the TimeLimit."""

    def __init__(self, shape=(6, 6, 2), dtype=bool):
        self.observation_space = gym.spaces.Box(0, 1 if dtype is bool else 255, shape, dtype)
        self.action_space = gym.spaces.Discrete(3)

    def _obs(self):
        obs = np.zeros(self.observation_space.shape, self.observation_space.dtype)
        obs.flat[self.good * 7 % obs.size] = 1 if obs.dtype == bool else 255
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.good = int(self.np_random.integers(3))
        return self._obs(), {}

    def step(self, action):
        reward = float(action == self.good)
        self.good = int(self.np_random.integers(3))
        return self._obs(), reward, False, False, {}


gym.register("TinyGrid-v0", entry_point=TinyImageEnv, max_episode_steps=8)
gym.register(
    "TinyFrames-v0", entry_point=TinyImageEnv, max_episode_steps=8, kwargs={"shape": (2, 40, 40), "dtype": np.uint8}
)


def check_atari_wrappers(make_env):
    """A script's Atari env: 4 stacked 84x84 uint8 frames; rewards clipped to their sign for learning, while the
    episode statistics (what the episode lines report) add up the game's own score. SpaceInvaders pays 5 to 30 a hit."""
    env = make_env("SpaceInvadersNoFrameskip-v4", 0, False, "x")()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    clipped, raw = 0.0, None
    for _ in range(3000):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward in (-1.0, 0.0, 1.0)
        clipped += reward
        if terminated or truncated:
            raw = float(info["episode"]["r"])
            break
    env.close()
    assert raw is not None and raw > clipped > 0, (raw, clipped)
    env = make_env("SpaceInvadersNoFrameskip-v4", 0, False, "x", clip_rewards=False)()
    env.reset(seed=0)
    assert any(env.step(env.action_space.sample())[1] > 1 for _ in range(1000))  # evaluation sees the game score
    env.close()
