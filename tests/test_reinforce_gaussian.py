"""reinforce_gaussian.py: returns-to-go and GAE by hand, the Gaussian log-prob and pseudo-loss gradient
analytically, bandit convergence, smoke runs, checkpoint, tracking and bad input."""

import glob
import math
import os
import re

import numpy as np
import pytest
import torch
from conftest import parse_metric

GAMMA, LAM = 0.9, 0.8
# three episodes back to back: terminated, truncated, terminated (one step)
EPISODES = [([1.0, 2.0, 3.0], "terminated"), ([0.5, -1.0], "truncated"), ([4.0], "terminated")]
FINAL_V = {1: 10.0}  # V of the real final obs of the truncated episode


def flat():
    rewards = np.array([r for rs, _ in EPISODES for r in rs])
    ends = np.array([t == len(rs) - 1 for rs, _ in EPISODES for t in range(len(rs))])
    return rewards, ends


def hand_returns(bootstrap):
    """Plain per-episode loop: G_t = sum_k gamma^k r_{t+k} (+ gamma^(L-t) V_final if truncated and bootstrapping)."""
    out = []
    for e, (rs, how) in enumerate(EPISODES):
        tail = FINAL_V[e] if (bootstrap and how == "truncated") else 0.0
        for t in range(len(rs)):
            g = sum(GAMMA**k * rs[t + k] for k in range(len(rs) - t))
            out.append(g + GAMMA ** (len(rs) - t) * tail)
    return out


def test_reward_to_go_never_crosses_episodes_and_cuts_at_truncation(load_script):
    m = load_script("reinforce_gaussian")
    rewards, ends = flat()
    np.testing.assert_allclose(m.reward_to_go(rewards, ends, GAMMA), hand_returns(bootstrap=False))
    # the first episode by hand: 1 + .9*2 + .81*3
    assert m.reward_to_go(rewards, ends, GAMMA)[0] == pytest.approx(1 + 0.9 * 2 + 0.81 * 3)
    bootstrap = np.zeros(len(rewards))
    bootstrap[4] = FINAL_V[1]  # last step of the truncated episode
    np.testing.assert_allclose(m.reward_to_go(rewards, ends, GAMMA, bootstrap), hand_returns(bootstrap=True))


def test_gae_with_termination_and_truncation(load_script):
    m = load_script("reinforce_gaussian")
    rewards, ends = flat()
    values = np.array([0.3, -0.2, 0.7, 1.5, 2.0, 0.1])
    # next_values as the script builds them: V(s_{t+1}) inside an episode, V(final obs) on truncation, 0 on termination
    next_values = np.array([-0.2, 0.7, 0.0, 2.0, FINAL_V[1], 0.0])
    adv = m.compute_gae(rewards, values, next_values, ends, GAMMA, LAM)
    deltas = rewards + GAMMA * next_values - values
    expected, start = [], 0
    for rs, _ in EPISODES:  # A_t = sum_k (gamma lambda)^k delta_{t+k}, inside the episode only
        for t in range(len(rs)):
            expected.append(sum((GAMMA * LAM) ** k * deltas[start + t + k] for k in range(len(rs) - t)))
        start += len(rs)
    np.testing.assert_allclose(adv, expected)
    # lambda = 1: advantage = bootstrapped reward-to-go minus V
    adv1 = m.compute_gae(rewards, values, next_values, ends, GAMMA, 1.0)
    np.testing.assert_allclose(adv1 + values, hand_returns(bootstrap=True))


def test_gaussian_log_prob_and_pseudo_loss_gradient_1d(load_script):
    m = load_script("reinforce_gaussian")
    torch.manual_seed(0)
    actor = m.Actor(obs_dim=1, act_dim=1, hidden_size=8, log_std_init=-0.5)
    obs = torch.randn(5, 1)
    actions = torch.randn(5, 1)
    psi = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0])
    dist = actor.dist(obs)
    log_prob = dist.log_prob(actions).sum(-1)
    with torch.no_grad():
        mu, sigma = actor(obs)
    mu, sigma, a = mu[:, 0].tolist(), sigma[0, 0].item(), actions[:, 0].tolist()
    assert sigma == pytest.approx(math.exp(-0.5))
    for i in range(5):
        by_hand = -((a[i] - mu[i]) ** 2) / (2 * sigma**2) - math.log(sigma) - 0.5 * math.log(2 * math.pi)
        assert log_prob[i].item() == pytest.approx(by_hand, abs=1e-5)
    loss = m.policy_loss(log_prob, psi, dist.entropy().sum(-1), ent_coef=0.0)
    loss.backward()
    # d loss / d mu_i = -psi_i (a_i - mu_i) / sigma^2 / N, and d mu_i / d (mu-head bias) = 1
    grad_bias = sum(-psi[i].item() * (a[i] - mu[i]) / sigma**2 for i in range(5)) / 5
    # d loss / d log sigma = -psi_i ((a_i - mu_i)^2 / sigma^2 - 1) / N
    grad_log_std = sum(-psi[i].item() * ((a[i] - mu[i]) ** 2 / sigma**2 - 1) for i in range(5)) / 5
    assert actor.mu.bias.grad.item() == pytest.approx(grad_bias, rel=1e-4)
    assert actor.log_std.grad.item() == pytest.approx(grad_log_std, rel=1e-4)


