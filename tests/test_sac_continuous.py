import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import parse_metric

SCRIPT = "sac_continuous"


# ---------------------------------------------------------------- math
@pytest.mark.parametrize("low,high", [(-2.0, 2.0), (0.0, 10.0), (-0.5, 3.0)])
def test_squashed_log_prob_matches_change_of_variables(load_script, low, high):
    """log pi(a) from the actor equals log N(u) - log|det da/du|, the Jacobian taken numerically by autograd."""
    m = load_script(SCRIPT)
    space = gym.spaces.Box(np.array([low, -1.0], np.float32), np.array([high, 1.0], np.float32))
    torch.manual_seed(0)
    actor = m.Actor(obs_dim=3, act_space=space, hidden_dim=16)
    obs = torch.randn(5, 3)
    torch.manual_seed(1)
    action, log_prob = actor.get_action(obs)
    torch.manual_seed(1)
    mean, log_std = actor(obs)
    normal = torch.distributions.Normal(mean, log_std.exp())
    u = normal.rsample()
    scale = torch.tensor([(high - low) / 2, 1.0])
    bias = torch.tensor([(high + low) / 2, 0.0])
    for i in range(len(obs)):
        jac = torch.autograd.functional.jacobian(lambda x: scale * torch.tanh(x) + bias, u[i])
        expected = normal.log_prob(u)[i].sum() - torch.logdet(jac)
        assert torch.allclose(action[i], scale * torch.tanh(u[i]) + bias, atol=1e-5)
        assert log_prob[i].item() == pytest.approx(expected.item(), abs=1e-3)


def test_squashed_density_integrates_to_one_over_the_bounds(load_script):
    """The density of a = scale*tanh(u)+bias, u ~ N(0.3, 0.8^2), integrates to 1 over [low, high] = [-3, 5]."""
    m = load_script(SCRIPT)
    low, high = -3.0, 5.0
    scale, bias = (high - low) / 2, (high + low) / 2
    a = torch.linspace(low, high, 200_001, dtype=torch.float64)[1:-1]
    u = torch.atanh((a - bias) / scale)
    gauss = torch.distributions.Normal(torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.8, dtype=torch.float64))
    log_p = m.squashed_log_prob(gauss.log_prob(u)[:, None], u[:, None], torch.tensor([scale], dtype=torch.float64))
    integral = torch.trapezoid(log_p.exp(), a).item()
    assert integral == pytest.approx(1.0, abs=2e-3)


class ConstQ(torch.nn.Module):
    def forward(self, obs, action):
        return torch.full((2, len(obs)), 10.0)


class ZeroEntropyActor:
    def get_action(self, obs):
        return torch.zeros(len(obs), 1), torch.zeros(len(obs))


def test_critic_target_bootstraps_truncation_but_not_termination(load_script):
    m = load_script(SCRIPT)
    qf = m.TwinQ(2, 1, 8)
    obs, actions = torch.zeros(2, 2), torch.zeros(2, 1)
    rewards, terminations = torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0])  # row 1: truncated (not terminated)
    with torch.no_grad():
        q = qf(obs, actions)
    loss = m.critic_loss(qf, ConstQ(), ZeroEntropyActor(), 0.0, (obs, actions, rewards, obs, terminations), gamma=0.9)
    target = torch.tensor([1.0, 1.0 + 0.9 * 10.0])
    expected = sum(((q[i] - target) ** 2).mean() for i in range(2))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_alpha_loss_gradient_sign(load_script):
    """Entropy below target (log pi high) must push alpha up: d loss / d log_alpha < 0."""
    m = load_script(SCRIPT)
    log_alpha = torch.tensor(0.0, requires_grad=True)
    m.alpha_loss(log_alpha, torch.full((4,), 2.0), target_entropy=-1.0).backward()  # entropy -2 < target -1
    assert log_alpha.grad.item() < 0
    log_alpha.grad = None
    m.alpha_loss(log_alpha, torch.full((4,), -3.0), target_entropy=-1.0).backward()  # entropy 3 > target -1
    assert log_alpha.grad.item() > 0


