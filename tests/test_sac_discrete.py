"""Tests of sac_discrete.py: the losses against hand computations, the buffer against CartPole's own physics,
the command line (smoke, save/load, tracking, bad input), and a short fixed-seed CartPole learning run."""

import glob
import math
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
import tyro
from conftest import parse_metric

SMOKE = ("--total-timesteps", 400, "--learning-starts", 200, "--batch-size", 32, "--hidden-dim", 32, "--eval-episodes", 2)

# A 2-state, 3-action example with every number written out, shared by the loss tests.
PROBS = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
Q1 = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
Q2 = [[1.5, 1.0, 2.5], [0.0, -0.5, 4.0]]
ALPHA = 0.4


def example():
    probs = torch.tensor(PROBS)
    return probs, probs.log(), torch.tensor([Q1, Q2])


def test_soft_value_by_hand(load_script):
    sd = load_script("sac_discrete")
    probs, log_pi, q = example()
    expected = [sum(PROBS[b][a] * (min(Q1[b][a], Q2[b][a]) - ALPHA * math.log(PROBS[b][a])) for a in range(3))
                for b in range(2)]
    # first state by hand: 0.2*(1.0-0.4 ln .2) + 0.3*(1.0-0.4 ln .3) + 0.5*(2.5-0.4 ln .5)
    assert expected[0] == pytest.approx(0.2 * (1 + 0.4 * 1.6094379) + 0.3 * (1 + 0.4 * 1.2039728) + 0.5 * (2.5 + 0.4 * 0.6931472))
    assert sd.soft_value(probs, log_pi, q, ALPHA).tolist() == pytest.approx(expected)
    mean = [sum(PROBS[b][a] * ((Q1[b][a] + Q2[b][a]) / 2 - ALPHA * math.log(PROBS[b][a])) for a in range(3)) for b in range(2)]
    assert sd.soft_value(probs, log_pi, q, ALPHA, "mean").tolist() == pytest.approx(mean)  # --target-q mean
    assert mean[0] > expected[0] or mean[1] > expected[1]  # the example's critics disagree somewhere
    # --no-backup-entropy backs up with alpha = 0: the expected Q alone, 0.2*1.0 + 0.3*1.0 + 0.5*2.5 for the first state
    no_bonus = [sum(PROBS[b][a] * min(Q1[b][a], Q2[b][a]) for a in range(3)) for b in range(2)]
    assert no_bonus[0] == pytest.approx(1.75)
    assert sd.soft_value(probs, log_pi, q, 0.0).tolist() == pytest.approx(no_bonus)


@pytest.mark.parametrize("backup_entropy", [True, False])
def test_backup_entropy_flag_reaches_the_target(load_script, tmp_path, monkeypatch, backup_entropy):
    """The critic target gets alpha's entropy bonus by default and none with --no-backup-entropy."""
    sd = load_script("sac_discrete")
    seen, original = [], sd.soft_value

    def recording_soft_value(next_probs, next_log_pi, next_q_target, alpha, reduce="min"):
        seen.append(float(alpha))
        return original(next_probs, next_log_pi, next_q_target, alpha, reduce)

    monkeypatch.setattr(sd, "soft_value", recording_soft_value)
    monkeypatch.chdir(tmp_path)
    sd.main(sd.Args(total_timesteps=260, learning_starts=250, batch_size=32, hidden_dim=16, eval_episodes=0,
                    cuda=False, backup_entropy=backup_entropy))
    assert len(seen) == 10
    assert all(a > 0.9 for a in seen) if backup_entropy else all(a == 0.0 for a in seen)  # alpha starts at 1


def test_critic_loss_bootstraps_truncation_not_termination(load_script):
    sd = load_script("sac_discrete")
    _, _, q = example()
    actions, rewards = [2, 0], [1.0, -2.0]
    next_v, gamma = [10.0, 20.0], 0.9
    for terminated in ([0.0, 0.0], [1.0, 0.0], [0.0, 1.0]):
        expected = 0.0
        for qk in (Q1, Q2):
            expected += sum((qk[b][actions[b]] - (rewards[b] + gamma * (1 - terminated[b]) * next_v[b])) ** 2
                            for b in range(2)) / 2
        got = sd.critic_loss(q, torch.tensor(actions), torch.tensor(rewards), torch.tensor(terminated),
                             torch.tensor(next_v), gamma)
        assert got.item() == pytest.approx(expected)


