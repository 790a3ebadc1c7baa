"""Tests for a2c.py: GAE math, the rollout under SAME_STEP autoreset, observation statistics in the agent and in
checkpoints, exact resume with normalisation, image observations (encoders, storage, MinAtar, exact resume),
a2c-specific input checks, learning."""

import glob
import os
import pickle
import random
import re
import signal
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ROOT, CounterEnv, check_atari_wrappers, parse_metric, script_env

GAMMA = 0.9


# --------------------------------------------------------------------------------------------------- GAE math
def plain_gae(rewards, values, next_values, terminated, dones, gamma, lam):
    """Independent reference: A_t = sum_k (gamma*lam)^k delta_{t+k}, summed forward until the episode ends."""
    T, N = len(rewards), len(rewards[0])
    adv = [[0.0] * N for _ in range(T)]
    for i in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                bootstrap = 0.0 if terminated[k][i] else next_values[k][i]
                total += weight * (rewards[k][i] + gamma * bootstrap - values[k][i])
                if dones[k][i]:
                    break
                weight *= gamma * lam
            adv[t][i] = total
    return adv


def plain_nstep_returns(rewards, next_values, terminated, dones, gamma):
    """lambda = 1 is the classic n-step return: discounted rewards up to the episode end or the rollout end."""
    T, N = len(rewards), len(rewards[0])
    out = [[0.0] * N for _ in range(T)]
    for i in range(N):
        for t in range(T):
            g, k = 0.0, t
            while True:
                g += gamma ** (k - t) * rewards[k][i]
                if dones[k][i] or k == T - 1:
                    if not terminated[k][i]:
                        g += gamma ** (k - t + 1) * next_values[k][i]
                    break
                k += 1
            out[t][i] = g
    return out


