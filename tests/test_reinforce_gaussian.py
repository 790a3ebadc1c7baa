"""reinforce_gaussian.py: returns-to-go, GAE and Psi by hand (termination vs truncation), the Gaussian log-prob and
pseudo-loss gradient analytically, batches of whole episodes, the bandit, bandit convergence, the flag checks, a
SIGTERM to the process group with --async-envs, and an exact requeue after kill -9 on MuJoCo."""

import glob
import math
import os
import re
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ROOT, parse_metric, script_env

SCRIPT = "reinforce_gaussian"
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
    m = load_script(SCRIPT)
    rewards, ends = flat()
    np.testing.assert_allclose(m.reward_to_go(rewards, ends, GAMMA), hand_returns(bootstrap=False))
    # the first episode by hand: 1 + .9*2 + .81*3
    assert m.reward_to_go(rewards, ends, GAMMA)[0] == pytest.approx(1 + 0.9 * 2 + 0.81 * 3)
    bootstrap = np.zeros(len(rewards))
    bootstrap[4] = FINAL_V[1]  # last step of the truncated episode
    np.testing.assert_allclose(m.reward_to_go(rewards, ends, GAMMA, bootstrap), hand_returns(bootstrap=True))


def test_gae_with_termination_and_truncation(load_script):
    m = load_script(SCRIPT)
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


# compute_psi on the same three episodes. obs = [row id]: rows 0-5 are the steps, 6-8 the episodes' final obs.
STEP_V = [0.3, -0.2, 0.7, 1.5, 2.0, 0.1]
FINAL_OBS_V = [-7.0, FINAL_V[1], 5.0]  # the terminated episodes' final values must not be used


class TableCritic(torch.nn.Module):
    def forward(self, obs):
        return torch.tensor(STEP_V + FINAL_OBS_V)[obs[:, 0].long()]


def psi_batch(load_script):
    m = load_script(SCRIPT)
    rewards, ends = flat()
    return m.Batch(
        obs=np.arange(6, dtype=np.float32)[:, None],
        actions=np.zeros((6, 1), np.float32),
        rewards=rewards,
        ends=ends,
        final_obs=np.array([[6.0], [7.0], [8.0]], np.float32),
        truncated=np.array([False, True, False]),
    )


def hand_gae(lam):
    """A_t = sum_k (gamma lambda)^k delta_{t+k} per episode, the deltas written out from the episode list."""
    out, row = [], 0
    for e, (rs, how) in enumerate(EPISODES):
        v = STEP_V[row : row + len(rs)]
        v_next = v[1:] + [FINAL_OBS_V[e] if how == "truncated" else 0.0]
        deltas = [rs[t] + GAMMA * v_next[t] - v[t] for t in range(len(rs))]
        out += [sum((GAMMA * lam) ** k * deltas[t + k] for k in range(len(rs) - t)) for t in range(len(rs))]
        row += len(rs)
    return np.array(out)


def standardise(x, centre=True):
    x = np.asarray(x, dtype=np.float64)
    return ((x - x.mean()) if centre else x) / (x.std() + 1e-8)


def test_compute_psi_value_baseline_bootstraps_truncation_only(load_script):
    m = load_script(SCRIPT)
    batch = psi_batch(load_script)
    args = m.Args(baseline="value", gamma=GAMMA, gae_lambda=LAM, norm_adv=False)
    psi, targets = m.compute_psi(batch, TableCritic(), args, "cpu")
    np.testing.assert_allclose(psi, hand_gae(LAM), rtol=1e-6)
    np.testing.assert_allclose(targets, hand_gae(LAM) + STEP_V, rtol=1e-6)  # lambda-returns
    args = m.Args(baseline="value", gamma=GAMMA, gae_lambda=1.0, norm_adv=False)
    _, targets = m.compute_psi(batch, TableCritic(), args, "cpu")
    np.testing.assert_allclose(targets, hand_returns(bootstrap=True), rtol=1e-6)  # lambda 1: bootstrapped returns
    args = m.Args(baseline="value", gamma=GAMMA, gae_lambda=LAM, norm_adv=True)
    psi, targets = m.compute_psi(batch, TableCritic(), args, "cpu")
    np.testing.assert_allclose(psi, standardise(hand_gae(LAM)), rtol=1e-6)
    np.testing.assert_allclose(targets, hand_gae(LAM) + STEP_V, rtol=1e-6)  # targets from the unnormalised Psi


@pytest.mark.parametrize("norm_adv", [False, True])
def test_compute_psi_without_critic_cuts_at_truncation(load_script, norm_adv):
    m = load_script(SCRIPT)
    batch = psi_batch(load_script)
    returns = np.array(hand_returns(bootstrap=False))
    psi, targets = m.compute_psi(batch, None, m.Args(baseline="none", gamma=GAMMA, norm_adv=norm_adv), "cpu")
    assert targets is None
    np.testing.assert_allclose(psi, standardise(returns, centre=False) if norm_adv else returns, rtol=1e-6)
    psi, _ = m.compute_psi(batch, None, m.Args(baseline="mean", gamma=GAMMA, norm_adv=norm_adv), "cpu")
    np.testing.assert_allclose(psi, standardise(returns) if norm_adv else returns - returns.mean(), rtol=1e-6)


