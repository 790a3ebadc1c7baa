"""cql.py: the penalty, target and losses against direct computations, dataset loading and writing, what only an
offline script has (a missing dataset, evaluation that leaves training alone), and the conservative property."""

import glob
import math
import os
import re

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import gaussian_episodes, parse_metric, write_dataset

PENDULUM_G, PENDULUM_DT = 10.0, 0.05
# the small networks and learning rates that suit Pendulum-sized tasks (the defaults are CORL's, for MuJoCo)
SMALL = ["--hidden-dim", 16, "--policy-lr", 3e-4, "--q-lr", 1e-3, "--alpha-lr", 3e-4]


def pendulum_next_obs(obs, action):
    """Pendulum-v1's dynamics written out (gymnasium classic_control/pendulum.py), to check s' follows (s, a)."""
    th, thdot = math.atan2(obs[1], obs[0]), obs[2]
    u = float(np.clip(action[0], -2.0, 2.0))
    new_thdot = float(np.clip(thdot + (3 * PENDULUM_G / 2 * math.sin(th) + 3.0 * u) * PENDULUM_DT, -8, 8))
    new_th = th + new_thdot * PENDULUM_DT
    return np.array([math.cos(new_th), math.sin(new_th), new_thdot])


def small_actor(cql, obs_dim, low, high, seed=0):
    torch.manual_seed(seed)
    space = gym.spaces.Box(
        np.array(torch.as_tensor(low).tolist(), np.float32), np.array(torch.as_tensor(high).tolist(), np.float32)
    )
    return cql.Actor(obs_dim, space, 16, np.zeros(obs_dim), np.ones(obs_dim))


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

    def get_action(self, obs, n_samples=()):
        action, log_prob = self.action_and_log_prob(obs)
        return action.expand(*n_samples, *action.shape), log_prob.expand(*n_samples, *log_prob.shape)


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


def test_cql_penalty_draws_n_policy_actions_per_state_from_one_actor_pass(load_script):
    """The actor runs once on [s; s'] (2B rows) and each state's N actions are distinct draws from its own
    distribution: the penalty equals the direct computation with each action's density under pi(.|s) or pi(.|s')."""
    cql = load_script("cql")
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 3.0])
    actor = small_actor(cql, 3, low, high)
    rows = []
    actor.net.register_forward_hook(lambda module, inputs, output: rows.append(tuple(inputs[0].shape[:-1])))
    batch, n = 5, 6
    qf = RecordingTwinQ(cql.TwinQ(3, 2, 8))
    obs, next_obs, q_data = torch.randn(batch, 3), torch.randn(batch, 3), torch.randn(2, batch)
    gap = cql.cql_penalty(qf, actor, obs, next_obs, q_data, low, high, n, 1.0)
    assert rows == [(2 * batch,)]  # one pass, not one per sampled action
    _, actions = qf.calls[-1]  # [B, 3N, A]: uniform, policy at s, policy at s'
    expected = torch.zeros(2)
    with torch.no_grad():
        for b in range(batch):
            pi_s, pi_next = actions[b, n : 2 * n], actions[b, 2 * n :]
            assert len(torch.unique(pi_s, dim=0)) == n and len(torch.unique(pi_next, dim=0)) == n
            log_density = torch.cat([
                torch.full((n,), -math.log(4.0 * 3.0)),
                actor.log_prob(obs[b].expand(n, 3), pi_s),
                actor.log_prob(next_obs[b].expand(n, 3), pi_next),
            ])  # fmt: skip
            q = qf.qf(obs[b].expand(3 * n, 3), actions[b])  # [2, 3N]
            expected += (torch.logsumexp(q - log_density, dim=-1) - q_data[:, b]) / batch
    torch.testing.assert_close(gap.detach(), expected, rtol=1e-3, atol=1e-3)


