"""cql.py: the penalty's math, dataset loading and writing, bad input, a smoke run, and the conservative property."""

import glob
import math
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import parse_metric

PENDULUM_G, PENDULUM_DT = 10.0, 0.05


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
    minari.create_dataset_from_buffers(dataset_id=dataset_id, buffer=buffers, env=gym.make(env_id), eval_env=env_id,
                                       algorithm_name="test", author="test", author_email="test", code_permalink="test",
                                       description="test")


def gaussian_episodes(env_id, n_episodes, action_std, seed=0):
    """Episodes of a narrow behaviour policy: actions ~ N(0, action_std) per dimension, clipped to the bounds."""
    env, rng, episodes = gym.make(env_id), np.random.default_rng(seed), []
    space = env.action_space
    for ep in range(n_episodes):
        obs, _ = env.reset(seed=seed + ep)
        o, a, r, te, tr = [obs], [], [], [], []
        while not (te and (te[-1] or tr[-1])):
            action = np.clip(rng.normal(0.0, action_std, space.shape), space.low, space.high).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            o.append(obs), a.append(action), r.append(reward), te.append(terminated), tr.append(truncated)
        episodes.append(dict(observations=np.array(o), actions=np.array(a), rewards=np.array(r, dtype=np.float64),
                             terminations=np.array(te), truncations=np.array(tr)))
    env.close()
    return episodes


def pendulum_next_obs(obs, action):
    """Pendulum-v1's dynamics written out (gymnasium classic_control/pendulum.py), to check s' follows (s, a)."""
    th, thdot = math.atan2(obs[1], obs[0]), obs[2]
    u = float(np.clip(action[0], -2.0, 2.0))
    new_thdot = float(np.clip(thdot + (3 * PENDULUM_G / 2 * math.sin(th) + 3.0 * u) * PENDULUM_DT, -8, 8))
    new_th = th + new_thdot * PENDULUM_DT
    return np.array([math.cos(new_th), math.sin(new_th), new_thdot])


# ---------------------------------------------------------------- the penalty against a direct computation

class RecordingTwinQ(torch.nn.Module):
    """Wraps cql.TwinQ and keeps the inputs of its last call, so the test sees the sampled actions."""

    def __init__(self, qf):
        super().__init__()
        self.qf, self.calls = qf, []

    def forward(self, obs, action):
        self.calls.append((obs.detach().clone(), action.detach().clone()))
        return self.qf(obs, action)