def test_actor_loss_by_hand_sums_over_actions(load_script):
    sd = load_script("sac_discrete")
    probs, log_pi, q = example()
    q.requires_grad_(True)
    logits = log_pi.clone().requires_grad_(True)  # so that the gradient check below goes through a softmax
    p, lp = torch.softmax(logits, -1), torch.log_softmax(logits, -1)
    expected = sum(sum(PROBS[b][a] * (ALPHA * math.log(PROBS[b][a]) - min(Q1[b][a], Q2[b][a])) for a in range(3))
                   for b in range(2)) / 2  # mean over states, sum over actions
    loss = sd.actor_loss(p, lp, q, ALPHA)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # gradient by central differences on the same hand formula
    loss.backward()
    eps = 1e-3
    for b in range(2):
        for a in range(3):
            grads = []
            for sign in (1, -1):
                lg = log_pi.clone().double()
                lg[b, a] += sign * eps
                pr = torch.softmax(lg, -1).tolist()
                grads.append(sum(sum(pr[i][j] * (ALPHA * math.log(pr[i][j]) - min(Q1[i][j], Q2[i][j])) for j in range(3))
                                 for i in range(2)) / 2)
            assert logits.grad[b, a].item() == pytest.approx((grads[0] - grads[1]) / (2 * eps), abs=1e-4)
    assert q.grad is None  # the critics are not trained by the actor loss


def test_alpha_loss_by_hand(load_script):
    sd = load_script("sac_discrete")
    probs, log_pi, _ = example()
    entropies = [-sum(p * math.log(p) for p in row) for row in PROBS]
    for target in (0.5 * math.log(3), 1.05):
        log_alpha = torch.tensor([math.log(ALPHA)], requires_grad=True)
        loss = sd.alpha_loss(log_alpha, probs, log_pi, target)
        expected = sum(ALPHA * (h - target) for h in entropies) / 2
        assert loss.item() == pytest.approx(expected, rel=1e-5)
        loss.backward()
        # d loss / d log alpha = alpha * mean(H - target): positive (alpha shrinks) when the policy is too random
        assert log_alpha.grad.item() == pytest.approx(expected, rel=1e-5)
    assert sum(entropies) / 2 > 0.5 * math.log(3) and sum(entropies) / 2 < 1.05


def test_twin_q_is_two_independent_critics(load_script):
    sd = load_script("sac_discrete")
    torch.manual_seed(0)
    qf = sd.TwinQ(4, 3, 8)
    obs = torch.randn(5, 4)
    out = qf(obs)
    assert out.shape == (2, 5, 3)
    for k in range(2):
        h = obs
        layers = [m for m in qf.net if isinstance(m, sd.EnsembleLinear)]
        for i, layer in enumerate(layers):
            h = h @ layer.weight[k] + layer.bias[k, 0]
            if i < len(layers) - 1:
                h = h.relu()
        assert torch.allclose(out[k], h, atol=1e-6)
    out[0].sum().backward()  # critic 0's loss must not move critic 1
    assert all(p.grad[1].abs().max() == 0 for p in qf.parameters())


def test_buffer_ring(load_script):
    sd = load_script("sac_discrete")
    rb = sd.ReplayBuffer(5, 2, torch.device("cpu"))
    for t in range(4):  # 8 rows into 5 slots: the oldest 3 are overwritten
        rows = np.array([[2 * t, 0], [2 * t + 1, 0]], dtype=np.float32)
        rb.add(rows, rows + 100, np.array([t, t]), np.array([1.0, 1.0]), np.array([False, True]))
    assert len(rb) == 5 and rb.pos == 3
    assert sorted(rb.obs[:, 0].tolist()) == [3, 4, 5, 6, 7]
    assert torch.equal(rb.next_obs, rb.obs + torch.tensor([100.0, 100.0]))
    obs, actions, rewards, next_obs, terminations = rb.sample(64)
    assert torch.equal(next_obs, obs + 100) and set(obs[:, 0].tolist()) <= {3, 4, 5, 6, 7}
    assert torch.equal(terminations, (obs[:, 0] % 2 == 1).float())


def test_stored_transitions_follow_cartpole_physics(load_script, tmp_path, monkeypatch):
    """Every stored (s, a, s', terminated) must be one real CartPole step: no reset observation as s', no transition
    across two episodes, and a time-limit truncation stored as not terminated."""
    sd = load_script("sac_discrete")
    gym.register("ShortCartPole-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv", max_episode_steps=20)
    stored = []

    class RecordingBuffer(sd.ReplayBuffer):
        def add(self, obs, next_obs, actions, rewards, terminations):
            stored.extend(zip(np.array(obs), np.array(next_obs), np.array(actions), np.array(terminations)))
            super().add(obs, next_obs, actions, rewards, terminations)

    monkeypatch.setattr(sd, "ReplayBuffer", RecordingBuffer)
    monkeypatch.chdir(tmp_path)
    sd.main(sd.Args(env_id="ShortCartPole-v0", num_envs=2, total_timesteps=300, learning_starts=100, batch_size=32,
                    hidden_dim=16, eval_episodes=0, cuda=False))
    sim = gym.make("CartPole-v1").unwrapped
    sim.reset(seed=0)
    for obs, next_obs, action, terminated in stored:
        sim.state, sim.steps_beyond_terminated = obs.astype(np.float64), None
        expected, _, expected_terminated, _, _ = sim.step(int(action))
        assert np.allclose(next_obs, expected, atol=1e-4), (obs, action, next_obs, expected)
        assert bool(terminated) == expected_terminated
    assert len(stored) == 300
    for env in range(2):  # rows alternate env 0, env 1; an episode ended where s' is not the next row's s
        seq = stored[env::2]
        ended = [not np.allclose(a[1], b[0]) for a, b in zip(seq, seq[1:])]
        terminated = [bool(row[3]) for row in seq[:-1]]
        assert all(e for e, t in zip(ended, terminated) if t)
        assert sum(terminated) > 0 and sum(e and not t for e, t in zip(ended, terminated)) > 0  # both endings occur (20-step limit)