def test_uniform_proposal_covers_the_true_bounds(load_script):
    cql = load_script("cql")
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 3.0])
    qf = RecordingTwinQ(cql.TwinQ(1, 2, 4))
    policy = FixedPolicy(low, high)
    cql.cql_penalty(qf, policy, torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(2, 1), low, high, 4000, 1.0)
    uniform = qf.calls[-1][1].reshape(-1, 2)[:4000]
    torch.testing.assert_close(uniform.min(0).values, low, atol=0.01, rtol=0)
    torch.testing.assert_close(uniform.max(0).values, high, atol=0.01, rtol=0)
    torch.testing.assert_close(uniform.mean(0), (low + high) / 2, atol=0.06, rtol=0)


# ---------------------------------------------------------------- target and losses


def test_td_target_masks_terminations_only(load_script):
    cql = load_script("cql")

    class ConstantQ(torch.nn.Module):
        def forward(self, obs, action):
            return torch.stack([torch.full(obs.shape[:-1], 5.0), torch.full(obs.shape[:-1], 3.0)])

    policy = FixedPolicy(torch.tensor([-1.0]), torch.tensor([1.0]))
    rewards, terminations = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0])
    target = cql.td_target(ConstantQ(), policy, 1.0, rewards, torch.zeros(2, 2), terminations, 0.9, False, 3, False)
    torch.testing.assert_close(target, torch.tensor([1.0 + 0.9 * 3.0, 1.0]))


class SumQ(torch.nn.Module):
    """Q1 = sum(a) + 1, Q2 = sum(a): the min of the two is sum(a)."""

    def forward(self, obs, action):
        q = action.sum(-1) + 0.0 * obs.sum(-1)
        return torch.stack([q + 1.0, q])


def test_max_backup_takes_the_best_of_n_samples_of_each_state(load_script):
    cql = load_script("cql")
    actor = small_actor(cql, 3, [-1.0, -1.0], [1.0, 1.0])
    next_obs, rewards, terminations = torch.randn(4, 3), torch.ones(4), torch.tensor([0.0, 0.0, 1.0, 0.0])
    n, gamma, alpha = 7, 0.9, 0.5
    torch.manual_seed(1)
    target = cql.td_target(SumQ(), actor, alpha, rewards, next_obs, terminations, gamma, True, n, True)
    torch.manual_seed(1)
    with torch.no_grad():
        actions, log_prob = actor.get_action(next_obs, (n,))  # the same draws: [N, B, A], [N, B]
    for b in range(4):
        assert len(torch.unique(actions[:, b], dim=0)) == n  # N different actions for every state
        best = max(range(n), key=lambda j: float(actions[j, b].sum()))
        v = float(actions[best, b].sum()) - alpha * float(log_prob[best, b])  # the entropy of the chosen action
        assert float(target[b]) == pytest.approx(1.0 + gamma * (1.0 - float(terminations[b])) * v, abs=1e-5)
        torch.testing.assert_close(
            log_prob[:, b], actor.log_prob(next_obs[b].expand(n, 3), actions[:, b]), atol=1e-3, rtol=1e-3
        )


