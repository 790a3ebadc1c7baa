"""Tests of sac_discrete.py: the losses and the update step against hand computations, the buffer against CartPole's
own physics, this script's own command-line checks, and short fixed-seed CartPole and Acrobot learning runs (what
every script shares is tested in test_cli.py)."""

import copy
import glob
import io
import math
import os
import random
import re
import signal
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ROOT, check_atari_wrappers, parse_metric, script_env

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
    expected = [
        sum(PROBS[b][a] * (min(Q1[b][a], Q2[b][a]) - ALPHA * math.log(PROBS[b][a])) for a in range(3)) for b in range(2)
    ]
    # first state by hand: 0.2*(1.0-0.4 ln .2) + 0.3*(1.0-0.4 ln .3) + 0.5*(2.5-0.4 ln .5)
    assert expected[0] == pytest.approx(
        0.2 * (1 + 0.4 * 1.6094379) + 0.3 * (1 + 0.4 * 1.2039728) + 0.5 * (2.5 + 0.4 * 0.6931472)
    )
    assert sd.soft_value(probs, log_pi, q, ALPHA).tolist() == pytest.approx(expected)
    # --no-backup-entropy backs up with alpha = 0: the expected Q alone, 0.2*1.0 + 0.3*1.0 + 0.5*2.5 for the first state
    no_bonus = [sum(PROBS[b][a] * min(Q1[b][a], Q2[b][a]) for a in range(3)) for b in range(2)]
    assert no_bonus[0] == pytest.approx(1.75)
    assert sd.soft_value(probs, log_pi, q, 0.0).tolist() == pytest.approx(no_bonus)


@pytest.mark.parametrize("backup_entropy", [True, False])
def test_backup_entropy_reaches_the_target(load_script, tmp_path, monkeypatch, backup_entropy):
    """The critic target gets alpha's entropy bonus with --backup-entropy and none by default."""
    sd = load_script("sac_discrete")
    seen, original = [], sd.soft_value

    def recording_soft_value(next_probs, next_log_pi, next_q_target, alpha):
        seen.append(float(alpha))
        return original(next_probs, next_log_pi, next_q_target, alpha)

    monkeypatch.setattr(sd, "soft_value", recording_soft_value)
    monkeypatch.chdir(tmp_path)
    sd.main(sd.Args(total_timesteps=260, learning_starts=250, batch_size=32, hidden_dim=16, eval_episodes=0,
                    cuda=False, backup_entropy=backup_entropy, alpha_init=1.0))  # fmt: skip
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
            expected += (
                sum((qk[b][actions[b]] - (rewards[b] + gamma * (1 - terminated[b]) * next_v[b])) ** 2 for b in range(2))
                / 2
            )
        got = sd.critic_loss(
            q, torch.tensor(actions), torch.tensor(rewards), torch.tensor(terminated), torch.tensor(next_v), gamma
        )
        assert got.item() == pytest.approx(expected)


def test_actor_loss_by_hand_sums_over_actions(load_script):
    sd = load_script("sac_discrete")
    probs, log_pi, q = example()
    q.requires_grad_(True)
    logits = log_pi.clone().requires_grad_(True)  # so that the gradient check below goes through a softmax
    p, lp = torch.softmax(logits, -1), torch.log_softmax(logits, -1)
    expected = (
        sum(
            sum(PROBS[b][a] * (ALPHA * math.log(PROBS[b][a]) - min(Q1[b][a], Q2[b][a])) for a in range(3))
            for b in range(2)
        )
        / 2
    )  # mean over states, sum over actions
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
                grads.append(
                    sum(
                        sum(pr[i][j] * (ALPHA * math.log(pr[i][j]) - min(Q1[i][j], Q2[i][j])) for j in range(3))
                        for i in range(2)
                    )
                    / 2
                )
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
    qf = sd.TwinQ((4,), 3, 8)
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
    rb = sd.ReplayBuffer(5, gym.spaces.Box(-1, 1, (2,)), torch.device("cpu"))
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
                    hidden_dim=16, eval_episodes=0, cuda=False))  # fmt: skip
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
        # both endings occur (20-step limit)
        assert sum(terminated) > 0 and sum(e and not t for e, t in zip(ended, terminated)) > 0