def test_bandit_is_registered_and_rewards_as_specified(load_script):
    import gymnasium as gym

    load_script("reinforce_gaussian")
    env = gym.make("GaussianBandit-v0")
    tau, zeta, beta = env.unwrapped.tau, env.unwrapped.zeta, env.unwrapped.beta
    env.reset(seed=0)
    for a in [tau, tau + zeta / 2, tau - 0.4, -1.0]:
        _, reward, terminated, truncated, _ = env.step(np.array([a], dtype=np.float32))
        assert reward == pytest.approx(zeta * beta / max(zeta, abs(tau - a)), rel=1e-5)
        assert terminated and not truncated


@pytest.mark.learning
def test_bandit_mu_converges_to_tau_and_sigma_shrinks(run_script):
    out = run_script("reinforce_gaussian", "--env-id", "GaussianBandit-v0", "--num-envs", 16, "--batch-size", 64,
                     "--baseline", "mean", "--total-timesteps", 64 * 200, "--eval-episodes", 1, "--seed", 1).stdout
    lines = re.findall(r"^bandit: update (\d+), .*mu=(\S+), sigma=(\S+), tau=(\S+)$", out, re.M)
    assert len(lines) == 200
    _, mu, sigma, tau = map(float, lines[-1])
    assert abs(mu - tau) < 0.05 * 2.0, lines[-1]  # 5% of the action range [-1, 1]
    assert sigma < math.exp(-0.5), lines[-1]


@pytest.mark.parametrize("env_id", ["InvertedPendulum-v5", "Pendulum-v1"])
def test_smoke_save_and_eval_checkpoint(run_script, env_id):
    out = run_script("reinforce_gaussian", "--env-id", env_id, "--total-timesteps", 600, "--batch-size", 200,
                     "--num-envs", 2, "--eval-episodes", 2, "--save-model", "--no-cuda").stdout
    assert re.search(r"^global_step=\d+, episodic_return=\S+, episodic_length=\d+$", out, re.M)
    assert len(parse_metric(out, "eval/episodic_return")) == 1
    (ckpt,) = glob.glob(str(run_script.cwd / "runs" / "*" / "reinforce_gaussian.pt"))
    saved = torch.load(ckpt, weights_only=False)
    assert {"args", "actor", "critic"} <= set(saved) and saved["args"]["env_id"] == env_id
    again = run_script("reinforce_gaussian", "--eval-checkpoint", ckpt, "--eval-episodes", 1).stdout
    assert len(parse_metric(again, "eval/episodic_return")) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("env_id", ["InvertedPendulum-v5", "Pendulum-v1"])
def test_smoke_cuda(run_script, env_id):
    out = run_script("reinforce_gaussian", "--env-id", env_id, "--total-timesteps", 400, "--batch-size", 200,
                     "--eval-episodes", 1).stdout
    assert len(parse_metric(out, "eval/episodic_return")) == 1


def test_track_offline_writes_a_wandb_run(run_script):
    run_script("reinforce_gaussian", "--env-id", "Pendulum-v1", "--total-timesteps", 400, "--batch-size", 200,
               "--num-envs", 1, "--eval-episodes", 1, "--track", "--baseline", "mean", "--state-dependent-std")
    (run_dir,) = glob.glob(str(run_script.cwd / "wandb" / "offline-run-*"))
    (log,) = glob.glob(os.path.join(run_dir, "run-*.wandb"))
    data = open(log, "rb").read()  # offline mode writes no wandb-summary.json; the metric names are in the log
    for key in [b"charts/episodic_return", b"losses/policy_loss", b"eval/episodic_return"]:
        assert key in data


def test_help_lists_every_flag(run_script, load_script):
    import dataclasses

    out = run_script("reinforce_gaussian", "--help").stdout
    for field in dataclasses.fields(load_script("reinforce_gaussian").Args):
        assert "--" + field.name.replace("_", "-") in out


@pytest.mark.parametrize("args, message", [
    (["--env-id", "CartPole-v1"], "needs a Box action space; CartPole-v1 has Discrete(2)"),
    (["--env-id", "NoSuchEnv-v9"], "unknown env id NoSuchEnv-v9"),
    (["--env-id", "Pendulum-v1", "--total-timesteps", "0"], "--total-timesteps is out of range"),
    (["--eval-checkpoint", "missing.pt"], "checkpoint missing.pt not found"),
])
def test_bad_input_gets_one_clear_sentence(run_script, args, message):
    proc = run_script("reinforce_gaussian", *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (run_script.cwd / "runs").exists() and not (run_script.cwd / "wandb").exists()