@pytest.mark.parametrize("lagrange", [False, True])
def test_critic_loss_is_td_plus_the_weighted_penalty(load_script, lagrange):
    """total = TD + cql_alpha * sum(gap), or with --cql-lagrange TD + sum(alpha' * cql_alpha * (gap - target gap));
    the penalty's sampled actions are constants, so the critic loss leaves the actor without gradients."""
    cql = load_script("cql")
    low, high = torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 2.0])
    actor = small_actor(cql, 3, low, high)
    qf, qf_target = cql.TwinQ(3, 2, 16), cql.TwinQ(3, 2, 16)
    batch = (torch.randn(6, 3), torch.rand(6, 2), torch.randn(6), torch.randn(6, 3), (torch.arange(6) == 2).float())
    args = cql.Args(gamma=0.9, cql_alpha=5.0, cql_n_actions=3, cql_lagrange=lagrange, cql_target_action_gap=2.0)
    alpha_prime = torch.tensor(0.7)
    torch.manual_seed(1)
    total, td, gap, q_data = cql.critic_loss(qf, qf_target, actor, 0.2, alpha_prime, batch, low, high, args)
    torch.manual_seed(1)  # the same draws, in the same order: target first, then the penalty
    obs, actions, rewards, next_obs, terminations = batch
    target = cql.td_target(qf_target, actor, 0.2, rewards, next_obs, terminations, 0.9, False, 3, False)
    q = qf(obs, actions)
    expected_gap = cql.cql_penalty(qf, actor, obs, next_obs, q, low, high, 3, 1.0)
    torch.testing.assert_close(q_data, q)
    torch.testing.assert_close(td, sum(((q[i] - target) ** 2).mean() for i in range(2)))
    torch.testing.assert_close(gap, expected_gap)
    weight, offset = (0.7 * 5.0, 2.0) if lagrange else (5.0, 0.0)
    torch.testing.assert_close(total, td + weight * (gap - offset).sum())
    total.backward()
    assert all(p.grad is None for p in actor.parameters())
    assert all(p.grad is not None for p in qf.parameters())


def test_critic_loss_without_penalty_is_the_td_loss(load_script):
    cql = load_script("cql")
    low, high = torch.tensor([-1.0]), torch.tensor([1.0])
    actor, qf = small_actor(cql, 2, low, high), cql.TwinQ(2, 1, 8)
    batch = (torch.randn(4, 2), torch.rand(4, 1), torch.randn(4), torch.randn(4, 2), torch.zeros(4))
    args = cql.Args(cql_alpha=0.0, cql_lagrange=True)
    total, td, gap, _ = cql.critic_loss(qf, cql.TwinQ(2, 1, 8), actor, 0.2, torch.tensor(1.0), batch, low, high, args)
    assert gap is None and total is td


@pytest.mark.parametrize("gap, sign", [([12.0, 11.0], -1), ([8.0, 9.0], 1)])
def test_lagrange_loss_grows_alpha_prime_while_the_gap_exceeds_its_target(load_script, gap, sign):
    """d loss / d log alpha' < 0 (gradient descent raises alpha') when the gap is above the target 10, > 0 below."""
    cql = load_script("cql")
    log_alpha_prime = torch.tensor(0.3, requires_grad=True)
    loss = cql.lagrange_loss(log_alpha_prime, torch.tensor(gap, requires_grad=True), 5.0, 10.0)
    loss.backward()
    assert math.copysign(1, log_alpha_prime.grad.item()) == sign
    expected = -math.exp(0.3) * 5.0 * sum(g - 10.0 for g in gap)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- loading: episodes, termination vs truncation


def test_transitions_respect_episodes_and_only_terminations_stop_bootstrapping(load_script, minari_path):
    cql = load_script("cql")
    episodes = []
    for ep, (length, terminated) in enumerate([(3, True), (4, False), (2, True)]):
        t = np.arange(length + 1, dtype=np.float32)
        last = np.arange(length) == length - 1
        episodes.append({
            "observations": np.stack([100.0 * ep + t, t, -t], 1).astype(np.float32),
            "actions": (t[:-1, None] / 10).astype(np.float32),
            "rewards": (10.0 * ep + t[:-1]).astype(np.float64),
            "terminations": last if terminated else np.zeros(length, bool),
            "truncations": np.zeros(length, bool) if terminated else last,
        })  # fmt: skip
    write_dataset("test/boundaries-v0", "Pendulum-v1", episodes)
    data = cql.load_transitions(cql.load_dataset(cql.Args(dataset_id="test/boundaries-v0", download=False)))
    assert len(data["actions"]) == 3 + 4 + 2
    for i in range(len(data["actions"])):  # s' is s one step later in the same episode
        episode, t = divmod(data["obs"][i, 0], 100.0)
        assert data["next_obs"][i, 0] == 100.0 * episode + t + 1 and data["next_obs"][i, 1] == t + 1
        assert data["rewards"][i] == 10.0 * episode + t
    assert data["terminations"].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 1]  # the truncated episode keeps bootstrapping