def test_update_equals_three_separate_adam_steps(load_script):
    """update() sums the three losses into one backward pass and one Adam step over three parameter groups. That must
    equal a separate Adam step on each loss, the actor and alpha losses taken with the critics of before the step (the
    one-step lag); then log(alpha) is clamped and the target critics move tau of the way to the online ones."""
    sd = load_script("sac_discrete")
    args = sd.Args(tau=0.1, gamma=0.9, log_alpha_max=0.0, batch_size=6, backup_entropy=True)  # alpha starts at 1
    torch.manual_seed(0)
    actor, qf, qf_target = sd.Actor((4,), 3, 16), sd.TwinQ((4,), 3, 16), sd.TwinQ((4,), 3, 16).requires_grad_(False)
    obs, next_obs = torch.randn(6, 4), torch.randn(6, 4)
    batch = (obs, torch.tensor([0, 1, 2, 0, 1, 2]), torch.randn(6), next_obs, torch.tensor([0.0, 1, 0, 0, 1, 0]))
    target_entropy = math.log(3)  # above any entropy: alpha's step goes up, into the clamp
    ref_actor, ref_qf, ref_target = (copy.deepcopy(m) for m in (actor, qf, qf_target))
    log_alpha, ref_log_alpha = torch.tensor(0.0, requires_grad=True), torch.tensor(0.0, requires_grad=True)
    optimizer = torch.optim.Adam([{"params": actor.parameters(), "lr": 1e-2}, {"params": qf.parameters(), "lr": 1e-2},
                                  {"params": [log_alpha], "lr": 1e-2}])  # fmt: skip
    losses, entropy = sd.update(batch, actor, qf, qf_target, log_alpha, optimizer, args, target_entropy)

    probs, log_pi = ref_actor(obs)
    with torch.no_grad():
        next_probs, next_log_pi = ref_actor(next_obs)
        next_v = sd.soft_value(next_probs, next_log_pi, ref_target(next_obs), 1.0)
    q = ref_qf(obs)
    expected = (sd.critic_loss(q, batch[1], batch[2], batch[4], next_v, 0.9), sd.actor_loss(probs, log_pi, q, 1.0),
                sd.alpha_loss(ref_log_alpha, probs, log_pi, target_entropy))  # fmt: skip
    for loss, params in zip(expected, ([*ref_qf.parameters()], [*ref_actor.parameters()], [ref_log_alpha])):
        step = torch.optim.Adam(params, lr=1e-2)
        step.zero_grad()
        loss.backward(retain_graph=True)
        step.step()
    for got, want in zip(losses, expected):
        assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert entropy.item() == pytest.approx(-(probs * log_pi).sum(-1).mean().item(), rel=1e-5)
    for net, ref in ((actor, ref_actor), (qf, ref_qf)):
        for p, r in zip(net.parameters(), ref.parameters()):
            assert torch.allclose(p, r, atol=1e-6)
    for p, r, online in zip(qf_target.parameters(), ref_target.parameters(), qf.parameters()):
        assert torch.allclose(p, r + 0.1 * (online - r), atol=1e-6)
    assert ref_log_alpha.item() > 0 and log_alpha.item() == 0.0  # alpha rose, and the clamp took it back