# A hand-written rollout, T=6 steps x N=3 envs. env 0 terminates at t=2; env 1 is truncated at t=1 and
# terminates at t=4; env 2 never ends. next_values holds V(real next obs): V(obs[t+1]) = values[t+1] while the
# episode goes on, V(final obs) at a truncation (7.0), an arbitrary 99.0 behind a termination.
REWARDS = [[1, 0.5, 2], [1, 0.5, 2], [1, 0.5, 2], [1, 0.5, 2], [1, 0.5, 2], [1, 0.5, 2]]
VALUES = [[3.0, 1.0, 5.0], [2.5, 1.5, 5.1], [1.2, 0.7, 4.9], [3.1, 1.1, 5.2], [2.8, 0.4, 5.0], [2.6, 0.9, 4.8]]
NEXT_VALUES = [[2.5, 1.5, 5.1], [1.2, 7.0, 4.9], [99.0, 1.1, 5.2], [2.8, 0.4, 5.0], [2.6, 99.0, 4.8], [2.4, 1.3, 4.7]]
TERMINATED = [[0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]]
DONES = [[0, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize("lam", [1.0, 0.95, 0.0])
def test_compute_gae_matches_plain_loop(load_script, lam):
    a2c = load_script("a2c")
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    adv, ret = a2c.compute_gae(t(REWARDS), t(VALUES), t(NEXT_VALUES), t(TERMINATED), t(DONES), GAMMA, lam)
    expected = plain_gae(REWARDS, VALUES, NEXT_VALUES, TERMINATED, DONES, GAMMA, lam)
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(ret.numpy(), np.array(expected) + np.array(VALUES), rtol=1e-10)
    if lam == 1.0:
        np.testing.assert_allclose(ret.numpy(), plain_nstep_returns(REWARDS, NEXT_VALUES, TERMINATED, DONES, GAMMA))
    # the 99.0 placeholders sit behind a termination: they must not leak into any advantage
    assert np.all(np.abs(adv.numpy()) < 50)


# ------------------------------------------------------------------ the rollout, with a real vector env
class ValueOfObs(torch.nn.Module):
    """A fake agent whose value is a known function of the observation: V(s) = 10 * t + 1 (conftest's CounterEnv)."""

    gsde = False  # no exploration matrices to draw

    def get_value(self, x):
        return 10.0 * x[:, 1] + 1.0

    def get_action(self, x):
        return torch.zeros(len(x), dtype=torch.long)


def finished_episodes(ended):
    """(t, env, return, length) of every episode in collect_rollout's (t, infos) list."""
    return [
        (t, i, float(infos["final_info"]["episode"]["r"][i]), int(infos["final_info"]["episode"]["l"][i]))
        for t, infos in ended
        for i in np.flatnonzero(infos["final_info"]["_episode"])
    ]


def same_step_envs(a2c, env_id, num_envs):  # the script's envs, vectorised as main does
    env_fns = [a2c.make_env(env_id, i, False, "x") for i in range(num_envs)]
    return gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def no_normalising(a2c, envs):  # the defaults: --no-norm-obs --no-norm-reward
    return a2c.Normaliser(envs.num_envs, envs.single_observation_space.shape, GAMMA, False, False)


def test_rollout_has_only_real_transitions_and_bootstraps_final_obs(load_script):
    a2c = load_script("a2c")
    envs = same_step_envs(a2c, "CounterDiscrete-v0", 2)
    obs, _ = envs.reset(seed=0)
    T = 12
    b, _, ended = a2c.collect_rollout(envs, ValueOfObs(), obs, T, "cpu", no_normalising(a2c, envs))
    episodes = finished_episodes(ended)
    envs.close()
    # Expected trajectory of each env, written out by hand: episodes of length 3 (terminated), 5 (truncated), ...
    steps_in_ep = [0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 0]  # obs before each step
    term = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    trunc = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    for i in range(2):
        assert b["obs"][:, i, 1].tolist() == steps_in_ep
        # reward = count after the step: no reward-0, action-ignored autoreset step was stored
        assert b["rewards"][:, i].tolist() == [s + 1 for s in steps_in_ep]
        assert b["terminated"][:, i].tolist() == term
        assert b["dones"][:, i].tolist() == [a | b_ for a, b_ in zip(term, trunc)]
        # V of the real next obs: the truncated step (t=7, final obs 5) bootstraps V=51, not V(reset obs)=1
        expected_nv = [10.0 * (s + 1) + 1.0 for s in steps_in_ep]
        assert b["next_values"][:, i].tolist() == expected_nv
        assert b["values"][:, i].tolist() == [10.0 * s + 1.0 for s in steps_in_ep]
    assert sorted((t, r, length) for t, _, r, length in episodes) == [
        (2, 6.0, 3),
        (2, 6.0, 3),
        (7, 15.0, 5),
        (7, 15.0, 5),
        (10, 6.0, 3),
        (10, 6.0, 3),
    ]
    # and the advantages on this real rollout agree with the plain loop
    adv, _ = a2c.compute_gae(b["rewards"], b["values"], b["next_values"], b["terminated"], b["dones"], GAMMA, 0.95)
    tolist = lambda x: x.tolist()  # noqa: E731
    expected = plain_gae(
        *map(tolist, (b["rewards"], b["values"], b["next_values"], b["terminated"], b["dones"])), GAMMA, 0.95
    )
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-5)


def test_rollout_normalises_final_observations_with_the_statistics_of_their_step(load_script):
    """--norm-obs: the bootstrap value of an ended episode is V of its final observation, normalised with the
    statistics of that step: every observation the envs returned so far, counted once, neither the first reset's
    observation nor any final one among them."""
    a2c = load_script("a2c")
    envs = same_step_envs(a2c, "CounterDiscrete-v0", 2)
    obs, _ = envs.reset(seed=0)
    b, _, _ = a2c.collect_rollout(envs, ValueOfObs(), obs, 12, "cpu", a2c.Normaliser(2, (2,), GAMMA, True, False))
    envs.close()
    # what each step returned (both envs alike): [episode, t], the next episode's [e + 1, 0] after an end
    returned = [[1, 1], [1, 2], [2, 0], [2, 1], [2, 2], [2, 3], [2, 4], [3, 0], [3, 1], [3, 2], [4, 0], [4, 1]]
    for t, final_t in ((2, 3.0), (7, 5.0), (10, 3.0)):  # episode ends: terminated at t=3, truncated at 5, terminated
        seen = np.array(returned[: t + 1], dtype=np.float64)
        expected = 10.0 * (final_t - seen[:, 1].mean()) / seen[:, 1].std() + 1.0  # ValueOfObs on the normalised obs
        np.testing.assert_allclose(b["next_values"][t].numpy(), [expected] * 2, rtol=1e-3)
        assert abs(expected - (10.0 * final_t + 1.0)) > 1.0  # the raw final observation would give another value


def test_gaussian_logprob_is_of_the_unclipped_sample(load_script):
    a2c = load_script("a2c")
    obs_space = gym.spaces.Box(-1, 1, (3,))
    agent = a2c.Agent(obs_space, gym.spaces.Box(-1, 1, (2,)), log_std_init=0.3)
    x = torch.randn(4, 3)
    action = torch.tensor([[3.0, -2.5], [0.1, 0.2], [-4.0, 0.0], [0.5, 5.0]])  # far outside [-1, 1]
    logprob, entropy, _ = agent.evaluate_actions(x, action)
    mean, std = agent.actor(x).detach(), np.exp(0.3)
    expected = (-((action - mean) ** 2) / (2 * std**2) - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(-1)
    torch.testing.assert_close(logprob.detach(), expected)
    torch.testing.assert_close(entropy.detach(), torch.full((4,), 2 * (0.5 + 0.5 * np.log(2 * np.pi) + 0.3)))


def test_gsde_uses_one_noise_matrix_per_env_and_rollout_and_its_logprob_is_the_marginal(load_script):
    """--gsde: every action of a rollout is mean + latent @ W with the W drawn for its env at the rollout's start (the
    same state, the same action, within a rollout); the next rollout draws new W. The log-prob is that of
    N(mean, latent^2 @ sigma^2), the spread of the noise over many W; the scale's gradient goes to sigma only."""
    a2c = load_script("a2c")
    torch.manual_seed(0)
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make("Pendulum-v1")] * 3, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    agent = a2c.Agent(envs.single_observation_space, envs.single_action_space, log_std_init=-1.0, gsde=True)
    assert agent.actor_logstd.shape == (64, 1)
    obs, _ = envs.reset(seed=0)
    rollout, obs, _ = a2c.collect_rollout(envs, agent, obs, 4, "cpu", no_normalising(a2c, envs))
    first_noise = agent.noise.clone()
    latent, mean = agent.actor[:-1](rollout["obs"]), agent.actor(rollout["obs"])  # [T, N, 64], [T, N, 1]
    expected = mean + torch.einsum("tnh,nha->tna", latent, first_noise)
    torch.testing.assert_close(rollout["actions"], expected.detach(), rtol=1e-5, atol=1e-5)
    a2c.collect_rollout(envs, agent, obs, 4, "cpu", no_normalising(a2c, envs))
    assert not torch.equal(agent.noise, first_noise)

    x = torch.randn(1, 3)
    agent.reset_noise(20000)
    noise = agent.get_action(x.expand(20000, 3)) - agent.actor(x).detach()
    logprob, _, _ = agent.evaluate_actions(x, torch.zeros(1, 1))
    h = agent.actor[:-1](x).detach()
    std = torch.sqrt(h**2 @ agent.actor_logstd.exp() ** 2 + 1e-6)
    expected = torch.distributions.Normal(agent.actor(x), std).log_prob(torch.zeros(1, 1)).sum(-1)
    torch.testing.assert_close(logprob, expected)
    torch.testing.assert_close(noise.std(0), std[0].detach(), rtol=0.03, atol=0)
    scale = agent.dist(x).scale.sum()
    assert torch.autograd.grad(scale, agent.actor[0].weight, allow_unused=True)[0] is None
    assert torch.autograd.grad(agent.dist(x).scale.sum(), agent.actor_logstd)[0].abs().sum() > 0


def test_rmsprop_is_tensorflows_and_its_state_round_trips(load_script):
    """--optimizer rmsprop-tf is TensorFlow's RMSprop, as the A2C paper ran it: the square average starts at 1 and eps
    is inside the square root (PyTorch's starts at 0: its first step is 10 * lr * sign(g)); the state survives a
    state_dict round trip, as exact resume needs."""
    a2c = load_script("a2c")
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5))
    optimizer = a2c.RMSpropTF([w], lr=0.01, alpha=0.99, eps=1e-5)
    expected, square_avg = w.detach().clone(), torch.ones(5)
    for _ in range(3):
        w.grad = torch.randn(5) * 1e-3
        square_avg = 0.99 * square_avg + 0.01 * w.grad**2
        expected -= 0.01 * w.grad / torch.sqrt(square_avg + 1e-5)
        optimizer.step()
    torch.testing.assert_close(w.detach(), expected)
    restored = a2c.RMSpropTF([w], lr=0.01, alpha=0.99, eps=1e-5)
    restored.load_state_dict(optimizer.state_dict())
    torch.testing.assert_close(restored.state[w]["square_avg"], square_avg)