# ---------------------------------------------------------------- sac_continuous.py --save-dataset round trip


@pytest.mark.parametrize(
    "kind,extra,expected_lengths",
    [
        ("replay", ["--num-envs", "2", "--total-timesteps", "600"], [100, 100, 200, 200]),  # per env: 1 full + 1 cut
        ("policy", ["--total-timesteps", "150", "--dataset-episodes", "2"], [200, 200]),
    ],
)
def test_save_dataset_round_trip(run_script, minari_path, kind, extra, expected_lengths):
    import minari

    run_script("sac_continuous", "--env-id", "Pendulum-v1", "--learning-starts", "100", "--hidden-dim", "16",
               "--batch-size", "32", "--eval-episodes", "0", *extra, "--save-dataset", f"test/{kind}-v0",
               "--dataset-kind", kind, env={"MINARI_DATASETS_PATH": str(minari_path)})  # fmt: skip
    dataset = minari.load_dataset(f"test/{kind}-v0")
    assert dataset.recover_environment().spec.id == "Pendulum-v1"
    lengths = []
    for ep in dataset.iterate_episodes():
        assert len(ep.observations) == len(ep.actions) + 1 == len(ep.rewards) + 1
        assert not ep.terminations.any() and ep.truncations[-1] and not ep.truncations[:-1].any()
        for t in range(len(ep.actions)):  # each step follows Pendulum's dynamics: no episode is joined to another
            expected = pendulum_next_obs(ep.observations[t], ep.actions[t])
            np.testing.assert_allclose(ep.observations[t + 1], expected, atol=1e-4)
        lengths.append(len(ep.actions))
    assert sorted(lengths) == expected_lengths


# ---------------------------------------------------------------- a missing dataset, bad datasets


def test_missing_dataset_gives_one_sentence_and_writes_nothing(run_script, minari_path):
    proc = run_script("cql", "--dataset-id", "nowhere/missing-v0", "--no-download", check=False,
                      env={"MINARI_DATASETS_PATH": str(minari_path)})  # fmt: skip
    assert proc.returncode != 0
    assert "dataset 'nowhere/missing-v0' is not in" in proc.stderr and "Traceback" not in proc.stderr
    assert "minari download nowhere/missing-v0" in proc.stderr and "--save-dataset nowhere/missing-v0" in proc.stderr
    assert not os.path.exists(run_script.cwd / "runs") and not os.path.exists(run_script.cwd / "wandb")


def test_no_dataset_and_no_network_fails_fast_with_one_sentence(run_script, minari_path):
    """`python cql.py` with no flags: the default dataset is not local and the remote cannot be reached (HF_ENDPOINT
    points at a closed local port, so the test never downloads). Minari alone would retry for about 25 s."""
    env = {
        "MINARI_DATASETS_PATH": str(minari_path),
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "MINARI_REMOTE": "hf://farama-minari",
    }
    proc = run_script("cql", check=False, env=env, timeout=30)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "dataset 'mujoco/hopper/medium-v0' is not in" in line and "127.0.0.1 is unreachable" in line
    assert "`minari download mujoco/hopper/medium-v0`" in line and "sac_continuous.py --env-id" in line