def test_buffer_state_dict_round_trip(load_script):
    """A checkpoint holds only the filled rows, and the restored buffer samples exactly as the saved one."""
    sd = load_script("sac_discrete")
    rb = sd.ReplayBuffer(10, gym.spaces.Box(-1, 1, (2,)), torch.device("cpu"))
    for t in range(3):
        rows = np.array([[t, 1.0], [t, 2.0]], dtype=np.float32)
        rb.add(rows, rows + 1, np.array([t, 2 - t]), np.array([0.5, t]), np.array([False, t == 2]))
    state = rb.state_dict()
    assert state["obs"].untyped_storage().nbytes() == 6 * 2 * 4  # not the whole preallocated storage
    assert all(state[k].data_ptr() == getattr(rb, k).data_ptr() for k in rb.FIELDS)  # and no copy on the CPU
    again = sd.ReplayBuffer(10, gym.spaces.Box(-1, 1, (2,)), torch.device("cpu"))
    again.load_state_dict(state)
    assert (again.pos, again.full, len(again)) == (rb.pos, rb.full, 6)
    for name in sd.ReplayBuffer.FIELDS:
        assert torch.equal(getattr(again, name), getattr(rb, name)), name
    torch.manual_seed(3)
    first = rb.sample(8)
    torch.manual_seed(3)
    assert all(torch.equal(a, b) for a, b in zip(first, again.sample(8)))


def test_evaluate_is_greedy_and_draws_no_random_numbers(load_script):
    sd = load_script("sac_discrete")
    torch.manual_seed(0)
    actor = sd.Actor((4,), 2, 16)
    obs = torch.randn(32, 4)
    assert torch.equal(actor.act(obs), actor(obs)[0].argmax(-1))
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    sd.evaluate(actor, "CartPole-v1", 2, 0, torch.device("cpu"))
    assert torch.equal(states[0], torch.get_rng_state())
    assert np.array_equal(states[1], np.random.get_state()[1]) and states[2] == random.getstate()


def test_learning_starts_below_batch_size_samples_with_replacement(load_script, tmp_path, monkeypatch, capsys):
    """The first batches are drawn with replacement from the few transitions the buffer holds."""
    sd = load_script("sac_discrete")
    monkeypatch.chdir(tmp_path)
    sd.main(sd.parse_args(["--total-timesteps", "60", "--learning-starts", "10", "--batch-size", "64",
                           "--hidden-dim", "16", "--eval-episodes", "0", "--no-cuda"]))  # fmt: skip
    assert "(updates: 50)" in capsys.readouterr().out
    assert os.listdir(tmp_path) == []  # nothing written without --save-model / --checkpoint-every


@pytest.mark.parametrize("args, message", [
    (("--env-id", "Pendulum-v1"), "needs a Discrete action space; Pendulum-v1 has Box(-2.0, 2.0, (1,), float32): "
     "use sac_continuous.py"),
    (("--env-id", "Blackjack-v1"), "needs a flat Box or an image (rank-3 Box) observation space"),
    (("--target-entropy-scale", "1.0"), "--target-entropy-scale must be in [0, 1)"),
    (("--alpha-init", "0"), "--alpha-init must be > 0"),
    (("--alpha-init", "10"), "--alpha-init 10.0 is outside exp([--log-alpha-min, --log-alpha-max])"),
    (("--log-alpha-min", "3"), "--log-alpha-min must be below --log-alpha-max"),
    (("--alpha-lr", "0"), "--policy-lr, --q-lr and --alpha-lr must be > 0"),
    (("--adam-eps", "0"), "--adam-eps must be > 0 (got 0.0)"),
])  # fmt: skip
def test_bad_input(load_script, tmp_path, monkeypatch, args, message):
    """This script's own checks, in-process through the command-line parser (a subprocess each would cost seconds);
    the checks that every script shares are in test_cli.py."""
    sd = load_script("sac_discrete")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        sd.main(sd.parse_args([*args, "--track", "--save-model"]))
    assert (
        isinstance(exc.value.code, str) and exc.value.code.startswith("sac_discrete.py") and message in exc.value.code
    )
    assert os.listdir(tmp_path) == []  # nothing written: no runs/, no wandb/