class FixedPolicy:
    """A deterministic stand-in for the actor: known actions and log-densities for each state."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def action_and_log_prob(self, obs):
        return self.low + (self.high - self.low) * torch.sigmoid(obs[..., : len(self.low)]), 0.3 * obs.sum(-1) - 1.0

    def get_action(self, obs):
        action, log_prob = self.action_and_log_prob(obs)
        return action, log_prob, action


def test_cql_penalty_matches_direct_computation(load_script):
    cql = load_script("cql")
    torch.manual_seed(0)
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 3.0])  # asymmetric bounds on purpose
    batch, n, temp, obs_dim = 3, 4, 0.7, 3
    qf = RecordingTwinQ(cql.TwinQ(obs_dim, 2, 8))
    policy = FixedPolicy(low, high)
    obs, next_obs, data_actions = torch.randn(batch, obs_dim), torch.randn(batch, obs_dim), torch.rand(batch, 2)
    q_data = qf(obs, data_actions).detach()
    qf.calls.clear()
    gap = cql.cql_penalty(qf, policy, obs, next_obs, q_data, low, high, n, temp)
    sampled = torch.cat([a.reshape(batch, -1, 2) for _, a in qf.calls], dim=1)  # every action the critics saw
    assert sampled.shape == (batch, 3 * n, 2)
    uniform = sampled[:, :n]
    assert torch.all(uniform >= low) and torch.all(uniform <= high)

    expected = torch.zeros(2)
    with torch.no_grad():
        for b in range(batch):
            pi_s, logp_s = policy.action_and_log_prob(obs[b])
            pi_next, logp_next = policy.action_and_log_prob(next_obs[b])
            proposals = [(uniform[b, j], -math.log(4.0 * 3.0)) for j in range(n)]  # density 1 / prod(high - low)
            proposals += [(pi_s, float(logp_s))] * n + [(pi_next, float(logp_next))] * n
            for critic in range(2):
                terms = [float(qf.qf(obs[b : b + 1], a[None])[critic, 0]) - log_density for a, log_density in proposals]
                logsumexp = temp * math.log(sum(math.exp(t / temp) for t in terms))
                expected[critic] += (logsumexp - float(q_data[critic, b])) / batch
    torch.testing.assert_close(gap.detach(), expected, rtol=1e-4, atol=1e-4)


def test_uniform_proposal_covers_the_true_bounds(load_script):
    cql = load_script("cql")
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 3.0])
    qf = RecordingTwinQ(cql.TwinQ(1, 2, 4))
    cql.cql_penalty(qf, FixedPolicy(low, high), torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(2, 1), low, high, 4000, 1.0)
    uniform = qf.calls[-1][1].reshape(-1, 2)[:4000]
    torch.testing.assert_close(uniform.min(0).values, low, atol=0.01, rtol=0)
    torch.testing.assert_close(uniform.max(0).values, high, atol=0.01, rtol=0)
    torch.testing.assert_close(uniform.mean(0), (low + high) / 2, atol=0.06, rtol=0)


# ---------------------------------------------------------------- loading: episode boundaries, termination vs truncation

def test_transitions_respect_episodes_and_only_terminations_stop_bootstrapping(load_script, minari_path):
    cql = load_script("cql")
    episodes = []
    for ep, (length, terminated) in enumerate([(3, True), (4, False), (2, True)]):
        t = np.arange(length + 1, dtype=np.float32)
        episodes.append(dict(observations=np.stack([100.0 * ep + t, t, -t], 1).astype(np.float32),
                             actions=(t[:-1, None] / 10).astype(np.float32), rewards=(10.0 * ep + t[:-1]).astype(np.float64),
                             terminations=np.arange(length) == length - 1 if terminated else np.zeros(length, bool),
                             truncations=np.zeros(length, bool) if terminated else np.arange(length) == length - 1))
    write_dataset("test/boundaries-v0", "Pendulum-v1", episodes)
    data = cql.load_transitions(cql.load_dataset(cql.Args(dataset_id="test/boundaries-v0", download=False)))
    assert len(data["actions"]) == 3 + 4 + 2
    for i in range(len(data["actions"])):  # s' is s one step later in the same episode
        episode, t = divmod(data["obs"][i, 0], 100.0)
        assert data["next_obs"][i, 0] == 100.0 * episode + t + 1 and data["next_obs"][i, 1] == t + 1
        assert data["rewards"][i] == 10.0 * episode + t
    assert data["terminations"].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 1]  # the truncated episode keeps bootstrapping


def test_td_target_masks_terminations_only(load_script):
    cql = load_script("cql")

    class ConstantQ(torch.nn.Module):
        def forward(self, obs, action):
            return torch.stack([torch.full(obs.shape[:-1], 5.0), torch.full(obs.shape[:-1], 3.0)])

    policy = FixedPolicy(torch.tensor([-1.0]), torch.tensor([1.0]))
    target = cql.td_target(ConstantQ(), policy, 1.0, torch.tensor([1.0, 1.0]), torch.zeros(2, 2), torch.tensor([0.0, 1.0]),
                           0.9, False, 3, False)
    torch.testing.assert_close(target, torch.tensor([1.0 + 0.9 * 3.0, 1.0]))


# ---------------------------------------------------------------- sac_continuous.py --save-dataset round trip

@pytest.mark.parametrize("kind,extra,expected_lengths", [
    ("replay", ["--num-envs", "2", "--total-timesteps", "600"], [100, 100, 200, 200]),  # per env: 1 full + 1 cut
    ("policy", ["--total-timesteps", "150", "--dataset-episodes", "2"], [200, 200]),
])
def test_save_dataset_round_trip(run_script, minari_path, kind, extra, expected_lengths):
    import minari

    run_script("sac_continuous", "--env-id", "Pendulum-v1", "--learning-starts", "100", "--hidden-dim", "16",
               "--batch-size", "32", "--eval-episodes", "0", *extra, "--save-dataset", f"test/{kind}-v0", "--dataset-kind", kind,
               env={"MINARI_DATASETS_PATH": str(minari_path), "OMP_NUM_THREADS": "1"})
    dataset = minari.load_dataset(f"test/{kind}-v0")
    assert dataset.recover_environment().spec.id == "Pendulum-v1"
    lengths = []
    for ep in dataset.iterate_episodes():
        assert len(ep.observations) == len(ep.actions) + 1 == len(ep.rewards) + 1
        assert not ep.terminations.any() and ep.truncations[-1] and not ep.truncations[:-1].any()
        for t in range(len(ep.actions)):  # each step follows Pendulum's dynamics: no episode is joined to another
            np.testing.assert_allclose(ep.observations[t + 1], pendulum_next_obs(ep.observations[t], ep.actions[t]), atol=1e-4)
        lengths.append(len(ep.actions))
    assert sorted(lengths) == expected_lengths


# ---------------------------------------------------------------- bad input

def test_missing_dataset_gives_one_sentence_and_writes_nothing(run_script, minari_path):
    proc = run_script("cql", "--dataset-id", "nowhere/missing-v0", "--no-download", check=False,
                      env={"MINARI_DATASETS_PATH": str(minari_path)})
    assert proc.returncode != 0
    assert "dataset 'nowhere/missing-v0' is not in" in proc.stderr and "Traceback" not in proc.stderr
    assert not os.path.exists(run_script.cwd / "runs") and not os.path.exists(run_script.cwd / "wandb")


def test_discrete_action_dataset_is_refused(load_script, minari_path):
    cql = load_script("cql")
    n = 5
    write_dataset("test/discrete-v0", "CartPole-v1", [dict(
        observations=np.zeros((n + 1, 4), np.float32), actions=np.zeros(n, np.int64), rewards=np.ones(n),
        terminations=np.arange(n) == n - 1, truncations=np.zeros(n, bool))])
    with pytest.raises(SystemExit, match=r"needs Box actions.*Discrete\(2\)"):
        cql.main(cql.Args(dataset_id="test/discrete-v0", download=False))


# ---------------------------------------------------------------- smoke: train, track offline, save, evaluate the checkpoint

def test_smoke_track_save_and_eval_checkpoint(run_script, minari_path):
    write_dataset("test/narrow-v0", "Pendulum-v1", gaussian_episodes("Pendulum-v1", 2, 0.3))
    env = {"MINARI_DATASETS_PATH": str(minari_path), "OMP_NUM_THREADS": "1"}
    proc = run_script("cql", "--dataset-id", "test/narrow-v0", "--total-timesteps", "30", "--batch-size", "16",
                      "--hidden-dim", "16", "--cql-n-actions", "2", "--eval-freq", "15", "--eval-episodes", "1",
                      "--cql-lagrange", "--cql-max-target-backup", "--backup-entropy", "--bc-steps", "10",
                      "--save-model", "--track", env=env)
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1
    assert len(parse_metric(proc.stdout, "eval_return")) == 2  # periodic evaluation at step 15, final at 30
    (checkpoint,) = glob.glob(str(run_script.cwd / "runs" / "*" / "cql.pt"))
    (run_dir,) = glob.glob(str(run_script.cwd / "wandb" / "offline-run-*"))
    assert glob.glob(os.path.join(run_dir, "run-*.wandb"))
    proc = run_script("cql", "--eval-checkpoint", checkpoint, "--eval-episodes", "2", env=env)
    (value,) = parse_metric(proc.stdout, "eval/episodic_return")
    assert -2000 < value <= 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_smoke_cuda(run_script, minari_path):
    write_dataset("test/narrow-v0", "Pendulum-v1", gaussian_episodes("Pendulum-v1", 2, 0.3))
    env = {"MINARI_DATASETS_PATH": str(minari_path)}
    proc = run_script("cql", "--dataset-id", "test/narrow-v0", "--total-timesteps", "30", "--batch-size", "16",
                      "--hidden-dim", "16", "--eval-freq", "15", "--eval-episodes", "1", "--cuda", "--save-model", env=env)
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1
    (checkpoint,) = glob.glob(str(run_script.cwd / "runs" / "*" / "cql.pt"))
    proc = run_script("cql", "--eval-checkpoint", checkpoint, "--eval-episodes", "1", env=env)
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1


# ---------------------------------------------------------------- the conservative property

def discounted_returns_to_go(rewards, gamma):
    out, running = [], 0.0
    for r in reversed(rewards):
        running = r + gamma * running
        out.append(running)
    return out[::-1]


class NarrowActionEnv(gym.Env):
    """A task where the action matters everywhere: 6-D actions in [-1, 1], reward 1 - ||a||^2 per step, so the best
    action is 0 and any other action costs up to 6 per step. The observation is (t / T, c), c a per-episode context;
    the episode terminates after T steps, so the Monte-Carlo return of the data is exact (no truncated tail)."""

    T = 30
    observation_space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.c = 0, self.np_random.uniform(-1.0, 1.0)
        return self._obs(), {}

    def _obs(self):
        return np.array([self.t / self.T, self.c], dtype=np.float32)

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0 - float(np.sum(np.square(action))), self.t >= self.T, False, {}


# a string entry point: Minari stores the env spec as JSON, which cannot hold a class
gym.register("CqlNarrowAction-v0", entry_point=f"{__name__}:NarrowActionEnv")


@pytest.mark.learning
def test_cql_stays_below_monte_carlo_where_offline_sac_overestimates(load_script, minari_path):
    """The property that makes CQL CQL, on a narrow dataset (actions ~ N(0, 0.05) in a 6-D box, near-optimal data):
    - CQL's Q on the dataset's (s, a) stays at or below the Monte-Carlo return plus a margin;
    - plain offline SAC (--cql-alpha 0) overestimates it: its actor climbs the critics' extrapolation to actions the
      data never shows, and the backup carries that value into Q on the data. Measured (seeds 1, 2; 1500 steps):
      mean Q - MC of about -22 for CQL and 5e4 to 7e4 for offline SAC;
    - and the greedy policies show the consequence: CQL stays near the data (return about 30 of the best 30),
      offline SAC leaves it (about -140)."""
    cql = load_script("cql")
    gamma = 0.99
    episodes = gaussian_episodes("CqlNarrowAction-v0", 20, 0.05)
    write_dataset("test/narrow-action-v0", "CqlNarrowAction-v0", episodes)
    mc = torch.tensor([g for ep in episodes for g in discounted_returns_to_go(ep["rewards"], gamma)], dtype=torch.float32)
    assert 0.0 < float(mc.min()) and float(mc.max()) < NarrowActionEnv.T  # returns-to-go of the data: about 1 to 26
    common = dict(dataset_id="test/narrow-action-v0", download=False, gamma=gamma, total_timesteps=1500, batch_size=64,
                  tau=0.05, hidden_dim=64, cql_n_actions=4, eval_freq=0, eval_episodes=2)  # tau 0.05: fast targets
    gaps, evals = {}, {}
    for cql_alpha in (5.0, 0.0):
        torch.set_num_threads(1)
        out = cql.main(cql.Args(cql_alpha=cql_alpha, **common))
        with torch.no_grad():
            q = out["qf"](out["data"]["obs"], out["data"]["actions"]).min(dim=0).values
        gaps[cql_alpha], evals[cql_alpha] = float((q - mc).mean()), float(np.mean(out["eval_returns"]))
    margin = 2.0
    assert gaps[5.0] <= margin, gaps
    assert gaps[0.0] > 10 * margin, gaps  # overestimation, not noise
    assert evals[5.0] > 25.0 and evals[0.0] < evals[5.0] - 10.0, evals