@pytest.mark.parametrize("damaged", ["main_data.hdf5", "metadata.json"])
def test_damaged_dataset_file_gives_one_sentence(run_script, minari_path, damaged):
    """A download or a write cut short (issue 23): a truncated file in the dataset's folder ends the run with one
    sentence naming the dataset and what to do, not a traceback from h5py or minari."""
    write_dataset("test/damaged-v0", "Pendulum-v1", gaussian_episodes("Pendulum-v1", 1, 1.0))
    (path,) = glob.glob(str(minari_path / "test" / "damaged-v0" / "**" / damaged), recursive=True)
    os.truncate(path, os.path.getsize(path) // 2)
    proc = run_script("cql", "--dataset-id", "test/damaged-v0", "--no-download", check=False,
                      env={"MINARI_DATASETS_PATH": str(minari_path)})  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("cql.py: dataset 'test/damaged-v0' could not be read (") and "delete that folder" in line
    assert not os.path.exists(run_script.cwd / "runs")


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("hidden_dim", 0, "--hidden-dim must be >= 1"),
        ("q_lr", 0.0, "--policy-lr, --q-lr and --alpha-lr must be > 0"),
        ("alpha_lr", float("nan"), "--policy-lr, --q-lr and --alpha-lr must be > 0"),
        ("seed", -1, "--seed must be in [0, 2**32)"),
        ("cql_alpha", float("nan"), "--cql-alpha must be >= 0"),
        ("cql_temp", 0.0, "--cql-temp must be > 0"),
        ("cql_target_action_gap", float("inf"), "--cql-target-action-gap must be a finite number"),
        ("bc_steps", -1, "--bc-steps must be >= 0"),
        ("eval_freq", -1, "--eval-freq must be >= 0"),
    ],
)
def test_validate_rejects_out_of_range_flags(load_script, flag, value, message):
    cql = load_script("cql")
    with pytest.raises(SystemExit, match=re.escape(message)):
        cql.validate(cql.Args(**{flag: value}))


def test_discrete_action_dataset_is_refused(load_script, minari_path):
    cql = load_script("cql")
    n = 5
    episode = {
        "observations": np.zeros((n + 1, 4), np.float32),
        "actions": np.zeros(n, np.int64),
        "rewards": np.ones(n),
        "terminations": np.arange(n) == n - 1,
        "truncations": np.zeros(n, bool),
    }
    write_dataset("test/discrete-v0", "CartPole-v1", [episode])
    with pytest.raises(SystemExit, match=r"needs Box actions.*Discrete\(2\)"):
        cql.main(cql.Args(dataset_id="test/discrete-v0", download=False))


# ---------------------------------------------------------------- runs: CQL variants, evaluation apart from training


def test_smoke_every_variant_with_periodic_evaluation(run_script, minari_path):
    write_dataset("test/narrow-v0", "Pendulum-v1", gaussian_episodes("Pendulum-v1", 2, 0.3))
    proc = run_script("cql", "--dataset-id", "test/narrow-v0", "--total-timesteps", "30", "--batch-size", "16",
                      *SMALL, "--cql-n-actions", "2", "--eval-freq", "15", "--eval-episodes", "1", "--cql-lagrange",
                      "--cql-max-target-backup", "--backup-entropy", "--bc-steps", "10", "--cql-temp", "0.5",
                      env={"MINARI_DATASETS_PATH": str(minari_path)})  # fmt: skip
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1
    assert len(parse_metric(proc.stdout, "eval_return")) == 1  # periodic at step 15; the final one at 30
    assert "eval_env Pendulum-v1" in proc.stdout.splitlines()[0]
    assert not os.path.exists(run_script.cwd / "runs")  # nothing on disk without --save-model