@pytest.mark.learning
@pytest.mark.parametrize(
    "args, threshold",
    [
        # a random policy averages about 22, the untrained greedy one about 9
        (["--env-id", "CartPole-v1", "--total-timesteps", 8000, "--learning-starts", 1000], 100),
        # -1 a step until the goal, -500 until it is found (a random policy reaches it in 2% of episodes): the defaults
        # must find a first success early
        (["--env-id", "Acrobot-v1", "--total-timesteps", 20000], -200),
    ],
    ids=["CartPole-v1", "Acrobot-v1"],
)
def test_learns(run_script, args, threshold):
    out = run_script("sac_discrete", *args, "--seed", 1, "--no-cuda", env={"OMP_NUM_THREADS": "1"}).stdout
    (final,) = parse_metric(out, "eval/episodic_return")
    assert final >= threshold, out[-2000:]


# ------------------------------------------------------------------------------------------------ image observations
@pytest.mark.parametrize("shape, dtype, convs", [((6, 6, 2), bool, 1), ((2, 40, 40), np.uint8, 3)])
def test_image_observations_get_their_encoder_and_their_own_dtype(load_script, shape, dtype, convs):
    """A small grid gets MinAtar's network (one 3x3 convolution), an Atari-size frame Nature's (three); the buffer
    keeps the observations' dtype and the networks see floats in [0, 1]."""
    sd = load_script("sac_discrete")
    space = gym.spaces.Box(0, 1 if dtype is bool else 255, shape, dtype)
    actor, qf = sd.Actor(shape, 3, 16), sd.TwinQ(shape, 3, 16)
    for net in (actor, *qf.encoders):
        assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == convs
    rb = sd.ReplayBuffer(10, space, torch.device("cpu"))
    assert rb.obs.dtype == rb.next_obs.dtype == (torch.bool if dtype is bool else torch.uint8)
    obs = np.stack([space.sample() for _ in range(4)])
    rb.add(obs, obs, np.zeros(4), np.zeros(4), np.zeros(4))
    assert torch.equal(rb.obs[:4], torch.as_tensor(obs))
    batch = rb.sample(5)
    assert actor(batch[0])[0].shape == (5, 3) and qf(batch[0]).shape == (2, 5, 3)
    frames = torch.as_tensor(obs)
    assert torch.equal(sd.to_float(frames), frames.float() / (1.0 if dtype is bool else 255.0))


def test_atari_encoders_features_follow_a_small_moving_object(load_script):
    """A 2x2 object moving down a blank 84x84 frame: at PyTorch's default init the features' std over the frames was
    about 0.0003 in the actor's and both critics' encoders, and on Breakout they died (notes/atari.md)."""
    sd = load_script("sac_discrete")
    frames = torch.zeros(64, 4, 84, 84, dtype=torch.uint8)
    for i in range(64):
        frames[i, :, (i % 40) * 2 : (i % 40) * 2 + 2, 40:42] = 255
    for seed in range(3):
        torch.manual_seed(seed)
        actor, qf = sd.Actor((4, 84, 84), 4, 16), sd.TwinQ((4, 84, 84), 4, 16)
        with torch.no_grad():
            stds = [float(encoder(frames).std(0).mean()) for encoder in (actor.net[0], *qf.encoders)]
        assert min(stds) > 0.005, (seed, stds)