def test_gaussian_log_prob_and_pseudo_loss_gradient_1d(load_script):
    m = load_script(SCRIPT)
    torch.manual_seed(0)
    actor = m.Actor(obs_dim=1, act_space=gym.spaces.Box(-1.0, 1.0, (1,)), hidden_dim=8, log_std_init=-0.5)
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


def test_act_is_mu_clipped_to_the_bounds_and_draws_no_random_numbers(load_script):
    m = load_script(SCRIPT)
    space = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 0.5], np.float32))
    actor = m.Actor(obs_dim=3, act_space=space, hidden_dim=8)
    with torch.no_grad():
        actor.mu.bias.copy_(torch.tensor([-3.0, 0.2]))
    state = torch.get_rng_state()
    action = actor.act(torch.zeros(1, 3))
    assert torch.equal(torch.get_rng_state(), state)
    assert action[0, 0].item() == -1.0 and action[0, 1].item() == pytest.approx(0.2, abs=0.05)


# ---------------------------------------------------------------- batches of whole episodes


def test_collect_batch_keeps_whole_real_episodes(load_script):
    m = load_script(SCRIPT)
    num_envs, batch_size = 3, 20
    envs = gym.vector.SyncVectorEnv(
        [m.make_env("CounterBox-v0", i, False, "test") for i in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    actor = m.Actor(2, envs.single_action_space, 8)
    args = m.Args(num_envs=num_envs, batch_size=batch_size)
    obs, _ = envs.reset(seed=0)

    class Run:  # what collect_batch needs of the script's Run: the global step, and where episodes go
        step, finished = 100, []

        def episodes(self, step, infos):
            stats = infos.get("final_info", {})
            for i in np.flatnonzero(stats.get("_episode", [])):
                self.finished.append((step, float(stats["episode"]["r"][i]), int(stats["episode"]["l"][i])))

    batch, step = m.collect_batch(envs, actor, obs, args, "cpu", Run())
    finished = Run.finished
    envs.close()
    assert len(batch.rewards) >= batch_size and len(batch.obs) == len(batch.actions) == len(batch.ends)
    assert (step - 100) % num_envs == 0 and step - 100 >= len(batch.rewards)
    assert len(finished) >= len(batch.truncated) and all(100 < s <= step for s, _, _ in finished)
    starts = np.flatnonzero(np.concatenate([[True], batch.ends[:-1]]))
    assert len(starts) == len(batch.final_obs) == len(batch.truncated) == batch.ends.sum()
    for e, (s, end) in enumerate(zip(starts, np.flatnonzero(batch.ends))):
        ep_obs = batch.obs[s : end + 1]
        episode, length = ep_obs[0, 0], end + 1 - s
        assert np.all(ep_obs[:, 0] == episode), "an episode in the batch mixes two episodes"
        assert np.array_equal(ep_obs[:, 1], np.arange(length)), "an episode in the batch is not whole"
        assert np.array_equal(batch.rewards[s : end + 1], np.arange(1, length + 1))
        assert np.array_equal(batch.final_obs[e], [episode, length]), "final_obs is not the real last observation"
        assert length == (3 if episode % 2 == 1 else 5)
        assert batch.truncated[e] == (episode % 2 == 0), "terminated and truncated episodes confused"
    assert batch.truncated.any() and not batch.truncated.all()


def test_bandit_is_registered_and_rewards_as_specified(load_script):
    load_script(SCRIPT)
    env = gym.make("GaussianBandit-v0")
    tau, zeta, beta = env.unwrapped.tau, env.unwrapped.zeta, env.unwrapped.beta
    env.reset(seed=0)
    for a in [tau, tau + zeta / 2, tau - 0.4, -1.0]:
        _, reward, terminated, truncated, _ = env.step(np.array([a], dtype=np.float32))
        assert reward == pytest.approx(zeta * beta / max(zeta, abs(tau - a)), rel=1e-5)
        assert terminated and not truncated


@pytest.mark.parametrize(
    "flags",
    [["--baseline", "none", "--no-norm-adv"], ["--baseline", "mean", "--state-dependent-std", "--ent-coef", "0.01"]],
)
def test_smoke_other_baselines(run_script, flags):
    out = run_script(
        SCRIPT,
        "--env-id",
        "Pendulum-v1",
        "--total-timesteps",
        600,
        "--batch-size",
        200,
        "--num-envs",
        2,
        "--eval-episodes",
        1,
        *flags,
    ).stdout
    assert re.search(r"^global_step=\d+, episodic_return=\S+, episodic_length=200$", out, re.M)
    assert len(parse_metric(out, "eval/episodic_return")) == 1


@pytest.mark.learning
def test_bandit_mu_converges_to_tau_and_sigma_shrinks(run_script):
    out = run_script(
        SCRIPT,
        "--env-id",
        "GaussianBandit-v0",
        "--num-envs",
        16,
        "--batch-size",
        64,
        "--baseline",
        "mean",
        "--total-timesteps",
        64 * 200,
        "--eval-episodes",
        1,
        "--seed",
        1,
    ).stdout
    lines = re.findall(r"^bandit: update (\d+), .*mu=(\S+), sigma=(\S+), tau=(\S+)$", out, re.M)
    assert len(lines) == 200
    _, mu, sigma, tau = map(float, lines[-1])
    assert abs(mu - tau) < 0.05 * 2.0, lines[-1]  # 5% of the action range [-1, 1]
    assert sigma < math.exp(-0.5), lines[-1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--hidden-dim", 0], "--hidden-dim must be >= 1 (got 0)"),
        (["--learning-rate", 0], "--learning-rate and --vf-learning-rate must be > 0"),
        (["--vf-learning-rate", -1e-3], "--learning-rate and --vf-learning-rate must be > 0"),
        (["--seed", -1], "--seed must be in [0, 2**32) (got -1)"),
        (["--seed", 2**32], "--seed must be in [0, 2**32) (got 4294967296)"),
    ],
)
def test_bad_flags_get_one_sentence_and_write_nothing(run_script, flags, message):
    proc = run_script(SCRIPT, "--env-id", "Pendulum-v1", *flags, check=False, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"reinforce_gaussian.py: {message}"
    assert not os.listdir(run_script.cwd), "a rejected run wrote files"


def test_sigterm_to_the_process_group_stops_async_envs_cleanly(tmp_path):
    """A cluster's pre-emption (or Ctrl-C) reaches the env subprocesses too: they must leave the stop to the main
    process, which saves a checkpoint and exits 143, instead of dying under it."""
    flags = ["--env-id", "Pendulum-v1", "--async-envs", "--num-envs", 2, "--batch-size", 400, "--save-model"]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / f"{SCRIPT}.py"), *map(str, flags), "--total-timesteps", "200000"],
        cwd=tmp_path,
        env=script_env(),
        start_new_session=True,  # its own process group: the signal below reaches the script and its env workers
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("global_step="):
            os.killpg(proc.pid, signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "stopped by SIGTERM" in out and "Traceback" not in err, err[-2000:]
    (path,) = glob.glob(str(tmp_path / "runs" / "*" / f"{SCRIPT}.pt"))
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["script"] == f"{SCRIPT}.py" and 0 < ckpt["counters"]["global_step"] < 200_000


def test_requeue_after_kill_9_on_mujoco_equals_an_uninterrupted_run(tmp_path):
    """MuJoCo envs cannot be pickled, but every batch starts with an unseeded reset: with each env's own generator
    restored, a requeue (kill -9 after the first checkpoint, then the identical command) continues bit for bit."""
    flags = ["--env-id", "InvertedPendulum-v5", "--total-timesteps", 6000, "--batch-size", 1000]
    flags += ["--checkpoint-every", 2000, "--resume", "auto", "--run-name", "req", "--hidden-dim", 16]
    args = [sys.executable, str(ROOT / f"{SCRIPT}.py"), *map(str, flags), "--eval-episodes", "2"]
    straight, requeued = tmp_path / "straight", tmp_path / "requeued"
    straight.mkdir(), requeued.mkdir()
    full = subprocess.run(args, cwd=straight, env=script_env(), capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]

    path = requeued / "runs" / "req" / f"{SCRIPT}.pt"
    proc = subprocess.Popen(args, cwd=requeued, env=script_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not path.exists() and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    killed_at = torch.load(path, weights_only=False)["counters"]["global_step"]
    assert 2000 <= killed_at < 6000, f"the kill came too late to test anything (step {killed_at})"
    again = subprocess.run(args, cwd=requeued, env=script_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    first_episode = re.search(r"^global_step=(\d+),", again.stdout, re.M)
    assert first_episode and int(first_episode.group(1)) > killed_at, "the requeued run did not continue"

    eval_line = lambda out: [line for line in out.splitlines() if line.startswith("eval/")]  # noqa: E731
    assert eval_line(again.stdout) == eval_line(full.stdout) and len(eval_line(full.stdout)) == 1
    a = torch.load(straight / "runs" / "req" / f"{SCRIPT}.pt", weights_only=False)
    b = torch.load(path, weights_only=False)
    assert a["counters"]["global_step"] == b["counters"]["global_step"] >= 6000
    for part in ("actor", "actor_optimizer", "critic", "critic_optimizer"):
        torch.testing.assert_close(a[part], b[part], rtol=0, atol=0, msg=part)