def test_periodic_evaluation_does_not_change_training(load_script, minari_path, capsys):
    """Evaluation draws no random numbers from the training RNGs: the same seed with and without periodic
    evaluations gives the same final evaluation and bit-identical networks."""
    cql = load_script("cql")
    write_dataset("test/narrow-v0", "Pendulum-v1", gaussian_episodes("Pendulum-v1", 2, 0.3))
    finals, weights = {}, {}
    for eval_freq in (0, 10):
        common = dict(dataset_id="test/narrow-v0", download=False, total_timesteps=30, batch_size=16, hidden_dim=16)
        cql.main(cql.Args(eval_freq=eval_freq, eval_episodes=2, cql_n_actions=2, cuda=False, save_model=True,
                          exp_name=f"every{eval_freq}", **common))  # fmt: skip
        out = capsys.readouterr().out
        assert len(parse_metric(out, "eval_return")) == (2 if eval_freq else 0)  # steps 10 and 20
        finals[eval_freq] = [line for line in out.splitlines() if line.startswith("eval/episodic_return=")]
        (path,) = glob.glob(f"runs/*/every{eval_freq}.pt")
        weights[eval_freq] = torch.load(path, weights_only=False)["actor"]
    assert len(finals[0]) == 1 and finals[0] == finals[10]
    assert all(torch.equal(weights[0][k], weights[10][k]) for k in weights[0])


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
def test_cql_stays_below_monte_carlo_where_offline_sac_overestimates(load_script, minari_path, capsys):
    """The property that makes CQL CQL, on a narrow dataset (actions ~ N(0, 0.05) in a 6-D box, near-optimal data):
    - CQL's Q on the dataset's (s, a) stays at or below the Monte-Carlo return plus a margin;
    - plain offline SAC (--cql-alpha 0) overestimates it: its actor climbs the critics' extrapolation to actions the
      data never shows, and the backup carries that value into Q on the data. Measured (seeds 1, 2; 1500 steps):
      mean Q - MC of about -21 for CQL and 5e4 to 7e4 for offline SAC;
    - and the greedy policies show the consequence: CQL stays near the data (return 30 of the best 30), offline SAC
      leaves it (about -140)."""
    cql = load_script("cql")
    gamma = 0.99
    episodes = gaussian_episodes("CqlNarrowAction-v0", 20, 0.05)
    write_dataset("test/narrow-action-v0", "CqlNarrowAction-v0", episodes)
    returns_to_go = [g for ep in episodes for g in discounted_returns_to_go(ep["rewards"], gamma)]
    mc = torch.tensor(returns_to_go, dtype=torch.float32)
    assert 0.0 < float(mc.min()) and float(mc.max()) < NarrowActionEnv.T  # returns-to-go of the data: about 1 to 26
    common = dict(dataset_id="test/narrow-action-v0", download=False, gamma=gamma, total_timesteps=1500, batch_size=64,
                  tau=0.05, hidden_dim=64, policy_lr=3e-4, q_lr=1e-3, alpha_lr=3e-4, cql_n_actions=4, eval_freq=0,
                  eval_episodes=2, save_model=True)  # fmt: skip  # tau 0.05: fast targets
    data = cql.load_transitions(cql.load_dataset(cql.Args(dataset_id="test/narrow-action-v0", download=False)))
    gaps, evals = {}, {}
    for cql_alpha in (5.0, 0.0):
        torch.set_num_threads(1)
        cql.main(cql.Args(cql_alpha=cql_alpha, exp_name=f"alpha{cql_alpha:g}", **common))
        (evals[cql_alpha],) = parse_metric(capsys.readouterr().out, "eval/episodic_return")
        (path,) = glob.glob(f"runs/*/alpha{cql_alpha:g}.pt")
        ckpt = torch.load(path, weights_only=False)
        qf = cql.TwinQ(2, 6, 64)
        qf.load_state_dict(ckpt["qf"])
        obs = (torch.as_tensor(data["obs"]) - ckpt["actor"]["obs_mean"]) / ckpt["actor"]["obs_std"]
        with torch.no_grad():
            q = qf(obs, torch.as_tensor(data["actions"])).min(dim=0).values
        gaps[cql_alpha] = float((q - mc).mean())
    margin = 2.0
    assert gaps[5.0] <= margin, gaps
    assert gaps[0.0] > 10 * margin, gaps  # overestimation, not noise
    assert evals[5.0] > 25.0 and evals[0.0] < evals[5.0] - 10.0, evals