def test_an_atari_size_buffer_the_machine_cannot_hold_gets_one_sentence(load_script, monkeypatch):
    sd = load_script("sac_discrete")
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert 5.6e9 < sd.ReplayBuffer.nbytes(100_000, frames) < 6e9  # uint8 storage: 5.6 GB, not 22.6 GB of float32
    # Linux's MemAvailable (free pages and the page cache the kernel gives back) is what counts, not MemFree
    meminfo = "MemTotal: 25000000 kB\nMemFree: 1048576 kB\nMemAvailable: 4194304 kB\n"  # 1 GiB free, 4 available
    monkeypatch.setattr(sd, "open", lambda path: io.StringIO(meminfo * (path == "/proc/meminfo")), raising=False)
    with pytest.raises(SystemExit, match=r"--buffer-size 100000 needs 5\.3 GiB, but 4\.0 GiB are free"):
        sd.validate(sd.Args(buffer_size=100_000, cuda=False), frames)
    sd.validate(sd.Args(buffer_size=60_000, cuda=False), frames)  # 3.2 GiB: more than MemFree, less than available

    def no_meminfo(path, *args):  # macOS, Windows
        raise FileNotFoundError(path)

    monkeypatch.setattr(sd, "open", no_meminfo, raising=False)
    sd.validate(sd.Args(buffer_size=100_000, cuda=False), frames)  # the size cannot be known there: not refused
    monkeypatch.setattr(sd, "open", lambda path: io.StringIO("MemFree: 1024 kB\n"), raising=False)  # Linux < 3.14
    sd.validate(sd.Args(buffer_size=100_000, cuda=False), frames)  # no MemAvailable line: not refused either