def test_help_lists_every_flag(load_script, run_script):
    sd = load_script("sac_discrete")
    out = run_script("sac_discrete", "--help").stdout
    for name in sd.Args.__dataclass_fields__:
        assert "--" + name.replace("_", "-") in out, name


@pytest.mark.parametrize("args, message", [
    (("--env-id", "Pendulum-v1"), "needs a Discrete action space; Pendulum-v1 has Box(-2.0, 2.0, (1,), float32): use sac_continuous.py"),
    (("--env-id", "Blackjack-v1"), "needs a flat Box observation space"),
    (("--env-id", "NoSuchEnv-v0"), "unknown env id 'NoSuchEnv-v0'"),
    (("--total-timesteps", "0"), "--total-timesteps must be >= 1"),
    (("--batch-size", "512", "--learning-starts", "100"), "--learning-starts 100 must be >= --batch-size 512"),
    (("--target-entropy-scale", "1.0"), "--target-entropy-scale must be in [0, 1)"),
    (("--alpha-init", "0"), "--alpha-init must be > 0"),
    (("--alpha-init", "10"), "--alpha-init 10.0 is outside exp([--log-alpha-min, --log-alpha-max])"),
    (("--eval-checkpoint", "missing.pt"), "checkpoint 'missing.pt' not found"),
])
def test_bad_input(load_script, tmp_path, monkeypatch, args, message):
    """In-process through the same tyro parser as the command line (a subprocess each would cost seconds)."""
    sd = load_script("sac_discrete")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        sd.main(tyro.cli(sd.Args, args=[*args, "--track", "--save-model"]))
    assert isinstance(exc.value.code, str) and exc.value.code.startswith("sac_discrete.py") and message in exc.value.code
    assert os.listdir(tmp_path) == []  # nothing written: no runs/, no wandb/


def test_target_q_accepts_only_min_or_mean(load_script, capsys):
    sd = load_script("sac_discrete")
    assert tyro.cli(sd.Args, args=["--target-q", "mean"]).target_q == "mean"
    with pytest.raises(SystemExit) as exc:
        tyro.cli(sd.Args, args=["--target-q", "max"])
    assert exc.value.code == 2 and "max" in capsys.readouterr().err


def test_bad_input_exit(run_script):
    proc = run_script("sac_discrete", "--env-id", "Pendulum-v1", "--track", check=False)
    assert proc.returncode == 1 and "use sac_continuous.py" in proc.stderr and "Traceback" not in proc.stderr
    assert os.listdir(run_script.cwd) == []


def test_smoke_save_and_eval_checkpoint(run_script):
    out = run_script("sac_discrete", *SMOKE, "--num-envs", 2, "--save-model", "--no-cuda", "--target-q", "mean",
                     "--no-backup-entropy").stdout
    assert "global_step=" in out and "episodic_return=" in out and "episodic_length=" in out
    assert len(parse_metric(out, "eval/episodic_return")) == 1
    (path,) = glob.glob(str(run_script.cwd / "runs" / "*" / "sac_discrete.pt"))
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["args"]["env_id"] == "CartPole-v1" and "actor" in ckpt
    assert not glob.glob(str(run_script.cwd / "runs" / "*" / "*.tmp"))
    again = run_script("sac_discrete", "--eval-checkpoint", path, "--eval-episodes", 3).stdout
    assert len(parse_metric(again, "eval/episodic_return")) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_smoke_cuda(run_script):
    out = run_script("sac_discrete", *SMOKE, "--cuda").stdout
    assert len(parse_metric(out, "eval/episodic_return")) == 1


def test_track_offline(run_script):
    run_script("sac_discrete", *SMOKE, "--track")
    (run_dir,) = glob.glob(str(run_script.cwd / "wandb" / "offline-run-*"))
    (log,) = glob.glob(os.path.join(run_dir, "run-*.wandb"))
    data = open(log, "rb").read()  # offline mode writes no summary file; the metric names are in the run log
    for metric in [b"charts/episodic_return", b"losses/qf_loss", b"losses/alpha", b"charts/SPS", b"eval/episodic_return"]:
        assert metric in data, metric


@pytest.mark.learning
def test_learns_cartpole(run_script):
    out = run_script("sac_discrete", "--seed", 1, "--total-timesteps", 8000, "--learning-starts", 1000,
                     "--no-cuda", env={"OMP_NUM_THREADS": "1"}).stdout
    (final,) = parse_metric(out, "eval/episodic_return")
    assert final >= 100, out[-2000:]  # a random policy averages about 22, the untrained greedy one about 9