# ---------------------------------------------------------------- buffer and autoreset


@pytest.mark.parametrize("learning_starts", [10_000, 20])
def test_buffer_holds_only_real_transitions(load_script, monkeypatch, tmp_path, learning_starts):
    m = load_script(SCRIPT)
    captured = []

    class CapturingBuffer(m.ReplayBuffer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            captured.append(self)

    monkeypatch.setattr(m, "ReplayBuffer", CapturingBuffer)
    monkeypatch.chdir(tmp_path)
    args = m.Args(
        env_id="CounterBox-v0",
        total_timesteps=60,
        num_envs=3,
        learning_starts=learning_starts,
        batch_size=8,
        eval_episodes=0,
    )
    m.main(args)
    rb = captured[0]
    assert len(rb) == 60
    obs, nxt = rb.obs[:60].numpy(), rb.next_obs[:60].numpy()
    term, trunc = rb.terminations[:60].numpy(), rb.truncations[:60].numpy()
    assert np.all(nxt[:, 0] == obs[:, 0]), "a transition crosses two episodes"
    assert np.all(nxt[:, 1] == obs[:, 1] + 1), "next_obs is not the true successor"
    odd = obs[:, 0] % 2 == 1
    assert np.array_equal(term == 1, odd & (nxt[:, 1] == 3)), "terminations misplaced"
    assert np.array_equal(trunc == 1, ~odd & (nxt[:, 1] == 5)), "truncations misplaced"
    assert np.all(term[trunc == 1] == 0), "a truncated step is marked terminal: it would not be bootstrapped"
    assert trunc.sum() > 0 and term.sum() > 0


# ---------------------------------------------------------------- end to end
def test_smoke_mujoco_vector_envs(run_script):
    proc = run_script(
        SCRIPT,
        "--env-id",
        "Hopper-v5",
        "--num-envs",
        2,
        "--total-timesteps",
        200,
        "--learning-starts",
        100,
        "--batch-size",
        16,
        "--eval-episodes",
        1,
    )
    assert "updates: 50" in proc.stdout  # one gradient step per vector step of 2 envs after warm-up
    assert "settotalmass" not in proc.stdout + proc.stderr  # MuJoCo's deprecation notice is filtered


def test_fewer_steps_than_learning_starts_still_evaluates(run_script):
    proc = run_script(SCRIPT, "--total-timesteps", 200, "--learning-starts", 1000, "--eval-episodes", 1)
    assert "updates: 0" in proc.stdout
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1


def test_evaluation_draws_no_training_random_numbers(load_script):
    m = load_script(SCRIPT)
    env = gym.make("Pendulum-v1")
    actor = m.Actor(3, env.action_space, 16)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    m.evaluate(actor, "Pendulum-v1", 1, seed=0, device="cpu")
    assert torch.equal(torch.get_rng_state(), state)


# ---------------------------------------------------------------- learning
@pytest.mark.learning
@pytest.mark.parametrize("compile_flag", [[], ["--compile"]], ids=["eager", "compiled"])
def test_learns_pendulum(run_script, compile_flag):
    """The same run eager and through torch.compile: both must learn (compiled kernels round differently, so the
    two trajectories are not bit-identical, only equally good)."""
    # 64-unit networks: the same algorithm at about a fifth of the CPU cost of the 256-unit default, so CI stays short
    args = ["--env-id", "Pendulum-v1", "--seed", 1, "--total-timesteps", 6000, "--learning-starts", 1000]
    proc = run_script(SCRIPT, *args, "--eval-episodes", 5, "--hidden-dim", 64, *compile_flag)
    (final,) = parse_metric(proc.stdout, "eval/episodic_return")
    assert final >= -250, f"SAC did not learn Pendulum in 6000 steps: eval {final}"
