# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0", "minari>=0.5,<0.6", "h5py>=3.8"]
# ///
"""Soft Actor-Critic for Box action spaces: a tanh-squashed Gaussian actor, twin critics whose minimum forms the
target, Polyak-averaged target critics, and a temperature alpha tuned towards a target entropy of -|A|.
Papers: Haarnoja et al. 2018, arXiv 1801.01290 (SAC) and arXiv 1812.05905 (automatic temperature, Eq. 17-18).

    python sac_continuous.py --env-id Pendulum-v1 --total-timesteps 15000 --learning-starts 1000

Deviations (all shared with CleanRL, so its flags keep their meaning):
- delayed actor updates: `--policy-frequency` actor steps every `--policy-frequency` critic steps;
- the temperature loss is written on alpha = exp(log_alpha), not on log_alpha;
- the twin critics are one batched module (same math, one matmul per layer).
`--save-dataset` writes the replay buffer or fresh policy episodes as a Minari dataset for cql.py.
Docs: docs/sac_continuous.md
"""

import dataclasses
import glob
import math
import os
import pickle
import random
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from tqdm import tqdm

SCRIPT = "sac_continuous.py"
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
torch.distributions.Distribution.set_default_validate_args(False)  # argument checks cost host syncs every update


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """if toggled, sets `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """use CUDA when it is available"""
    threads: int = 1
    """torch CPU threads (0: torch's default, one per core); two threads collapse when other runs share the cores"""
    track: bool = False
    """track the run with Weights & Biases"""
    wandb_project_name: str = "cleanrl"
    """the W&B project name"""
    wandb_entity: Optional[str] = None
    """the W&B entity (team)"""
    capture_video: bool = False
    """record videos of the first env into runs/{run_name}/videos (and W&B with --track)"""
    save_model: bool = False
    """save a checkpoint to runs/{run_name}/{exp_name}.pt at the end (and when stopped by a signal)"""
    checkpoint_every: int = 0
    """also save that checkpoint every this many env steps (0: never)"""
    save_buffer: bool = True
    """include the replay buffer in checkpoints, so that --resume continues exactly (--no-save-buffer for huge ones)"""
    resume: Optional[str] = None
    """continue the run saved in this checkpoint (give the same flags as the original command)"""
    eval_checkpoint: Optional[str] = None
    """evaluate this checkpoint instead of training"""

    env_id: str = "Pendulum-v1"
    """the id of the environment (any Box-action env)"""
    total_timesteps: int = 1_000_000
    """total environment steps, summed over all envs"""
    num_envs: int = 1
    """parallel envs; each vector step adds num_envs transitions and makes one gradient step"""
    buffer_size: int = 1_000_000
    """the replay memory size, in transitions"""
    gamma: float = 0.99
    """the discount factor"""
    tau: float = 0.005
    """target smoothing coefficient (Polyak averaging)"""
    batch_size: int = 256
    """the batch size of sampled transitions (drawn with replacement, also before the buffer holds a batch)"""
    learning_starts: int = 5_000
    """env steps of uniform random actions before learning starts"""
    policy_lr: float = 3e-4
    """the learning rate of the actor"""
    q_lr: float = 1e-3
    """the learning rate of the critics and of the temperature"""
    policy_frequency: int = 2
    """the actor (and alpha) take this many steps every this many critic steps (delayed, as in CleanRL)"""
    target_network_frequency: int = 1
    """the frequency of target network updates, in critic updates"""
    hidden_dim: int = 256
    """width of the two hidden layers of every network"""
    compile: bool = False
    """torch.compile the critic and actor update steps (for CUDA; on CPU it measured slower than eager)"""
    cudagraphs: bool = False
    """with --compile on CUDA, also capture the update steps as CUDA graphs (mode "reduce-overhead")"""
    autotune: bool = True
    """tune the temperature alpha towards a target entropy of -|A| (--no-autotune: alpha stays at --alpha)"""
    alpha_init: float = 1.0
    """the temperature alpha at the start, with --autotune (1, as in CleanRL and SB3)"""
    alpha: float = 0.2
    """the fixed temperature with --no-autotune"""
    eval_episodes: int = 10
    """episodes of the final deterministic evaluation"""
    save_dataset: Optional[str] = None
    """at the end, write a Minari dataset with this id (e.g. pendulum/sac-replay-v0) for cql.py"""
    dataset_kind: Literal["replay", "policy"] = "replay"
    """replay: the whole replay buffer, episode by episode; policy: fresh episodes of the final stochastic policy"""
    dataset_episodes: int = 100
    """number of episodes written with --dataset-kind policy"""


def make_env(env_id, idx, capture_video, run_name):
    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"runs/{run_name}/videos")
        else:
            env = gym.make(env_id)
        # per-env statistics: the vector version drops the first step of later episodes under SAME_STEP autoreset
        return gym.wrappers.RecordEpisodeStatistics(env)

    return thunk