def test_normaliser_statistics_are_shared_by_the_envs(load_script):
    """One running mean / variance of the observations of all envs, and one of all envs' discounted returns, each
    return restarting at its episode's end (SB3's VecNormalize): per-env statistics let the envs' inputs drift apart."""
    a2c = load_script("a2c")
    num_envs, steps = 3, 450  # Pendulum truncates at 200 steps: every env restarts its return twice
    envs = same_step_envs(a2c, "Pendulum-v1", num_envs)
    normaliser = a2c.Normaliser(num_envs, (3,), GAMMA, True, True)
    envs.reset(seed=0), envs.action_space.seed(0)
    seen_obs, seen_returns, returns, scaled = [], [], np.zeros(num_envs), []
    for _ in range(steps):
        obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
        out = normaliser.obs(obs, update=True)
        seen_obs.append(obs)
        returns = returns * GAMMA + rewards
        seen_returns.append(returns.copy())
        returns[terminated | truncated] = 0.0
        scaled.append((normaliser.reward(rewards, terminated | truncated), rewards))
    envs.close()
    pooled, pooled_returns = np.concatenate(seen_obs), np.concatenate(seen_returns)
    np.testing.assert_allclose(normaliser.obs_rms.mean, pooled.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(normaliser.obs_rms.var, pooled.var(0), rtol=1e-4)
    np.testing.assert_allclose(normaliser.return_rms.var, pooled_returns.var(), rtol=1e-4)
    assert normaliser.obs_rms.count == pytest.approx(num_envs * steps, abs=1e-3)  # each step's observations once
    np.testing.assert_allclose(out, (obs - pooled.mean(0)) / np.sqrt(pooled.var(0)), rtol=1e-3, atol=1e-5)
    last_scaled, last_rewards = scaled[-1]
    np.testing.assert_allclose(last_scaled, last_rewards / np.sqrt(pooled_returns.var()), rtol=1e-4)
    identity = a2c.Normaliser(num_envs, (3,), GAMMA, False, False)
    assert identity.obs(obs, update=True) is obs and identity.reward(rewards, truncated) is rewards


# ---------------------------------------------------------------------------------- evaluation and statistics
def test_normaliser_resumes_its_statistics_and_refuses_per_env_checkpoints(load_script):
    """A resumed run continues the statistics; envs that restart from a reset (not saved in the checkpoint) restart
    their discounted returns too (SB3's VecNormalize.reset). A checkpoint of the per-env wrappers of older versions
    has no "normaliser": with normalisation on it is refused, without it there is nothing to restore."""
    a2c = load_script("a2c")
    saved = a2c.Normaliser(2, (3,), GAMMA, True, True)
    saved.obs(np.ones((2, 3)), update=True), saved.reward(np.array([3.0, 4.0]), np.array([False, False]))
    state = dict(vars(saved))
    pickled = a2c.Normaliser(2, (3,), GAMMA, True, True, {"normaliser": state, "envs": b"the envs"})
    assert pickled.obs_rms.count == saved.obs_rms.count and pickled.returns.tolist() == [3.0, 4.0]
    restarted = a2c.Normaliser(2, (3,), GAMMA, True, True, {"normaliser": state, "envs": None})
    assert restarted.return_rms.count == saved.return_rms.count and restarted.returns.tolist() == [0.0, 0.0]
    with pytest.raises(SystemExit, match="per env"):
        a2c.Normaliser(2, (3,), GAMMA, False, True, {"envs": None})
    assert a2c.Normaliser(2, (3,), GAMMA, False, False, {"envs": None}).returns.tolist() == [0.0, 0.0]


def test_act_normalises_raw_observations_as_training_did(load_script):
    """Evaluation feeds `act` raw observations: with the training statistics copied in (Normaliser.to_agent), it
    must see what the rollout stored, clip included; with the defaults, the raw observation itself."""
    a2c = load_script("a2c")
    torch.manual_seed(0)
    agent = a2c.Agent(gym.spaces.Box(-np.inf, np.inf, (3,)), gym.spaces.Box(-1, 1, (2,)))
    agent.actor[-1].weight.data *= 100  # outputs of order 1 (the head starts at std 0.01): differences show
    raw = torch.randn(5, 3) * 4 + 2
    assert torch.equal(agent.act(raw), agent.actor(raw))  # the default statistics are exactly the identity
    normaliser = a2c.Normaliser(4, (3,), GAMMA, True, False)
    rng = np.random.default_rng(0)
    for _ in range(3):  # three vector steps of 4 envs, with a different scale in each dimension
        normaliser.obs(rng.normal([1.5, -2.0, 0.3], [2.0, 0.5, 3.0], size=(4, 3)), update=True)
    normaliser.to_agent(agent)
    far = torch.tensor([[1.5 + 2.0 * 50, -2.0, 0.3]])  # about 50 standard deviations out in the first dimension
    batch = torch.cat([raw, far])
    stored = torch.as_tensor(normaliser.obs(batch.numpy().astype(np.float64)))  # what the rollout would store
    assert stored.abs().max() == a2c.NORM_CLIP  # the clip is exercised
    torch.testing.assert_close(agent.act(batch), agent.actor(stored))


def test_normalised_observations_and_rewards_are_clipped_for_learning_only(load_script, monkeypatch):
    """--norm-obs / --norm-reward clip what the agent learns from to +-10 (SB3's VecNormalize): on LunarLander (one
    env here) a fast spin or a rare leg contact is 10-19 standard deviations out, and the first reward divides by a
    std estimated from one return. (The episode lines' raw returns: test_reported_returns_are_raw_...)"""
    a2c = load_script("a2c")

    def peaks(clip):  # the same seed and actions: the same trajectory
        monkeypatch.setattr(a2c, "NORM_CLIP", clip)
        envs = same_step_envs(a2c, "LunarLanderContinuous-v3", 1)
        normaliser = a2c.Normaliser(1, (8,), 0.99, True, True)
        envs.reset(seed=0), envs.action_space.seed(0)
        seen = []
        for _ in range(1000):
            obs, reward, terminated, truncated, _ = envs.step(envs.action_space.sample())
            seen.append(
                (np.abs(normaliser.obs(obs, update=True)).max(), np.abs(normaliser.reward(reward, truncated))[0])
            )
        envs.close()
        return np.max(seen, axis=0)

    limit = a2c.NORM_CLIP
    obs_peak, reward_peak = peaks(limit)
    assert obs_peak == limit and reward_peak <= limit
    assert min(peaks(np.inf)) > limit  # without the clips both exceed it: the test can fail


def test_evaluate_is_deterministic_and_draws_no_global_random_numbers(load_script):
    a2c = load_script("a2c")
    env = gym.make("CartPole-v1")
    agent = a2c.Agent(env.observation_space, env.action_space)
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    first = a2c.evaluate(agent, "CartPole-v1", 2, 5, "cpu")
    assert random.getstate() == states[0] and np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    assert len(first) == 2 and first == a2c.evaluate(agent, "CartPole-v1", 2, 5, "cpu")


@pytest.mark.parametrize(
    "device_flag",
    ["--no-cuda", pytest.param("--cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))],
)
def test_box_with_normalisation_saves_evaluates_and_resumes_statistics(run_script, device_flag):
    # MuJoCo envs in subprocesses cannot be pickled: the resumed run restarts its episodes, but the running
    # statistics of every env continue from the checkpoint instead of starting afresh.
    flags = "--env-id InvertedPendulum-v5 --num-envs 2 --async-envs --norm-obs --norm-reward --shared-torso".split()
    flags += ["--optimizer", "adam", device_flag, "--save-model", "--eval-episodes", "2"]
    out = run_script("a2c", *flags, "--total-timesteps", "400").stdout
    assert len(parse_metric(out, "eval/episodic_return")) == 1
    (ckpt,) = glob.glob(str(run_script.cwd / "runs" / "*" / "a2c.pt"))
    saved = torch.load(ckpt, weights_only=False)
    stats = saved["normaliser"]  # one set of statistics for both envs
    assert stats["obs_rms"].count == pytest.approx(400, abs=1e-3) and saved["args"]["norm_obs"]
    mean = saved["agent"]["obs_mean"].cpu().numpy()
    np.testing.assert_allclose(mean, stats["obs_rms"].mean, rtol=1e-5, atol=1e-7)
    out = run_script("a2c", "--eval-checkpoint", ckpt, "--eval-episodes", "2").stdout
    assert len(parse_metric(out, "eval/episodic_return")) == 1

    proc = run_script("a2c", *flags, "--total-timesteps", "800", "--resume", ckpt)
    assert "(this env does not pickle: its episodes restart)" in proc.stdout
    resumed = torch.load(ckpt, weights_only=False)["normaliser"]
    for name in ("obs_rms", "return_rms"):  # continued from the checkpoint: 400 more steps, each counted once
        assert resumed[name].count == pytest.approx(stats[name].count + 400, abs=1e-3)


def stop_by_sigterm(a2c, monkeypatch, capsys, run, step):
    """run("stopped") receives SIGTERM at `step`: it must exit 143 and say where it stopped; the patch is undone."""
    monkeypatch.setattr(a2c, "Run", sigterm_at(a2c, step))
    with pytest.raises(SystemExit) as stopped:
        run("stopped")
    assert stopped.value.code == 128 + signal.SIGTERM
    assert f"stopped by SIGTERM at global_step={step}" in capsys.readouterr().out
    monkeypatch.undo()


def sigterm_at(a2c, step):
    """The script's Run, with a real SIGTERM to this process (caught by the script's handler like a cluster's
    pre-emption) when the loop reaches `step`."""

    class SigtermMidway(a2c.Run):
        def going(self):
            if self.step == step:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().going()

    return SigtermMidway


@pytest.mark.parametrize(
    "env", [dict(env_id="CartPole-v1"), dict(env_id="Pendulum-v1", gsde=True, optimizer="rmsprop-tf")]
)
def test_sigterm_and_resume_with_normalisation_is_exact(load_script, tmp_path, monkeypatch, capsys, env):
    """CartPole, and Pendulum with gSDE's noise matrices and TensorFlow's RMSprop, with --norm-obs --norm-reward,
    stopped by SIGTERM in the middle and resumed: the checkpoint (networks, optimizer, normaliser statistics, counters)
    and the final evaluation equal those of an uninterrupted run."""
    a2c = load_script("a2c")
    flags = dict(
        total_timesteps=1280, num_envs=4, norm_obs=True, norm_reward=True, save_model=True, eval_episodes=2, cuda=False
    )
    flags.update(env)

    def run(where, **extra):
        (tmp_path / where).mkdir(exist_ok=True)
        monkeypatch.chdir(tmp_path / where)
        a2c.main(a2c.Args(**flags, **extra))

    def checkpoint(where):
        (path,) = glob.glob(str(tmp_path / where / "runs" / "*" / "a2c.pt"))
        return path

    run("straight")
    straight_out = capsys.readouterr().out

    stop_by_sigterm(a2c, monkeypatch, capsys, run, 512)
    run("stopped", resume=checkpoint("stopped"))
    resumed_out = capsys.readouterr().out

    eval_line = lambda out: [line for line in out.splitlines() if line.startswith("eval/")]  # noqa: E731
    assert eval_line(resumed_out) == eval_line(straight_out) and len(eval_line(straight_out)) == 1
    a, b = (torch.load(checkpoint(w), weights_only=False) for w in ("straight", "stopped"))
    assert a["counters"] == b["counters"] and np.array_equal(a["obs"], b["obs"])
    for part in ("agent", "optimizer"):
        torch.testing.assert_close(a[part], b[part], rtol=0, atol=0)
    assert pickle.dumps(a["normaliser"]) == pickle.dumps(b["normaliser"])  # the same bytes: the same state


def test_sigterm_to_the_process_group_stops_async_envs_cleanly(tmp_path):
    """A cluster's pre-emption or Ctrl-C reaches the env subprocesses too: they must leave the stop to the main
    process, which saves a checkpoint and exits 143, instead of dying under it."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "a2c.py"), "--async-envs", "--num-envs", "2", "--save-model",
                             "--total-timesteps", "100000"], cwd=tmp_path, env=script_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    for line in proc.stdout:
        if line.startswith("global_step="):
            os.killpg(proc.pid, signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "stopped by SIGTERM" in out and "Traceback" not in err
    assert glob.glob(str(tmp_path / "runs" / "*" / "a2c.pt"))


def test_reported_returns_are_raw_under_reward_normalisation(run_script):
    # Pendulum's rewards are in [-16.3, 0] per step: an episode of 200 steps returns far below -100 when raw,
    # while normalised rewards would sum to a much smaller magnitude.
    out = run_script(
        "a2c",
        "--env-id",
        "Pendulum-v1",
        "--total-timesteps",
        "1600",
        "--num-envs",
        "2",
        "--norm-reward",
        "--eval-episodes",
        "1",
    ).stdout
    returns = parse_metric(out, "episodic_return")[:-1]
    assert returns and all(r < -300 for r in returns)


# ----------------------------------------------------------------------------------------------------- images
# conftest's TinyGrid-v0 (6x6x2 bool, channels last, like MinAtar) and TinyFrames-v0 (2x40x40 uint8, channels first):
# 3 actions, episodes of 8 steps
@pytest.mark.parametrize(
    "env_id, dtype, convs, features",
    [
        ("TinyGrid-v0", torch.bool, [(2, 16, 3, 1)], 128),  # under 36 pixels: MinAtar's network
        ("TinyFrames-v0", torch.uint8, [(2, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)], 512),  # 40 >= 36: Nature DQN's
    ],
)
def test_images_get_one_shared_encoder_and_stay_in_their_dtype(load_script, env_id, dtype, convs, features):
    a2c = load_script("a2c")
    obs_space, act_space = a2c.check_env(env_id)
    torch.manual_seed(0)
    agent = a2c.Agent(obs_space, act_space, hidden_dim=7, shared_torso=False)  # images share a torso regardless
    assert isinstance(agent.torso, a2c.ImageEncoder) and agent.torso.features == features
    layers = [m for m in agent.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]) for m in layers] == convs
    assert agent.actor.in_features == agent.critic.in_features == features  # the two heads sit on the encoder
    for head, std in ((agent.actor, 0.01), (agent.critic, 1.0)):  # orthogonal rows of norm std, zero bias
        w = head.weight.detach().double()
        torch.testing.assert_close(w @ w.T, std**2 * torch.eye(len(w), dtype=torch.float64), rtol=1e-5, atol=1e-9)
        assert not head.bias.any()
    assert "obs_mean" not in agent.state_dict()  # no observation statistics: images are never normalised

    envs = same_step_envs(a2c, env_id, 2)
    obs, _ = envs.reset(seed=0)
    first = obs.copy()
    rollout, _, ended = a2c.collect_rollout(envs, agent, obs, 10, "cpu", no_normalising(a2c, envs))
    episodes = finished_episodes(ended)
    envs.close()
    assert rollout["obs"].dtype == dtype and rollout["obs"].shape == (10, 2, *obs_space.shape)
    assert torch.equal(rollout["obs"][0], torch.as_tensor(first))  # stored as they came, not converted to float
    assert [(t, length) for t, _, _, length in episodes] == [(7, 8), (7, 8)]  # one 8-step episode per env
    assert rollout["dones"][7].tolist() == [1.0, 1.0] and rollout["terminated"].sum() == 0  # truncated
    assert a2c.evaluate(agent, env_id, 1, 0, "cpu") == a2c.evaluate(agent, env_id, 1, 0, "cpu")


@pytest.mark.parametrize("shape, least", [((4, 84, 84), 0.005), ((10, 10, 4), 0.02)])
def test_image_encoder_features_follow_a_small_moving_object(load_script, shape, least):
    # a 2x2 object moving over a blank frame: with PyTorch's default init the features' std over the frames was
    # 0.0004 (84x84) and 0.007 (10x10), so the heads saw nearly a constant; orthogonal init gives 0.02 and 0.04
    a2c = load_script("a2c")
    frames = torch.zeros(64, *shape, dtype=torch.uint8)
    for i in range(64):
        if shape[0] == 4:  # channels first, Atari size: move down a column
            frames[i, :, (i % 40) * 2 : (i % 40) * 2 + 2, 40:42] = 255
        else:  # channels last, MinAtar size: one cell of channel 0
            frames[i, i % 10, (i // 10) % 10, 0] = 255
    for seed in range(3):
        torch.manual_seed(seed)
        with torch.no_grad():
            features = a2c.ImageEncoder(shape)(frames)
        assert features.std(0).mean() > least, (seed, features.std(0).mean())


def test_image_env_runs_end_to_end(run_script):
    """As a user runs it, with a "module:Env-v0" id."""
    flags = ["--env-id", "conftest:TinyFrames-v0", "--total-timesteps", 320, "--num-envs", 2, "--eval-episodes", 2]
    proc = run_script("a2c", *flags, env={"PYTHONPATH": str(ROOT / "tests")})
    assert "(updates: 20)" in proc.stdout and proc.stderr.strip() == "", proc.stderr[-2000:]
    assert set(parse_metric(proc.stdout, "episodic_length")) == {8.0}
    assert len(parse_metric(proc.stdout, "episodic_length")) == 320 // 8
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1


def test_sigterm_and_resume_with_images_is_exact(load_script, tmp_path, monkeypatch, capsys):
    """The bool grid env, stopped by SIGTERM in the middle and resumed, ends like an uninterrupted run."""
    a2c = load_script("a2c")
    flags = dict(env_id="TinyGrid-v0", total_timesteps=320, num_envs=2, save_model=True, exp_name="run", cuda=False)

    def run(where, **extra):
        (tmp_path / where).mkdir(exist_ok=True)
        monkeypatch.chdir(tmp_path / where)
        a2c.main(a2c.Args(**flags, **extra, eval_episodes=2))
        (path,) = glob.glob(str(tmp_path / where / "runs" / "*" / "run.pt"))
        return path, [line for line in capsys.readouterr().out.splitlines() if line.startswith("eval/")]

    straight, straight_eval = run("straight")
    stop_by_sigterm(a2c, monkeypatch, capsys, run, 128)
    (path,) = glob.glob(str(tmp_path / "stopped" / "runs" / "*" / "run.pt"))
    resumed, resumed_eval = run("stopped", resume=path)
    assert resumed_eval == straight_eval and len(straight_eval) == 1
    a, b = (torch.load(p, weights_only=False) for p in (straight, resumed))
    assert a["counters"] == b["counters"] and np.array_equal(a["obs"], b["obs"]) and a["obs"].dtype == bool
    for part in ("agent", "optimizer"):
        torch.testing.assert_close(a[part], b[part], rtol=0, atol=0)


def test_minatar_breakout_runs_out_of_the_box_without_warnings(run_script):
    proc = run_script("a2c", "--env-id", "MinAtar/Breakout-v1", "--total-timesteps", 320, "--eval-episodes", 1)
    assert "seaborn" not in proc.stderr and proc.stderr.strip() == "", proc.stderr[-2000:]
    assert proc.stdout.startswith("a2c.py: MinAtar/Breakout-v1 on ")
    assert re.search(r"^global_step=\d+, episodic_return=\S+, episodic_length=\d+$", proc.stdout, re.M)
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1


# ------------------------------------------------------------------------------------------------------ input
class MatrixObsEnv(CounterEnv):
    observation_space = gym.spaces.Box(-1, 1, (3, 4), np.float32)  # rank 2: neither a vector nor an image


gym.register("MatrixObs-v0", entry_point=MatrixObsEnv, kwargs={"discrete": True})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(env_id="Blackjack-v1"), "needs a flat Box observation space"),
        (dict(env_id="MatrixObs-v0"), "needs a flat Box observation space"),
        (dict(total_timesteps=10), "--total-timesteps 10 < one rollout of 64 steps"),
        (dict(gae_lambda=1.5), "--gae-lambda must be in [0, 1]"),
        (dict(max_grad_norm=0.0), "--learning-rate and --max-grad-norm must be > 0"),
        (dict(seed=-1), "--seed must be in [0, 2**32) (got -1)"),
        (dict(hidden_dim=0), "--hidden-dim must be >= 1 (got 0)"),
        (dict(learning_rate=0.0), "--learning-rate and --max-grad-norm must be > 0"),
        (dict(env_id="TinyGrid-v0", norm_obs=True), "--norm-obs is for vector observations; TinyGrid-v0 gives images"),
        (dict(gsde=True), "--gsde is for Box actions, not Discrete(2)"),
    ],
)
def test_bad_input_one_sentence(load_script, tmp_path, monkeypatch, kwargs, message):
    """In-process through main (a subprocess each would cost seconds); nothing is written before the refusal."""
    a2c = load_script("a2c")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        a2c.main(a2c.Args(**kwargs, track=True, save_model=True))
    assert isinstance(exc.value.code, str) and exc.value.code.startswith("a2c.py") and message in exc.value.code
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------------------- learning
@pytest.mark.learning
def test_cartpole_learns(run_script):
    out = run_script(
        "a2c",
        "--env-id",
        "CartPole-v1",
        "--total-timesteps",
        "60000",
        "--seed",
        "3",
        "--no-cuda",
        env={"OMP_NUM_THREADS": "1"},
    ).stdout
    (final,) = parse_metric(out, "eval/episodic_return")
    assert final >= 300, out[-2000:]


def test_atari_preprocessing_and_game_score(load_script, run_script):
    a2c = load_script("a2c")
    a2c.register_env_family("SpaceInvadersNoFrameskip-v4")
    check_atari_wrappers(a2c.make_env)
    flags = ["--env-id", "BreakoutNoFrameskip-v4", "--total-timesteps", 640, "--num-envs", 2, "--eval-episodes", 0]
    proc = run_script("a2c", *flags)
    lines = re.findall(r"^global_step=\d+, episodic_return=\d+\.00, episodic_length=\d+$", proc.stdout, re.M)
    assert lines and proc.stderr.strip() == "", proc.stderr  # the score is a whole number of points; no banner