@pytest.mark.parametrize("env_id", ["TinyGrid-v0", "TinyFrames-v0"])
def test_image_env_runs_saves_and_resumes_exactly(tmp_path, env_id):
    """End to end on an image env: the episode and eval lines, then SIGTERM mid-run and --resume, which must end bit
    for bit like a straight run (the buffer keeps the frames' own dtype through the checkpoint)."""
    flags = ["--env-id", f"conftest:{env_id}", "--total-timesteps", 400, "--learning-starts", 100, "--batch-size", 16,
             "--update-frequency", 2, "--eval-episodes", 2, "--save-model", "--exp-name", "run",
             "--adam-eps", 1e-4]  # fmt: skip
    args = [sys.executable, str(ROOT / "sac_discrete.py"), *map(str, flags)]
    env = script_env({"PYTHONPATH": str(ROOT / "tests")})  # the env ids come from conftest
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    straight.mkdir(), stopped.mkdir()
    full = subprocess.run(args, cwd=straight, env=env, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]
    assert re.search(r"^global_step=\d+, episodic_return=\S+, episodic_length=8$", full.stdout, re.M)
    proc = subprocess.Popen(args, cwd=stopped, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if (m := re.match(r"global_step=(\d+)", line)) and int(m.group(1)) >= 200:
            proc.send_signal(signal.SIGTERM)
            break
    proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGTERM
    (path,) = glob.glob(str(stopped / "runs" / "*" / "run.pt"))
    assert torch.load(path, weights_only=False)["rb"]["obs"].dtype in (torch.bool, torch.uint8)
    resumed = subprocess.run([*args, "--resume", path], cwd=stopped, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert parse_metric(resumed.stdout, "eval/episodic_return") == parse_metric(full.stdout, "eval/episodic_return")
    (straight_path,) = glob.glob(str(straight / "runs" / "*" / "run.pt"))
    a, b = (torch.load(p, weights_only=False) for p in (straight_path, path))
    for key in ("actor", "qf", "qf_target"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert [g["eps"] for g in b["optimizer"]["param_groups"]] == [1e-4] * 3  # --adam-eps reaches every group


def test_minatar_runs_out_of_the_box_without_warnings(run_script):
    proc = run_script("sac_discrete", "--env-id", "MinAtar/Breakout-v1", "--total-timesteps", 300, "--learning-starts",
                      200, "--batch-size", 16, "--eval-episodes", 1)  # fmt: skip
    assert "MinAtar/Breakout-v1 on cpu" in proc.stdout and len(parse_metric(proc.stdout, "eval/episodic_return")) == 1
    assert proc.stderr.strip() == "", proc.stderr


def test_atari_preprocessing_and_game_score(load_script, run_script):
    sd = load_script("sac_discrete")
    sd.register_env_family("SpaceInvadersNoFrameskip-v4")
    check_atari_wrappers(sd.make_env)
    flags = ["--env-id", "BreakoutNoFrameskip-v4", "--total-timesteps", 700, "--learning-starts", 600, "--batch-size",
             8, "--buffer-size", 1000, "--eval-episodes", 0]  # fmt: skip
    proc = run_script("sac_discrete", *flags)
    lengths = [int(n) for n in re.findall(r"^global_step=\d+, episodic_return=\d+\.00, episodic_length=(\d+)$",
                                          proc.stdout, re.M)]  # fmt: skip
    assert lengths and proc.stderr.strip() == "", proc.stderr  # the score is a whole number of points; no banner


def test_episodic_life_ends_learning_episodes_at_a_lost_life_and_scores_whole_games(load_script, monkeypatch):
    """--episodic-life on Breakout (5 lives): the step that loses a life is terminal while lives remain, reset() then
    continues the same game (lives and frame counter go on), and only the real game over carries the episode
    statistics, of the whole game; the next reset starts a new game. The greedy evaluation plays whole games."""
    sd = load_script("sac_discrete")
    sd.register_env_family("BreakoutNoFrameskip-v4")
    env = sd.make_env("BreakoutNoFrameskip-v4", 0, False, "", episodic_life=True)()
    ale, rng = env.unwrapped.ale, np.random.default_rng(0)
    env.reset(seed=0)
    lives_at_ends, steps = [], 0
    while True:
        _, _, terminated, truncated, info = env.step(int(rng.integers(4)))
        steps += 1
        if "episode" in info:
            break
        if terminated or truncated:
            lives, frame = ale.lives(), ale.getEpisodeFrameNumber()
            lives_at_ends.append(lives)
            env.reset()
            assert ale.lives() == lives and ale.getEpisodeFrameNumber() > frame  # the same game, one life less
    assert lives_at_ends == [4, 3, 2, 1] and terminated and ale.lives() == 0
    assert info["episode"]["l"] >= 4 * steps  # the whole game's frames (4 per agent step), not the last life's
    env.reset()
    assert ale.lives() == 5 and ale.getEpisodeFrameNumber() < 100
    env.close()

    class RandomActor:
        def act(self, obs):
            return torch.as_tensor([int(rng.integers(4))])

    soft_resets = []
    reset = sd.EpisodicLife.reset
    monkeypatch.setattr(
        sd.EpisodicLife,
        "reset",
        lambda self, **kw: soft_resets.append(getattr(self, "game_over", True)) or reset(self, **kw),
    )
    assert len(sd.evaluate(RandomActor(), "BreakoutNoFrameskip-v4", 1, 0, torch.device("cpu"), True)) == 1
    assert soft_resets.count(False) == 4  # the evaluation episode went on through all five lives


def test_hard_target_updates_copy_only_on_their_steps(load_script):
    """--tau 1 --target-network-frequency N (SAC-Discrete on Atari): the target critics are an exact copy after
    every N-th gradient step and untouched in between."""
    sd = load_script("sac_discrete")
    torch.manual_seed(0)
    args = sd.Args(tau=1.0, batch_size=4)
    actor, qf, qf_target = sd.Actor((4,), 3, 8), sd.TwinQ((4,), 3, 8), sd.TwinQ((4,), 3, 8).requires_grad_(False)
    log_alpha = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.Adam([*actor.parameters(), *qf.parameters(), log_alpha], lr=1e-2)
    batch = (torch.randn(4, 4), torch.tensor([0, 1, 2, 0]), torch.ones(4), torch.randn(4, 4), torch.zeros(4))
    before = copy.deepcopy(qf_target.state_dict())
    sd.update(batch, actor, qf, qf_target, log_alpha, optimizer, args, 0.5, polyak=False)
    assert all(torch.equal(before[k], v) for k, v in qf_target.state_dict().items())
    sd.update(batch, actor, qf, qf_target, log_alpha, optimizer, args, 0.5, polyak=True)
    assert all(torch.equal(qf.state_dict()[k], v) for k, v in qf_target.state_dict().items())
