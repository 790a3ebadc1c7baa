import glob
import io
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import gaussian_episodes, parse_metric

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


def test_buffer_state_dict_round_trip(load_script):
    """A checkpoint holds only the filled rows, and the restored buffer samples exactly as the saved one."""
    m = load_script(SCRIPT)
    rb = m.ReplayBuffer(10, 2, 1, torch.device("cpu"))
    for t in range(3):
        rows = np.array([[t, 1.0], [t, 2.0]], dtype=np.float32)
        rb.add(rows, rows + 1, np.array([[0.1 * t], [-0.2]]), np.array([0.5, t]), np.array([0, t == 2]), np.zeros(2))
    state = rb.state_dict()
    assert state["obs"].untyped_storage().nbytes() == 6 * 2 * 4  # not the whole preallocated storage
    assert all(state[k].data_ptr() == getattr(rb, k).data_ptr() for k in rb.FIELDS)  # and no copy on the CPU
    again = m.ReplayBuffer(10, 2, 1, torch.device("cpu"))
    again.load_state_dict(state)
    assert (again.pos, again.full, again.added, len(again)) == (rb.pos, rb.full, 6, 6)
    for name in m.ReplayBuffer.FIELDS:
        assert torch.equal(getattr(again, name), getattr(rb, name)), name
    torch.manual_seed(3)
    first = rb.sample(8)
    torch.manual_seed(3)
    assert all(torch.equal(a, b) for a, b in zip(first, again.sample(8)))


def test_checkpoint_of_a_short_run_is_small(run_script):
    """With the default --buffer-size of a million rows, a 600-step checkpoint holds 600 of them: well under 1 MB
    (the whole preallocated buffer would be 40 MB)."""
    run_script(SCRIPT, "--total-timesteps", 600, "--learning-starts", 200, "--save-model", "--hidden-dim", 32,
               "--batch-size", 32, "--eval-episodes", 0)  # fmt: skip
    (path,) = glob.glob(str(run_script.cwd / "runs" / "*" / "sac_continuous.pt"))
    assert os.path.getsize(path) < 1e6
    assert len(torch.load(path, weights_only=False)["rb"]["obs"]) == 600


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


def test_compiled_run_reads_the_current_alpha(run_script):
    """--compile on CPU: the temperature the steps read is exp(log_alpha) after the last alpha step, not a stale copy
    (the saved alpha is that tensor), and the run says once that compiling on CPU is slower."""
    proc = run_script(SCRIPT, "--total-timesteps", 400, "--learning-starts", 200, "--hidden-dim", 32,
                      "--batch-size", 32, "--eval-episodes", 0, "--save-model", "--compile")  # fmt: skip
    assert proc.stdout.count("--compile on CPU measured slower than eager") == 1
    (path,) = glob.glob(str(run_script.cwd / "runs" / "*" / "sac_continuous.pt"))
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["counters"]["updates"] == 200
    alpha, log_alpha = ckpt["alpha"].item(), ckpt["log_alpha"].item()
    assert log_alpha < -0.05  # 200 alpha steps moved it from 0: a stale alpha would differ by about 1e-3
    assert alpha == pytest.approx(np.exp(log_alpha), rel=1e-6, abs=0)


def test_dataset_appears_under_its_id_only_when_complete(load_script, minari_path, monkeypatch):
    """The dataset is written elsewhere and renamed into place: a write cut short leaves nothing under its id (and no
    folder minari lists), a complete one loads under its id."""
    import minari
    from minari.data_collector import EpisodeBuffer

    m = load_script(SCRIPT)
    episodes = [EpisodeBuffer(id=i, **ep) for i, ep in enumerate(gaussian_episodes("Pendulum-v1", 2, 1.0))]
    dataset = dict(buffer=episodes, env=gym.make("Pendulum-v1"), eval_env="Pendulum-v1", algorithm_name="test",
                   author="test", author_email="test", code_permalink="test", description="test")  # fmt: skip
    real_create, seen = minari.create_dataset_from_buffers, []

    def cut_short(**kwargs):
        real_create(**kwargs)
        seen.append(os.path.exists(minari_path / "test" / "cut-v0"))
        raise KeyboardInterrupt  # stopped after minari wrote, before the rename

    monkeypatch.setattr(minari, "create_dataset_from_buffers", cut_short)
    with pytest.raises(KeyboardInterrupt):
        m.publish_dataset("test/cut-v0", **dataset)
    assert seen == [False] and minari.list_local_datasets() == {}
    assert os.listdir(minari_path) == [] and os.environ["MINARI_DATASETS_PATH"] == str(minari_path)
    monkeypatch.setattr(minari, "create_dataset_from_buffers", real_create)
    m.publish_dataset("test/whole-v0", **dataset)
    assert list(minari.list_local_datasets()) == ["test/whole-v0"]
    assert minari.load_dataset("test/whole-v0").total_episodes == 2
    assert not [name for name in os.listdir(minari_path) if name.startswith(".")]  # nothing left behind


@pytest.mark.parametrize("args, message", [
    (("--buffer-size", str(10**12)), "--buffer-size 1000000000000 needs 37252.9 GiB, but"),
    (("--hidden-dim", "0"), "--hidden-dim must be >= 1"),
    (("--policy-lr", "0"), "--policy-lr and --q-lr must be > 0"),
    (("--q-lr", "-1e-3"), "--policy-lr and --q-lr must be > 0"),
    (("--seed", "-1"), "--seed must be in [0, 2**32)"),
    (("--learning-starts", "-1"), "--learning-starts must be >= 0"),
    (("--cudagraphs",), "--cudagraphs works through torch.compile: add --compile"),
])  # fmt: skip
def test_bad_input(load_script, tmp_path, monkeypatch, args, message):
    """This script's own checks, in-process through the command-line parser (a subprocess each would cost seconds);
    the checks that every script shares are in test_cli.py."""
    m = load_script(SCRIPT)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        m.main(m.parse_args([*args, "--track", "--save-model"]))
    assert isinstance(exc.value.code, str) and exc.value.code.startswith("sac_continuous.py")
    assert message in exc.value.code
    assert os.listdir(tmp_path) == []  # nothing written: no runs/, no wandb/


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


def test_a_buffer_larger_than_the_available_memory_gets_one_sentence(load_script, monkeypatch):
    """Linux's MemAvailable (free pages and the page cache the kernel gives back) counts, not free pages alone."""
    m = load_script(SCRIPT)
    obs, act = gym.spaces.Box(-1, 1, (100,)), gym.spaces.Box(-1, 1, (6,))
    meminfo = "MemFree: 1024 kB\nMemAvailable: 1048576 kB\n"  # 1 MiB free, 1 GiB available
    monkeypatch.setattr(m, "open", lambda path: io.StringIO(meminfo * (path == "/proc/meminfo")), raising=False)
    m.validate(m.Args(buffer_size=1_000_000, cuda=False), obs, act)  # 4 bytes x 209 floats x 1M = 0.78 GiB: fits
    with pytest.raises(SystemExit, match=r"--buffer-size 2000000 needs 1\.6 GiB, but 1\.0 GiB are free"):
        m.validate(m.Args(buffer_size=2_000_000, cuda=False), obs, act)
    monkeypatch.setattr(m, "open", lambda path: io.StringIO("MemFree: 1024 kB\n"), raising=False)  # Linux < 3.14
    m.validate(m.Args(buffer_size=2_000_000, cuda=False), obs, act)  # no MemAvailable line: the size is not checked