def check_env(env_id):
    """Fail with one clear sentence if this script cannot handle env_id; return the env's spaces."""
    if env_id not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {env_id!r}; pick a registered Gymnasium env, e.g. Pendulum-v1")
    quiet_third_party(env_id)
    env = gym.make(env_id)
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(act_space, gym.spaces.Box):
        raise SystemExit(f"{SCRIPT} needs a Box action space; {env_id} has {act_space}: use sac_discrete.py")
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise SystemExit(f"{SCRIPT} squashes actions into finite bounds; {env_id} has {act_space}: bound them")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"{SCRIPT} needs a flat Box observation space; {env_id} has {obs_space}: flatten it")
    return obs_space, act_space


def validate(args):
    """Reject nonsensical hyperparameters before anything is written."""
    problems = [
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        (args.cudagraphs and not args.compile, "--cudagraphs works through torch.compile: add --compile"),
        (args.cudagraphs and not (args.cuda and torch.cuda.is_available()), "--cudagraphs needs a CUDA device"),
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.num_envs < 1, f"--num-envs must be >= 1 (got {args.num_envs})"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (args.buffer_size < args.batch_size, f"--buffer-size {args.buffer_size} is smaller than --batch-size"),
        (args.buffer_size < args.num_envs, f"--buffer-size {args.buffer_size} cannot hold one step of all envs"),
        (min(args.policy_frequency, args.target_network_frequency) < 1, "--policy-frequency etc. must be >= 1"),
        (not 0.0 < args.tau <= 1.0, f"--tau must be in (0, 1] (got {args.tau})"),
        (not 0.0 < args.gamma <= 1.0, f"--gamma must be in (0, 1] (got {args.gamma})"),
        (args.alpha < 0 or args.alpha_init <= 0, "--alpha must be >= 0 and --alpha-init > 0"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
        (args.dataset_kind == "policy" and args.dataset_episodes < 1, "--dataset-episodes must be >= 1"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")
    if args.save_dataset:
        try:
            import minari
        except ImportError:
            raise SystemExit(
                f"{SCRIPT}: --save-dataset needs minari and h5py: pip install 'minari>=0.5' h5py"
            ) from None
        try:
            minari.dataset.minari_dataset.parse_dataset_id(args.save_dataset)
        except ValueError:
            raise SystemExit(
                f"{SCRIPT}: --save-dataset {args.save_dataset!r} is not of the form namespace/name-v0"
            ) from None
        if args.save_dataset in minari.list_local_datasets():
            raise SystemExit(f"{SCRIPT}: a local Minari dataset {args.save_dataset!r} exists: pick another id")


class Actor(nn.Module):
    """Gaussian policy squashed by tanh, then scaled affinely into the action bounds [low, high]."""

    def __init__(self, obs_dim, act_space, hidden_dim):
        super().__init__()
        act_dim = int(np.prod(act_space.shape))
        self.net = nn.Sequential(
            nn.Linear(obs_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU()
        )
        self.fc_mean = nn.Linear(hidden_dim, act_dim)
        self.fc_logstd = nn.Linear(hidden_dim, act_dim)
        low, high = (torch.as_tensor(b, dtype=torch.float32) for b in (act_space.low, act_space.high))
        self.register_buffer("action_scale", (high - low) / 2.0)
        self.register_buffer("action_bias", (high + low) / 2.0)

    def forward(self, obs):
        h = self.net(obs)
        log_std = torch.tanh(self.fc_logstd(h))  # soft clamp into [LOG_STD_MIN, LOG_STD_MAX], as in CleanRL
        return self.fc_mean(h), LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)

    def get_action(self, obs):
        """A reparameterised sample and its log-density under the squashed and scaled distribution."""
        mean, log_std = self(obs)
        normal = torch.distributions.Normal(mean, log_std.exp())
        u = normal.rsample()  # gradients flow into mean and std
        return torch.tanh(u) * self.action_scale + self.action_bias, squashed_log_prob(
            normal.log_prob(u), u, self.action_scale
        )

    def act(self, obs):
        """The deterministic action tanh(mean); it draws no random numbers."""
        return torch.tanh(self(obs)[0]) * self.action_scale + self.action_bias


def squashed_log_prob(gaussian_log_prob, u, action_scale):
    """log pi(a) for a = scale * tanh(u) + bias (1801.01290 Eq. 21, with the scale): subtract log|da/du| per dim.
    log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)) is the overflow-free form of the same quantity."""
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u)) + torch.log(action_scale)
    return (gaussian_log_prob - log_det).sum(-1)


class EnsembleLinear(nn.Module):
    """`n` independent linear layers applied in one batched matmul: input [n, B, in] -> output [n, B, out]."""

    def __init__(self, n, in_features, out_features):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default initialisation range, for each member
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_features).uniform_(-bound, bound))

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQ(nn.Module):
    """Both critics Q1, Q2 of SAC in one module: forward returns a [2, B] tensor of Q-values."""

    def __init__(self, obs_dim, act_dim, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(
            EnsembleLinear(2, obs_dim + act_dim, hidden_dim),
            nn.ReLU(),
            EnsembleLinear(2, hidden_dim, hidden_dim),
            nn.ReLU(),
            EnsembleLinear(2, hidden_dim, 1),
        )

    def forward(self, obs, action):
        x = torch.cat([obs, action], dim=-1)
        return self.net(x.unsqueeze(0).expand(2, *x.shape)).squeeze(-1)


class ReplayBuffer:
    """Preallocated ring buffer of real transitions (s, a, r, s', terminated, truncated).

    s' is always the true successor of s in the same episode (the final observation when the episode ended), so a
    stored transition never spans two episodes. Rows are added num_envs at a time, env 0 first.
    """

    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminations", "truncations")

    def __init__(self, size, obs_dim, act_dim, device):
        self.size, self.pos, self.full, self.added = size, 0, False, 0  # added: rows ever added, for env order
        shapes = ((obs_dim,), (obs_dim,), (act_dim,), (), (), ())
        for name, shape in zip(self.FIELDS, shapes):
            setattr(self, name, torch.zeros((size, *shape), device=device))

    def __len__(self):
        return self.size if self.full else self.pos

    def add(self, *rows):
        idx = torch.arange(self.pos, self.pos + len(rows[0])) % self.size
        for name, value in zip(self.FIELDS, rows):
            getattr(self, name)[idx] = torch.as_tensor(value, dtype=torch.float32).to(self.obs.device)
        self.full = self.full or self.pos + len(rows[0]) >= self.size
        self.added += len(rows[0])
        self.pos = (self.pos + len(rows[0])) % self.size

    def sample(self, batch_size):
        idx = torch.randint(0, len(self), (batch_size,), device=self.obs.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminations[idx]

    def state_dict(self):
        n = len(self)
        return {
            "pos": self.pos,
            "full": self.full,
            "added": self.added,
            **{k: getattr(self, k)[:n] for k in self.FIELDS},
        }

    def load_state_dict(self, state):
        self.pos, self.full, self.added = state["pos"], state["full"], state["added"]
        for k in self.FIELDS:
            getattr(self, k)[: len(state[k])] = state[k]


def critic_loss(qf, qf_target, actor, alpha, batch, gamma):
    """Sum of the two critics' MSE to the soft TD target (1801.01290 Eq. 5-6 with the min of two target critics)."""
    obs, actions, rewards, next_obs, terminations = batch
    with torch.no_grad():
        next_actions, next_log_prob = actor.get_action(next_obs)
        next_v = qf_target(next_obs, next_actions).min(dim=0).values - alpha * next_log_prob
        # only termination stops bootstrapping; a time-limit truncation keeps the value of the real final obs
        target = rewards + gamma * (1.0 - terminations) * next_v
    return ((qf(obs, actions) - target) ** 2).mean(dim=1).sum()


def actor_loss(actor, qf, alpha, obs):
    """E[alpha log pi(a|s) - min_i Q_i(s, a)], a ~ pi reparameterised (1801.01290 Eq. 7-9); also returns log pi.
    The caller freezes the critics' parameters: the gradient reaches the actor through a only."""
    actions, log_prob = actor.get_action(obs)
    return (alpha * log_prob - qf(obs, actions).min(dim=0).values).mean(), log_prob


def alpha_loss(log_alpha, log_prob, target_entropy):
    """1812.05905 Eq. 18: alpha grows when the entropy -log pi falls below the target, shrinks when above."""
    return (-log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


def critic_step(qf, qf_target, actor, alpha, batch, gamma, q_optimizer):
    """One gradient step of the critics; returns the loss as a tensor (no host sync)."""
    qf_loss = critic_loss(qf, qf_target, actor, alpha, batch, gamma)
    q_optimizer.zero_grad(set_to_none=True)
    qf_loss.backward()
    q_optimizer.step()
    return qf_loss.detach()


def actor_step(actor, qf, log_alpha, alpha, obs, target_entropy, optimizers):
    """One gradient step of the actor, then of the temperature when it is tuned (optimizers[1] is not None).
    Returns the two losses and the new alpha, as tensors."""
    actor_optimizer, a_optimizer = optimizers
    pi_loss, log_prob = actor_loss(actor, qf, alpha, obs)
    actor_optimizer.zero_grad(set_to_none=True)
    pi_loss.backward()
    actor_optimizer.step()
    if a_optimizer is None:
        return pi_loss.detach(), None, alpha
    a_loss = alpha_loss(log_alpha, log_prob, target_entropy)
    a_optimizer.zero_grad(set_to_none=True)
    a_loss.backward()
    a_optimizer.step()
    return pi_loss.detach(), a_loss.detach(), log_alpha.detach().exp()


def evaluate(actor, env_id, episodes, seed, device):
    """Deterministic policy (tanh of the mean) on an env of its own; returns the list of episodic returns."""
    env = gym.make(env_id)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                action = actor.act(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action.cpu().numpy())
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def save_minari_dataset(args, rb, actor, device):
    """Write the replay buffer (per env, split at episode ends) or fresh policy episodes as a Minari dataset."""
    import minari
    from minari.data_collector import EpisodeBuffer

    episodes = []
    if args.dataset_kind == "replay":
        n = len(rb)
        order = (torch.arange(n) + (rb.pos if rb.full else 0)) % rb.size  # storage rows, oldest first
        env_of = (torch.arange(n) + rb.added - n) % args.num_envs  # the rows of one vector step are consecutive
        for env_idx in range(args.num_envs):
            rows = order[env_of == env_idx]
            ends = np.flatnonzero((rb.terminations[rows] + rb.truncations[rows]).cpu().numpy() > 0)
            for s, e in zip([0, *(ends + 1)], [*(ends + 1), len(rows)]):
                if e > s:  # an unfinished last episode is written as truncated (it was cut, not terminated)
                    arrays = {k: getattr(rb, k)[rows[s:e]].cpu().numpy() for k in ReplayBuffer.FIELDS}
                    arrays["truncations"][-1] = arrays["terminations"][-1] == 0
                    episodes.append(arrays)
    else:
        env = gym.make(args.env_id)
        for ep in range(args.dataset_episodes):
            obs, _ = env.reset(seed=args.seed + 100_000 + ep)
            arrays, done = {k: [] for k in ReplayBuffer.FIELDS}, False
            while not done:
                with torch.no_grad():
                    action = actor.get_action(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0]
                step = (obs, *env.step(action[0].cpu().numpy())[:4])
                for k, v in zip(("obs", "next_obs", "rewards", "terminations", "truncations"), step):
                    arrays[k].append(v)
                arrays["actions"].append(action[0].cpu().numpy())
                obs, done = step[1], step[3] or step[4]
            episodes.append({k: np.array(v) for k, v in arrays.items()})
        env.close()
    buffers = [  # each episode has one more observation than actions: the final next_obs closes it
        EpisodeBuffer(
            id=i,
            observations=np.concatenate([e["obs"], e["next_obs"][-1:]]),
            actions=e["actions"],
            rewards=e["rewards"].astype(np.float64),
            terminations=e["terminations"] > 0,
            truncations=e["truncations"] > 0,
        )
        for i, e in enumerate(episodes)
    ]
    # D4RL-style reference scores, so that cql.py prints a normalized score: uniform random actions score 0, the
    # final deterministic policy 100 (10 episodes each, on seeds of their own)
    env = gym.make(args.env_id)
    env.action_space.seed(args.seed)
    uniform = SimpleNamespace(act=lambda obs: torch.as_tensor(env.action_space.sample())[None])
    scores = [np.mean(evaluate(policy, args.env_id, 10, args.seed + 200_000, device)) for policy in (uniform, actor)]
    with warnings.catch_warnings():  # Minari asks for an author, e-mail and code link that a local dataset lacks
        warnings.filterwarnings("ignore", r"`\w+` is set to None", UserWarning, "minari")
        minari.create_dataset_from_buffers(dataset_id=args.save_dataset, buffer=buffers, env=env, eval_env=args.env_id,
                                           algorithm_name=SCRIPT, description=f"{SCRIPT} {args.dataset_kind} data",
                                           ref_min_score=float(scores[0]), ref_max_score=float(scores[1]))  # fmt: skip
    env.close()
    print(f"minari dataset {args.save_dataset} written: {len(buffers)} episodes, {rb.added} steps collected")


# ---- The same in every script of this repository: CLI, output, signals, checkpoints, W&B. ----
RESUMABLE = {"resume", "total_timesteps", "track", "wandb_project_name", "wandb_entity", "save_model", "cuda"}
RESUMABLE |= {"checkpoint_every", "save_buffer", "eval_episodes", "eval_checkpoint"}


def parse_args(argv=None):
    """tyro's CLI, also accepting `--flag=True` / `--flag=False` for booleans: the form `wandb agent` passes."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(Args) if f.type is bool}
    for i, arg in enumerate(argv):
        flag, _, value = arg.partition("=")
        flag = flag.replace("_", "-")  # tyro takes --save_model as well as --save-model
        if flag in flags and value.lower() in ("true", "false"):
            argv[i] = flag if value.lower() == "true" else "--no-" + flag[2:]
    return tyro.cli(Args, args=argv)


def quiet_third_party(env_id):
    """Drop messages that tell the user nothing, each matched by its source and text (never a blanket filter)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # video frames need no display: no XDG_RUNTIME_DIR error
    if "mujoco" in str(gym.spec(env_id).entry_point):
        import mujoco  # the bundled MuJoCo models still use an attribute that MuJoCo 3.3 deprecates

        mujoco.set_mju_user_warning(lambda msg: "settotalmass" in msg or print(f"MuJoCo: {msg}", file=sys.stderr))


class Progress:
    """A live bar on a terminal, else a plain line every 5 s; the ETA comes from the speed of the last minute.
    Episode lines go to a log in full (the benchmark parses them); a terminal gets at most one every 2 s."""

    def __init__(self, total, step):
        self.total, self.marks, self.last_return, self.printed = total, [(time.time(), step)], None, 0.0
        self.bar = tqdm(total=total, initial=step, unit="step") if sys.stdout.isatty() else None

    def episode(self, step, ret, length):
        self.last_return, line = ret, f"global_step={step}, episodic_return={ret:.2f}, episodic_length={length}"
        if self.bar is None:
            print(line)
        elif time.time() - self.printed > 2:
            self.printed = time.time()
            self.bar.write(line)

    def update(self, step, **extra):
        now, ret = time.time(), "-" if self.last_return is None else f"{self.last_return:.1f}"
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(f"return {ret}", refresh=False)
        elif now - self.marks[-1][0] >= 5:
            self.marks = [m for m in self.marks if now - m[0] < 60] + [(now, step)]
            sps = (step - self.marks[0][1]) / (now - self.marks[0][0])
            eta = time.strftime("%H:%M:%S", time.gmtime((self.total - step) / max(sps, 1e-9)))
            more = "".join(f" | {k} {v:.3g}" for k, v in extra.items())
            print(f"progress: step {step}/{self.total} ({100 * step // self.total}%) | SPS {sps:.0f}", end="")
            print(f" | last return {ret}{more} | ETA {eta}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


class StopSignal:
    """SIGINT (Ctrl-C) and SIGTERM (a cluster's pre-emption) only set a flag; the loop stops at a step boundary."""

    def __init__(self):
        self.signum, self.previous = None, {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def handle(self, signum, frame):
        self.signum = signum

    def release(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def print_header(env_id, device, run_name, total_steps, **hyperparameters):
    more = "".join(f", {k} {v}" for k, v in hyperparameters.items())
    print(f"{SCRIPT}: {env_id} on {device}, run {run_name}, {total_steps} steps{more}", flush=True)


def check_finite(metrics, step):
    """Stop the run with the step number and the loss that went bad."""
    for name, value in metrics.items():
        if not math.isfinite(value):
            raise FloatingPointError(f"{name} became {value} at global_step={step}")


def rng_state(envs):
    """Every random number generator the run draws from: Python, NumPy, torch (CPU and CUDA), the action space."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    state["cuda"] = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    state["action_space"] = envs.action_space.np_random.bit_generator.state if envs is not None else None
    return state


def env_state(envs):
    """The sub-envs themselves, pickled, where that captures their state (classic control); else None. Envs that
    pickle only their constructor arguments (MuJoCo, Box2D), or run in subprocesses, restart their episodes."""
    sub_envs = getattr(envs, "envs", [])
    if not sub_envs or any(isinstance(e.unwrapped, gym.utils.EzPickle) or e.render_mode for e in sub_envs):
        return None
    try:
        return pickle.dumps(sub_envs)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


def restore_run(ckpt, envs, seed):
    """Put back the RNG states and the envs; returns the observation to continue from."""
    random.setstate(ckpt["rng"]["python"])
    np.random.set_state(ckpt["rng"]["numpy"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if ckpt["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    if envs is None:  # an offline run has no training envs
        return None
    envs.action_space.np_random.bit_generator.state = ckpt["rng"]["action_space"]
    if ckpt["envs"] is not None:
        envs.envs = pickle.loads(ckpt["envs"])
        return ckpt["obs"]
    print(f"{SCRIPT}: this env's state cannot be saved: the episodes in progress restart", file=sys.stderr)
    return envs.reset(seed=seed + ckpt["counters"]["global_step"])[0]


def load_checkpoint(path):
    """A checkpoint written by this script, or one sentence saying why the file is not one."""
    if not os.path.isfile(path):
        raise SystemExit(f"{SCRIPT}: checkpoint {path!r} not found: pass a file written by --save-model")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated file, or not a torch file at all
        raise SystemExit(f"{SCRIPT}: {path} cannot be read as a checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("script") != SCRIPT:
        raise SystemExit(f"{SCRIPT}: {path} is not a checkpoint of {SCRIPT}: use the script that wrote it")
    return ckpt


def load_resume(args):
    """The checkpoint to continue from, after checking that it belongs to this script and these flags."""
    ckpt = load_checkpoint(args.resume)
    changed = [k for k, v in vars(args).items() if k not in RESUMABLE and ckpt["args"].get(k) != v]
    if changed:
        was = ", ".join(f"--{k.replace('_', '-')} {ckpt['args'].get(k)} (now {getattr(args, k)})" for k in changed)
        raise SystemExit(f"{SCRIPT}: {args.resume} was trained with {was}: resume with the original flags")
    return ckpt


def save_checkpoint(path, state):
    """Write the checkpoint atomically (a temp file, then a rename): a kill never leaves half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def init_wandb(args, run_name, run_id):
    import wandb

    wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args), name=run_name,
               id=run_id, resume="allow", save_code=True)  # fmt: skip
    return wandb


def finish_wandb(wandb, run_name, step, exit_code=0):
    if wandb is not None:
        for video in sorted(glob.glob(f"runs/{run_name}/videos/*.mp4")):  # none without --capture-video
            wandb.log({"videos": wandb.Video(video)}, step=step)
        wandb.finish(exit_code=exit_code)


def report_eval(returns, wandb, step, extra=""):
    mean, std = np.mean(returns), np.std(returns)
    print(f"eval/episodic_return={mean:.2f} (std {std:.2f} over {len(returns)} episodes){extra}")
    if wandb is not None:
        wandb.log({"eval/episodic_return": float(np.mean(returns))}, step=step)


def run_evaluation_only(args, device):
    ckpt = load_checkpoint(args.eval_checkpoint)
    saved = ckpt["args"]
    obs_space, act_space = check_env(saved["env_id"])
    actor = Actor(obs_space.shape[0], act_space, saved["hidden_dim"]).to(device)
    actor.load_state_dict(ckpt["actor"])
    report_eval(evaluate(actor, saved["env_id"], args.eval_episodes, args.seed, device), None, 0)


def main(args):
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    if args.eval_checkpoint:
        return run_evaluation_only(args, device)
    validate(args)
    obs_space, act_space = check_env(args.env_id)
    ckpt = load_resume(args) if args.resume else None
    run_name = ckpt["run_name"] if ckpt else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.threads or torch.get_num_threads())

    # SAME_STEP autoreset: when an env ends, its real last observation is in infos["final_obs"] and the returned obs
    # is already the next episode's first, so every step yields one real transition per env.
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, i, args.capture_video, run_name) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    obs_dim, act_dim = obs_space.shape[0], int(np.prod(act_space.shape))
    actor = Actor(obs_dim, act_space, args.hidden_dim).to(device)
    qf = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device)
    qf_target = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device).requires_grad_(False)
    qf_target.load_state_dict(qf.state_dict())
    alpha0 = args.alpha_init if args.autotune else args.alpha
    log_alpha = torch.tensor(alpha0, device=device).log().requires_grad_(args.autotune)
    target_entropy = -float(act_dim)  # 1812.05905 section 5: the heuristic target entropy -dim(A)
    parts = {  # everything with a state_dict that a checkpoint keeps; fused Adam: one kernel for all parameters
        "actor": actor, "qf": qf, "qf_target": qf_target,
        "q_optimizer": torch.optim.Adam(qf.parameters(), lr=args.q_lr, fused=True),
        "actor_optimizer": torch.optim.Adam(actor.parameters(), lr=args.policy_lr, fused=True),
        "a_optimizer": torch.optim.Adam([log_alpha], lr=args.q_lr, fused=True),
        "rb": ReplayBuffer(args.buffer_size, obs_dim, act_dim, device),
    }  # fmt: skip
    rb, q_optimizer = parts["rb"], parts["q_optimizer"]
    optimizers = parts["actor_optimizer"], parts["a_optimizer"] if args.autotune else None
    critic_update, actor_update = critic_step, actor_step
    if args.compile:  # the two update steps through torch.compile; "reduce-overhead" also captures CUDA graphs
        mode = "reduce-overhead" if args.cudagraphs else None
        critic_update, actor_update = torch.compile(critic_step, mode=mode), torch.compile(actor_step, mode=mode)
    counters = {"global_step": 0, "updates": 0, "wandb_id": None}
    obs, _ = envs.reset(seed=args.seed)
    envs.action_space.seed(args.seed)
    if ckpt:
        for k, part in parts.items():
            if k in ckpt:  # the buffer is missing from a --no-save-buffer checkpoint
                part.load_state_dict(ckpt[k])
        with torch.no_grad():
            log_alpha.copy_(ckpt["log_alpha"])
        counters = ckpt["counters"]
        obs = restore_run(ckpt, envs, args.seed)
    alpha = log_alpha.detach().exp()
    wandb = init_wandb(args, run_name, counters["wandb_id"]) if args.track else None
    counters["wandb_id"] = wandb.run.id if wandb else None
    path = f"runs/{run_name}/{args.exp_name}.pt"

    def checkpoint():
        skip = set() if args.save_buffer else {"rb"}
        state = {k: v.state_dict() for k, v in parts.items() if k not in skip}
        run = {"script": SCRIPT, "args": vars(args), "run_name": run_name, "counters": counters, "obs": obs}
        run.update(rng=rng_state(envs), envs=env_state(envs), log_alpha=log_alpha.detach().cpu())
        save_checkpoint(path, {**run, **state})

    lr = f"{args.policy_lr}/{args.q_lr}"
    print_header(args.env_id, device, run_name, args.total_timesteps, batch=args.batch_size, lr=lr, alpha=alpha0)
    start_step, start_time, stop = counters["global_step"], time.time(), StopSignal()
    progress = Progress(args.total_timesteps, start_step)
    try:
        while counters["global_step"] < args.total_timesteps and stop.signum is None:
            if counters["global_step"] < args.learning_starts:
                actions = envs.action_space.sample()
            else:
                with torch.no_grad():
                    actions = actor.get_action(torch.as_tensor(obs, dtype=torch.float32, device=device))[0]
                actions = actions.cpu().numpy()
            next_obs, rewards, terminations, truncations, infos = envs.step(actions)
            global_step = counters["global_step"] = counters["global_step"] + args.num_envs
            real_next_obs = next_obs.copy()
            for i in np.flatnonzero(infos.get("_final_obs", [])):
                real_next_obs[i] = infos["final_obs"][i]
            for i in np.flatnonzero(infos.get("final_info", {}).get("_episode", [])):
                ret, length = float(infos["final_info"]["episode"]["r"][i]), int(infos["final_info"]["episode"]["l"][i])
                progress.episode(global_step, ret, length)
                if wandb:
                    wandb.log({"charts/episodic_return": ret, "charts/episodic_length": length}, step=global_step)
            rb.add(obs, real_next_obs, actions, rewards, terminations, truncations)
            obs = next_obs

            if global_step > args.learning_starts:
                updates = counters["updates"] = counters["updates"] + 1
                batch = rb.sample(args.batch_size)
                qf_loss = critic_update(qf, qf_target, actor, alpha, batch, args.gamma, q_optimizer)
                if updates % args.policy_frequency == 0:
                    qf.requires_grad_(False)  # the actor step needs no weight gradients of the critics
                    for _ in range(args.policy_frequency):  # compensate for the delay, as in CleanRL / TD3
                        pi_loss, a_loss, alpha = actor_update(
                            actor, qf, log_alpha, alpha, batch[0], target_entropy, optimizers
                        )
                    qf.requires_grad_(True)
                if updates % args.target_network_frequency == 0:
                    with torch.no_grad():
                        torch._foreach_lerp_(list(qf_target.parameters()), list(qf.parameters()), args.tau)
                # the only host reads of the losses: at the first actor step of every 100 updates
                if updates % args.policy_frequency == 0 and updates % 100 < args.policy_frequency:
                    metrics = {
                        "losses/qf_loss": qf_loss.item(),
                        "losses/actor_loss": pi_loss.item(),
                        "losses/alpha": alpha.item(),
                    }
                    metrics.update({"losses/alpha_loss": a_loss.item()} if args.autotune else {})
                    check_finite(metrics, global_step)
                    if wandb:
                        sps = (global_step - start_step) / (time.time() - start_time)
                        wandb.log({**metrics, "charts/SPS": sps}, step=global_step)
            if args.checkpoint_every and global_step % args.checkpoint_every < args.num_envs:
                checkpoint()
            progress.update(global_step)
    except FloatingPointError as e:
        envs.close()
        finish_wandb(wandb, run_name, counters["global_step"], exit_code=1)
        raise SystemExit(f"{SCRIPT}: non-finite loss, stopping: {e}. Try a lower --q-lr or --policy-lr.") from None
    progress.close()
    stop.release()
    global_step = counters["global_step"]
    print(f"SPS={(global_step - start_step) / (time.time() - start_time):.1f} (updates: {counters['updates']})")
    if args.save_model or args.checkpoint_every:
        checkpoint()
        print(f"checkpoint saved to {path}")
    if stop.signum is not None:
        saved = f"resume with --resume {path}" if args.save_model or args.checkpoint_every else "no checkpoint saved"
        print(f"stopped by {signal.Signals(stop.signum).name} at global_step={global_step}: {saved}")
        envs.close()
        finish_wandb(wandb, run_name, global_step, exit_code=128 + stop.signum)
        sys.exit(128 + stop.signum)
    if args.save_dataset:
        save_minari_dataset(args, rb, actor, device)
    if args.eval_episodes > 0:
        report_eval(evaluate(actor, args.env_id, args.eval_episodes, args.seed + 10_000, device), wandb, global_step)
    envs.close()
    finish_wandb(wandb, run_name, global_step)


if __name__ == "__main__":
    main(parse_args())
