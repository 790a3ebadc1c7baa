# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0", "minari>=0.5,<0.6", "h5py>=3.8"]
# ///
"""Soft Actor-Critic (Haarnoja et al. 2018, arXiv 1801.01290 and 1812.05905) for Box action spaces: a tanh-squashed
Gaussian actor, twin critics whose minimum forms the target, Polyak-averaged target critics and a temperature alpha
tuned towards a target entropy of -|A|. Deviations, all CleanRL's: delayed actor steps (--policy-frequency), the
alpha loss on alpha rather than log(alpha), both critics in one batched module. Docs: docs/sac_continuous.md"""

import contextlib
import dataclasses
import glob
import hashlib
import math
import os
import pickle
import random
import signal
import sys
import tempfile
import time
import warnings
from types import SimpleNamespace
from typing import Literal, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from tqdm import tqdm

SCRIPT = "sac_continuous.py"
NAN_HINT = "Try a lower --q-lr or --policy-lr."
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
torch.distributions.Distribution.set_default_validate_args(False)  # argument checks cost host syncs every update


@dataclasses.dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]  # the name of this experiment
    seed: int = 1  # seed of the experiment
    torch_deterministic: bool = True  # if toggled, sets `torch.backends.cudnn.deterministic=True`
    cuda: bool = True  # use CUDA when it is available
    threads: int = 1  # torch CPU threads (0: one per core; two or more collapse when runs share the cores)
    track: bool = False  # track the run with Weights & Biases
    wandb_project_name: str = "cleanrl"  # the W&B project name
    wandb_entity: Optional[str] = None  # the W&B entity (team)
    capture_video: bool = False  # record videos of the first env into runs/{run_name}/videos (and W&B with --track)
    save_model: bool = False  # save runs/{run_name}/{exp_name}.pt at the end (and when stopped by a signal)
    checkpoint_every: int = 0  # also save that checkpoint every this many env steps (0: never)
    save_buffer: bool = True  # checkpoints hold the replay buffer, so --resume is exact (--no-save-buffer: huge ones)
    resume: Optional[str] = None  # continue this checkpoint (same flags); `auto`: runs/{run_name}/{exp_name}.pt if any
    # the run's folder under runs/ (default ENV__EXP_NAME__SEED__TIME; with --resume auto, a hash of the set-up flags
    # instead of the time, so that each setting finds its own checkpoint)
    run_name: Optional[str] = None
    eval_checkpoint: Optional[str] = None  # evaluate this checkpoint instead of training

    env_id: str = "Pendulum-v1"  # the id of the environment (any Box-action env)
    total_timesteps: int = 1_000_000  # total environment steps, summed over all envs
    num_envs: int = 1  # parallel envs; each vector step adds num_envs transitions and makes one gradient step
    buffer_size: int = 1_000_000  # the replay memory size, in transitions
    gamma: float = 0.99  # the discount factor
    tau: float = 0.005  # target smoothing coefficient (Polyak averaging)
    batch_size: int = 256  # transitions per gradient step (drawn with replacement, also from a buffer holding fewer)
    learning_starts: int = 5_000  # env steps of uniform random actions before learning starts
    policy_lr: float = 3e-4  # the learning rate of the actor
    q_lr: float = 1e-3  # the learning rate of the critics and of the temperature
    policy_frequency: int = 2  # every this many critic steps, this many actor (and alpha) steps, as CleanRL
    target_network_frequency: int = 1  # the frequency of target network updates, in critic updates
    hidden_dim: int = 256  # width of the two hidden layers of every network
    compile: bool = False  # torch.compile the critic and actor steps (for CUDA; on CPU it measured slower than eager)
    cudagraphs: bool = False  # with --compile on CUDA, also capture the steps as CUDA graphs (mode reduce-overhead)
    autotune: bool = True  # tune alpha towards a target entropy of -|A| (--no-autotune: alpha stays at --alpha)
    alpha_init: float = 1.0  # the temperature alpha at the start, with --autotune (1, as in CleanRL and SB3)
    alpha: float = 0.2  # the fixed temperature with --no-autotune
    eval_episodes: int = 10  # episodes of the final deterministic evaluation
    save_dataset: Optional[str] = None  # at the end, write a Minari dataset with this id (e.g. pendulum/sac-replay-v0)
    dataset_kind: Literal["replay", "policy"] = "replay"  # the replay buffer, or new episodes of the final policy
    dataset_episodes: int = 100  # number of episodes written with --dataset-kind policy


def make_env(env_id, idx, capture_video, run_name):
    def thunk():
        if capture_video and idx == 0:
            env = gym.wrappers.RecordVideo(gym.make(env_id, render_mode="rgb_array"), f"runs/{run_name}/videos")
        else:
            env = gym.make(env_id)
        # per-env statistics: the vector version drops the first step of later episodes under SAME_STEP autoreset
        return gym.wrappers.RecordEpisodeStatistics(env)

    return thunk


class Actor(nn.Module):
    """Gaussian policy squashed by tanh, then scaled affinely into the action bounds [low, high]."""

    def __init__(self, obs_dim, act_space, hidden_dim):
        super().__init__()
        act_dim = int(np.prod(act_space.shape))
        layers = [nn.Linear(obs_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.net = nn.Sequential(*layers)
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
        action = torch.tanh(u) * self.action_scale + self.action_bias
        return action, squashed_log_prob(normal.log_prob(u), u, self.action_scale)

    def act(self, obs):
        """The deterministic action tanh(mean); it draws no random numbers."""
        return torch.tanh(self(obs)[0]) * self.action_scale + self.action_bias


def squashed_log_prob(gaussian_log_prob, u, action_scale):
    """log pi(a) for a = scale * tanh(u) + bias (1801.01290 Eq. 21, with the scale): subtract log|da/du| per dim.
    log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)) is the overflow-free form of the same quantity."""
    log_det = 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u)) + torch.log(action_scale)
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
        hidden = [EnsembleLinear(2, obs_dim + act_dim, hidden_dim), nn.ReLU()]
        self.net = nn.Sequential(
            *hidden, EnsembleLinear(2, hidden_dim, hidden_dim), nn.ReLU(), EnsembleLinear(2, hidden_dim, 1)
        )

    def forward(self, obs, action):
        x = torch.cat([obs, action], dim=-1)
        return self.net(x.unsqueeze(0).expand(2, *x.shape)).squeeze(-1)


class ReplayBuffer:
    """Preallocated ring buffer of real transitions (s, a, r, s', terminated, truncated): s' is the final observation
    when the episode ended, never the next episode's first. Rows are added num_envs at a time, env 0 first."""

    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminations", "truncations")

    def __init__(self, size, obs_dim, act_dim, device):
        self.size, self.pos, self.full, self.added = size, 0, False, 0  # added: rows ever added, for env order
        for name, shape in zip(self.FIELDS, ((obs_dim,), (obs_dim,), (act_dim,), (), (), ())):
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
        # the filled rows, without a copy on the CPU: torch.save writes a tensor's whole storage, and a numpy view's
        # storage is just its rows (a slice would write the empty rows too; a copy doubled the memory while saving)
        rows = {k: torch.from_numpy(getattr(self, k)[: len(self)].cpu().numpy()) for k in self.FIELDS}
        return {"pos": self.pos, "full": self.full, "added": self.added, **rows}

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


def gradient_step(optimizer, loss):
    """Backpropagate `loss`, step `optimizer`; returns the loss, detached, as a tensor (no host sync)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def critic_step(qf, qf_target, actor, alpha, batch, gamma, q_optimizer):
    """One gradient step of the critics; returns the loss."""
    return gradient_step(q_optimizer, critic_loss(qf, qf_target, actor, alpha, batch, gamma))


def actor_step(actor, qf, log_alpha, alpha, obs, target_entropy, actor_optimizer, a_optimizer):
    """One actor step, then one of log(alpha) when it is tuned (a_optimizer not None); returns both losses (or None)."""
    pi_loss, log_prob = actor_loss(actor, qf, alpha, obs)
    pi_loss = gradient_step(actor_optimizer, pi_loss)
    if a_optimizer is None:
        return pi_loss, None
    return pi_loss, gradient_step(a_optimizer, alpha_loss(log_alpha, log_prob, target_entropy))


def update(batch, actor, qf, qf_target, log_alpha, alpha, optimizers, steps, args, updates):
    """Gradient step number `updates`: critics, delayed actor (and alpha) steps, Polyak; `steps`: (compiled) steps."""
    (critic_update, actor_update), (q_optimizer, actor_optimizer, a_optimizer) = steps, optimizers
    target_entropy = -float(actor.action_scale.numel())  # 1812.05905 section 5: the heuristic -dim(A)
    # every compiled output is cloned at once: a CUDA graph overwrites its outputs when it runs again
    qf_loss = critic_update(qf, qf_target, actor, alpha, batch, args.gamma, q_optimizer).clone()
    pi_loss = a_loss = None
    if updates % args.policy_frequency == 0:
        qf.requires_grad_(False)  # the actor step needs no weight gradients of the critics
        for _ in range(args.policy_frequency):  # compensate for the delay, as in CleanRL / TD3
            losses = actor_update(actor, qf, log_alpha, alpha, batch[0], target_entropy, actor_optimizer, a_optimizer)
            pi_loss, a_loss = (loss if loss is None else loss.clone() for loss in losses)
            if a_optimizer is not None:  # alpha is an input of both steps, written here, outside them
                alpha.copy_(log_alpha.detach().exp())
        qf.requires_grad_(True)
    if updates % args.target_network_frequency == 0:
        with torch.no_grad():
            for target, online in zip(qf_target.parameters(), qf.parameters()):
                target.lerp_(online, args.tau)  # Polyak: target += tau * (online - target)
    return qf_loss, pi_loss, a_loss


def main(args):
    if args.eval_checkpoint:
        return run_evaluation_only(args)
    obs_space, act_space = check_env(args.env_id)
    validate(args, obs_space, act_space)
    run = Run(args, args.env_id)
    device = run.device
    if args.compile and device.type == "cpu":
        print(f"{SCRIPT}: note: --compile on CPU measured slower than eager here; it is meant for CUDA")
    # SAME_STEP autoreset: an ended env's real last observation is in infos["final_obs"], its obs starts the next one
    env_fns = [make_env(args.env_id, i, args.capture_video, run.name) for i in range(args.num_envs)]
    envs = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs_dim, act_dim = obs_space.shape[0], int(np.prod(act_space.shape))
    actor = Actor(obs_dim, act_space, args.hidden_dim).to(device)
    qf = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device)
    qf_target = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device).requires_grad_(False)
    qf_target.load_state_dict(qf.state_dict())
    alpha0 = args.alpha_init if args.autotune else args.alpha
    log_alpha = torch.tensor(alpha0, device=device).log().requires_grad_(args.autotune)
    q_optimizer = torch.optim.Adam(qf.parameters(), lr=args.q_lr, fused=True)  # fused: one kernel for all parameters
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.policy_lr, fused=True)
    a_optimizer = torch.optim.Adam([log_alpha], lr=args.q_lr, fused=True)
    optimizers = q_optimizer, actor_optimizer, a_optimizer if args.autotune else None
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)
    steps = critic_step, actor_step
    if args.compile:  # the two step functions, not the loop logic around them; "reduce-overhead": CUDA graphs too
        steps = tuple(torch.compile(step, mode="reduce-overhead" if args.cudagraphs else None) for step in steps)
    saved = dict(actor=actor, qf=qf, qf_target=qf_target, q_optimizer=q_optimizer, actor_optimizer=actor_optimizer)
    saved.update(a_optimizer=a_optimizer, rb=rb, log_alpha=log_alpha)
    lr = f"{args.policy_lr}/{args.q_lr}"
    obs = run.start(envs, saved, lambda: {"obs": obs, "alpha": alpha.cpu()}, batch=args.batch_size, lr=lr, alpha=alpha0)
    alpha = log_alpha.detach().exp()  # the temperature the losses read, rewritten in place after each alpha step

    while run.going():
        if run.step < args.learning_starts:
            actions = envs.action_space.sample()
        else:
            with torch.no_grad():
                actions = actor.get_action(torch.as_tensor(obs, dtype=torch.float32, device=device))[0].cpu().numpy()
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        run.step += args.num_envs
        real_next_obs = next_obs.copy()  # an ended env's next_obs is the next episode's first: use final_obs
        for i in np.flatnonzero(infos.get("_final_obs", [])):
            real_next_obs[i] = infos["final_obs"][i]
        run.episodes(run.step, infos)
        rb.add(obs, real_next_obs, actions, rewards, terminations, truncations)
        obs = next_obs

        if rb.added > args.learning_starts:  # a resume without the buffer refills it first
            run.updates += 1
            qf_loss, pi_loss, a_loss = update(
                rb.sample(args.batch_size), actor, qf, qf_target, log_alpha, alpha, optimizers, steps, args, run.updates
            )
            # the only host reads of the losses: at the first actor step of every 100 updates
            if run.updates % args.policy_frequency == 0 and run.updates % 100 < args.policy_frequency:
                metrics = {"losses/qf_loss": qf_loss, "losses/actor_loss": pi_loss, "losses/alpha": alpha}
                metrics.update({"losses/alpha_loss": a_loss} if args.autotune else {})
                run.log({name: value.item() for name, value in metrics.items()})

    def wrap_up():
        save_minari_dataset(args, rb, actor, device) if args.save_dataset else None
        return evaluate(actor, args.env_id, args.eval_episodes, args.seed + 10_000, device)

    run.finish(wrap_up)


def check_env(env_id):
    """Fail with one clear sentence if this script cannot handle env_id; return the env's spaces."""
    if env_id not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {env_id!r}; pick a registered Gymnasium env, e.g. Pendulum-v1")
    quiet_third_party(env_id)
    with gym.make(env_id) as env:
        obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(act_space, gym.spaces.Box):
        raise SystemExit(f"{SCRIPT} needs a Box action space; {env_id} has {act_space}: use sac_discrete.py")
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise SystemExit(f"{SCRIPT} squashes actions into finite bounds; {env_id} has {act_space}: bound them")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"{SCRIPT} needs a flat Box observation space; {env_id} has {obs_space}: flatten it")
    return obs_space, act_space


def validate(args, obs_space, act_space):
    """Reject nonsensical hyperparameters, and a replay buffer the machine (or the GPU) cannot hold, in one sentence."""
    problems = [
        (not 0 <= args.seed < 2**32, f"--seed must be in [0, 2**32) (got {args.seed})"),
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.hidden_dim < 1, f"--hidden-dim must be >= 1 (got {args.hidden_dim})"),
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
        (args.cudagraphs and not args.compile, "--cudagraphs works through torch.compile: add --compile"),
        (args.cudagraphs and not (args.cuda and torch.cuda.is_available()), "--cudagraphs needs a CUDA device"),
        (args.num_envs < 1, f"--num-envs must be >= 1 (got {args.num_envs})"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (args.buffer_size < args.batch_size, f"--buffer-size {args.buffer_size} is smaller than --batch-size"),
        (args.buffer_size < args.num_envs, f"--buffer-size {args.buffer_size} cannot hold one step of all envs"),
        (args.learning_starts < 0, f"--learning-starts must be >= 0 (got {args.learning_starts})"),
        (min(args.policy_frequency, args.target_network_frequency) < 1, "--policy-frequency etc. must be >= 1"),
        (not 0.0 < args.tau <= 1.0, f"--tau must be in (0, 1] (got {args.tau})"),
        (not 0.0 < args.gamma <= 1.0, f"--gamma must be in (0, 1] (got {args.gamma})"),
        (not min(args.policy_lr, args.q_lr) > 0, "--policy-lr and --q-lr must be > 0"),
        (args.alpha < 0 or args.alpha_init <= 0, "--alpha must be >= 0 and --alpha-init > 0"),
        (args.dataset_kind == "policy" and args.dataset_episodes < 1, "--dataset-episodes must be >= 1"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")
    free = math.inf  # without /proc/meminfo (macOS, Windows) or its MemAvailable (Linux < 3.14): not checked
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:  # MemAvailable: free pages and reclaimable cache
        free = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), math.inf)
    free = torch.cuda.mem_get_info()[0] if torch.cuda.is_available() and args.cuda else free  # the buffer's device
    nbytes = 4 * args.buffer_size * (2 * obs_space.shape[0] + int(np.prod(act_space.shape)) + 3)  # the float32 FIELDS
    if nbytes > free:
        sizes = f"{nbytes / 2**30:.1f} GiB, but {free / 2**30:.1f} GiB are free"
        raise SystemExit(f"{SCRIPT}: --buffer-size {args.buffer_size} needs {sizes}: lower it")
    if not args.save_dataset:  # the rest checks --save-dataset now rather than after the training run
        return
    try:
        import minari

        minari.dataset.minari_dataset.parse_dataset_id(args.save_dataset)
    except ImportError:
        raise SystemExit(f"{SCRIPT}: --save-dataset needs minari and h5py: pip install 'minari>=0.5' h5py") from None
    except (ValueError, TypeError):  # minari: ValueError, or TypeError for an id without '/'
        message = f"--save-dataset {args.save_dataset!r} is not of the form namespace/name-v0"
        raise SystemExit(f"{SCRIPT}: {message}") from None
    if args.save_dataset in minari.list_local_datasets():
        raise SystemExit(f"{SCRIPT}: a local Minari dataset {args.save_dataset!r} exists: pick another id")


def quiet_third_party(env_id):
    """Drop messages that tell the user nothing, each matched by its source and text (never a blanket filter)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # video frames need no display: no XDG_RUNTIME_DIR error
    if "mujoco" in str(gym.spec(env_id).entry_point):
        import mujoco  # the bundled MuJoCo models still use an attribute that MuJoCo 3.3 deprecates

        mujoco.set_mju_user_warning(lambda msg: "settotalmass" in msg or print(f"MuJoCo: {msg}", file=sys.stderr))


def evaluate(actor, env_id, episodes, seed, device):
    """Deterministic policy (tanh of the mean) on an env of its own; returns the list of episodic returns."""
    return [sum(episode["rewards"].tolist()) for episode in rollouts(actor.act, env_id, episodes, seed, device)]


def rollouts(act, env_id, episodes, seed, device):
    """Episodes of `act` (a batch of observations -> actions) on an env of its own, as arrays of ReplayBuffer.FIELDS."""
    result = []
    with gym.make(env_id) as env, torch.no_grad():
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            rows, done = [], False
            while not done:
                action = act(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0].cpu().numpy()
                next_obs, reward, terminated, truncated, _ = env.step(action)
                rows.append((obs, next_obs, action, reward, terminated, truncated))  # in the order of the FIELDS
                obs, done = next_obs, terminated or truncated
            result.append(dict(zip(ReplayBuffer.FIELDS, map(np.array, zip(*rows)))))
    return result


def run_evaluation_only(args):
    ckpt = load_checkpoint(args.eval_checkpoint, mmap=True)  # only what evaluation needs is read
    saved, device = ckpt["args"], torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    obs_space, act_space = check_env(saved["env_id"])
    actor = Actor(obs_space.shape[0], act_space, saved["hidden_dim"]).to(device)
    actor.load_state_dict(ckpt["actor"])
    report_eval(evaluate(actor, saved["env_id"], args.eval_episodes, args.seed, device))


def save_minari_dataset(args, rb, actor, device):
    """Write the replay buffer (per env, split at episode ends) or fresh policy episodes as a Minari dataset."""
    from minari.data_collector import EpisodeBuffer

    episodes = []
    if args.dataset_kind == "replay":
        n = len(rb)
        order = (torch.arange(n) + (rb.pos if rb.full else 0)) % rb.size  # storage rows, oldest first
        env_of = (torch.arange(n) + rb.added - n) % args.num_envs  # the rows of one vector step are consecutive
        for env_idx in range(args.num_envs):
            rows = order[env_of == env_idx]
            ends = np.flatnonzero((rb.terminations[rows] + rb.truncations[rows]).cpu().numpy() > 0)
            for start, end in zip([0, *(ends + 1)], [*(ends + 1), len(rows)]):
                if end > start:  # an unfinished last episode is written as truncated (it was cut, not terminated)
                    arrays = {k: getattr(rb, k)[rows[start:end]].cpu().numpy() for k in ReplayBuffer.FIELDS}
                    arrays["truncations"][-1] = arrays["terminations"][-1] == 0
                    episodes.append(arrays)
    else:  # fresh episodes of the final stochastic policy, on seeds of their own
        seed = args.seed + 100_000
        episodes = rollouts(lambda obs: actor.get_action(obs)[0], args.env_id, args.dataset_episodes, seed, device)
    buffers = []
    for i, episode in enumerate(episodes):  # one more observation than actions: the final next_obs closes the episode
        observations = np.concatenate([episode["obs"], episode["next_obs"][-1:]])
        ends = {k: episode[k] > 0 for k in ("terminations", "truncations")}
        rewards, actions = episode["rewards"].astype(np.float64), episode["actions"]
        buffers.append(EpisodeBuffer(id=i, observations=observations, actions=actions, rewards=rewards, **ends))
    # D4RL-style reference scores for cql.py's normalized score: uniform random actions 0, the final greedy policy 100
    env = gym.make(args.env_id)
    env.action_space.seed(args.seed)
    uniform = SimpleNamespace(act=lambda obs: torch.as_tensor(env.action_space.sample())[None])
    low, high = [np.mean(evaluate(policy, args.env_id, 10, args.seed + 200_000, device)) for policy in (uniform, actor)]
    about = dict(eval_env=args.env_id, algorithm_name=SCRIPT, ref_min_score=float(low), ref_max_score=float(high))
    description = f"{SCRIPT} {args.dataset_kind} data"
    with warnings.catch_warnings():  # Minari asks for an author, e-mail and code link that a local dataset lacks
        warnings.filterwarnings("ignore", r"`\w+` is set to None", UserWarning, "minari")
        publish_dataset(args.save_dataset, buffer=buffers, env=env, description=description, **about)
    env.close()
    print(f"minari dataset {args.save_dataset} written: {len(buffers)} episodes, {rb.added} steps collected")


def publish_dataset(dataset_id, **dataset):
    """Write into a hidden folder of Minari's root (its listings skip it), then rename: never a partial dataset."""
    import minari
    from minari.namespace import create_namespace, list_local_namespaces

    root, previous = minari.storage.get_dataset_path(), os.environ.get("MINARI_DATASETS_PATH")
    with tempfile.TemporaryDirectory(prefix=f".{SCRIPT}-", dir=root, ignore_cleanup_errors=True) as writing:
        os.environ["MINARI_DATASETS_PATH"] = writing  # minari reads the variable at each call
        try:
            minari.create_dataset_from_buffers(dataset_id=dataset_id, **dataset)
        finally:  # the variable as it was
            os.environ.pop("MINARI_DATASETS_PATH")
            os.environ.update({} if previous is None else {"MINARI_DATASETS_PATH": previous})
        namespace = minari.dataset.minari_dataset.parse_dataset_id(dataset_id)[0]
        if namespace is not None and namespace not in list_local_namespaces():
            create_namespace(namespace)
        os.rename(os.path.join(writing, dataset_id), root / dataset_id)


# ---- Run management: word for word the same in every script of this repository, and no algorithm in it. ----
RESUMABLE = {"resume", "run_name", "total_timesteps", "track", "wandb_project_name", "wandb_entity", "save_model"}
RESUMABLE |= {"checkpoint_every", "save_buffer", "eval_episodes", "eval_checkpoint", "cuda", "threads", "compile"}
RESUMABLE |= {"cudagraphs"}  # the flags that may change on --resume: run management, and speed alone


def parse_args(argv=None):
    """tyro's CLI, also accepting `--flag=True` / `--flag=False` for booleans: the form `wandb agent` passes."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(Args) if f.type is bool}
    for i, arg in enumerate(argv):
        flag, value = arg.partition("=")[0].replace("_", "-"), arg.partition("=")[2]  # tyro takes --save_model too
        if flag in flags and value.lower() in ("true", "false"):
            argv[i] = flag if value.lower() == "true" else "--no-" + flag[2:]
    return tyro.cli(Args, args=argv)


class Run:
    """Seeding, device, the run's folder, resume, W&B, progress, checkpoints, signals and the wrap-up."""

    def __init__(self, args, label):
        self.args, self.label, self.step, self.updates = args, label, 0, 0
        self.wandb = self.wandb_id = self.envs = self.signum = None
        self.saving = bool(args.save_model or args.checkpoint_every or args.resume)  # a resumed run stays resumable
        self.device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
        defaults = {f.name: f.default for f in dataclasses.fields(Args)}
        setting = sorted((k, str(v)) for k, v in vars(args).items() if k not in RESUMABLE and v != defaults[k])
        stamp = hashlib.sha1(repr(setting).encode()).hexdigest()[:8] if args.resume == "auto" else int(time.time())
        self.name = args.run_name or f"{label.replace('/', '-')}__{args.exp_name}__{args.seed}__{stamp}"
        path = f"runs/{self.name}/{args.exp_name}.pt"
        resume = (path if os.path.exists(path) else None) if args.resume == "auto" else args.resume
        self.ckpt = load_checkpoint(resume) if resume else None
        if self.ckpt:  # the flags it was trained with; a flag added since then had its default
            self.ckpt["args"] = {**defaults, **self.ckpt["args"]}
            changed = [k for k, v in vars(args).items() if k not in RESUMABLE and self.ckpt["args"][k] != v]
            was = ", ".join(f"--{k.replace('_', '-')} {self.ckpt['args'][k]} (now {getattr(args, k)})" for k in changed)
            if changed:
                raise SystemExit(f"{SCRIPT}: {resume} was trained with {was}: resume with the original flags")
            self.name = self.ckpt["run_name"]
        self.path = f"runs/{self.name}/{args.exp_name}.pt"
        try:  # one sentence now, rather than a lost run at the first save
            os.makedirs(os.path.dirname(self.path), exist_ok=True) if self.saving else None
            tempfile.TemporaryFile(dir=os.path.dirname(self.path)).close() if self.saving else None
        except OSError as e:
            raise SystemExit(f"{SCRIPT}: cannot write checkpoints to runs/{self.name} ({e.strerror})") from None
        random.seed(args.seed), np.random.seed(args.seed), torch.manual_seed(args.seed)
        torch.backends.cudnn.deterministic = args.torch_deterministic
        torch.set_num_threads(args.threads or torch.get_num_threads())

    def start(self, envs, saved, state=dict, total=None, **header):
        """Resume into `saved` and the envs; from here SIGINT / SIGTERM only set a flag (the last save finishes)."""
        self.envs, self.saved, self.state, self.total = envs, saved, state, total or self.args.total_timesteps
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: setattr(self, "signum", self.signum or signum))
        obs = None if envs is None else envs.reset(seed=self.args.seed)[0]
        envs.action_space.seed(self.args.seed) if envs is not None else None
        if self.ckpt:
            optional = {"rb"} if not self.ckpt["args"].get("save_buffer", True) else set()  # refilled before updates
            if missing := [k for k in saved if k not in self.ckpt and k not in optional]:
                raise SystemExit(f"{SCRIPT}: the checkpoint has no {', '.join(missing)}: it cannot be resumed")
            for key in [k for k in saved if k in self.ckpt]:
                (getattr(saved[key], "load_state_dict", None) or saved[key].data.copy_)(self.ckpt[key])
            counters, rng = self.ckpt["counters"], self.ckpt["rng"]
            self.step, self.wandb_id = counters["global_step"], counters["wandb_id"]
            self.updates = counters.get("updates", counters.get("update"))  # "update" in older checkpoints
            random.setstate(rng["python"]), np.random.set_state(rng["numpy"]), torch.set_rng_state(rng["torch"])
            for i, cuda_state in enumerate(rng["cuda"][: torch.cuda.device_count()]):  # onto the GPUs visible now
                torch.cuda.set_rng_state(cuda_state, i)
            if envs is not None:  # the action space's generator and each env's own continue where they were
                envs.action_space.np_random.bit_generator.state = rng["action_space"]
                envs.set_attr("np_random", rng.get("env_generators", envs.get_attr("np_random")))
            if envs is not None and self.ckpt["envs"] is not None:
                envs.envs, obs = pickle.loads(self.ckpt["envs"]), self.ckpt["obs"]
            self.ckpt = {"args": self.ckpt["args"], "envs": self.ckpt["envs"]}  # what was loaded (a buffer) is let go
        if self.args.track:
            import wandb

            project, entity, config = self.args.wandb_project_name, self.args.wandb_entity, vars(self.args)
            wandb.init(project=project, entity=entity, config=config, name=self.name, id=self.wandb_id, resume="allow")
            self.wandb, self.wandb_id = wandb, wandb.run.id
        more = "".join(f", {k} {v}" for k, v in header.items())
        print(f"{SCRIPT}: {self.label} on {self.device}, run {self.name}, {self.total} steps{more}", flush=True)
        if self.ckpt:  # the benchmark drops the lines that a killed run printed after this step
            restart = "" if envs is None or self.ckpt["envs"] else " (this env does not pickle: its episodes restart)"
            print(f"resumed run {self.name} at global_step={self.step}{restart}")
        self.start_step, self.start_time, self.saved_at, self.last_return = self.step, time.time(), self.step, "-"
        self.printed = self.start_time
        self.bar = tqdm(total=self.total, initial=self.step, unit="step") if sys.stdout.isatty() else None
        return obs

    def episodes(self, step, infos):
        """A line (and W&B point) per episode that ended in this vector step; next to a live bar, one every 2 s."""
        stats = infos.get("final_info", {})
        for i in np.flatnonzero(stats.get("_episode", [])):
            episode_return, length = float(stats["episode"]["r"][i]), int(stats["episode"]["l"][i])
            self.last_return = f"{episode_return:.1f}"
            line = f"global_step={step}, episodic_return={episode_return:.2f}, episodic_length={length}"
            if self.bar is None:
                print(line)
            elif time.time() - self.printed > 2:
                self.printed = time.time()
                self.bar.write(line)
            if self.wandb:
                self.wandb.log({"charts/episodic_return": episode_return, "charts/episodic_length": length}, step=step)

    def log(self, metrics):
        for name, value in metrics.items():
            if not math.isfinite(value):  # stop, naming the loss and the step
                self.close(1, f"non-finite loss: {name} became {value} at global_step={self.step}. {NAN_HINT}")
        if self.wandb:
            sps = (self.step - self.start_step) / (time.time() - self.start_time)
            self.wandb.log({**metrics, "charts/SPS": sps}, step=self.step)

    def going(self):
        """A checkpoint past each multiple of --checkpoint-every; a live bar on a terminal, else a line every 5 s."""
        every, now = self.args.checkpoint_every, time.time()
        if every and self.step // every > self.saved_at // every:
            self.save(final=False)
        if self.bar is not None:
            self.bar.update(self.step - self.bar.n)
            self.bar.set_postfix_str(f"return {self.last_return}", refresh=False)
        elif now - self.printed >= 5:
            self.printed, sps = now, (self.step - self.start_step) / max(now - self.start_time, 1e-9)
            eta = time.strftime("%H:%M:%S", time.gmtime((self.total - self.step) / max(sps, 1e-9)))
            print(f"progress: step {self.step}/{self.total} | SPS {sps:.0f} | return {self.last_return} | ETA {eta}")
        return self.step < self.total and self.signum is None

    def finish(self, wrap_up):
        """Save; stopped by a signal, exit 128 + signum; else `wrap_up()` gives the eval returns (and a suffix)."""
        self.bar.close() if self.bar is not None else None
        print(f"SPS={(self.step - self.start_step) / (time.time() - self.start_time):.1f} (updates: {self.updates})")
        if self.saving:
            self.save(final=True)
            print(f"checkpoint saved to {self.path}")
        if self.signum is not None:
            saved = f"resume with --resume {self.path}" if self.saving else "no checkpoint saved"
            print(f"stopped by {signal.Signals(self.signum).name} at global_step={self.step}: {saved}")
            self.close(128 + self.signum)
            sys.exit(128 + self.signum)
        result = wrap_up()
        returns, extra = result if isinstance(result, tuple) else (result, "")
        report_eval(returns, extra) if returns else None
        if returns and self.wandb:
            self.wandb.log({"eval/episodic_return": float(np.mean(returns))}, step=self.step)
        self.close(0)

    def close(self, exit_code, message=None):
        self.envs.close() if self.envs is not None else None
        for video in sorted(glob.glob(f"runs/{self.name}/videos/*.mp4")) if self.wandb else []:
            self.wandb.log({"videos": self.wandb.Video(video)}, step=self.step)
        self.wandb.finish(exit_code=exit_code) if self.wandb else None
        if message:
            raise SystemExit(f"{SCRIPT}: {message}")

    def save(self, final):
        """Write a checkpoint: a failed periodic one warns and keeps the last good file, a failed final one ends."""
        counters = {"global_step": self.step, "updates": self.updates, "wandb_id": self.wandb_id}
        ckpt = {"script": SCRIPT, "args": vars(self.args), "run_name": self.name, "counters": counters}
        for key, part in self.saved.items():
            if key != "rb" or self.args.save_buffer:
                ckpt[key] = part.state_dict() if hasattr(part, "state_dict") else part.detach().cpu()
        rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
        rng["cuda"] = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        if self.envs is not None:  # the action space's generator, and each env's own
            rng["action_space"] = self.envs.action_space.np_random.bit_generator.state
            rng["env_generators"] = list(self.envs.get_attr("np_random"))
        sub_envs = getattr(self.envs, "envs", [])  # pickled where that captures them: not MuJoCo, Box2D, subprocesses
        picklable = sub_envs and not any(isinstance(e.unwrapped, gym.utils.EzPickle) or e.render_mode for e in sub_envs)
        ckpt.update(rng=rng, envs=None, **self.state())
        with contextlib.suppress(Exception):  # an env of the user's that does not pickle restarts its episodes
            ckpt["envs"] = pickle.dumps(sub_envs) if picklable else None
        tmp, self.saved_at = f"{self.path}.{os.getpid()}.tmp", self.step  # a failed save waits for the next multiple
        try:  # atomic and durable: a temp file of this process, fsync, rename, fsync of the folder
            with open(tmp, "wb") as f:
                torch.save(ckpt, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            folder = os.open(os.path.dirname(self.path), os.O_RDONLY)
            os.fsync(folder), os.close(folder)
        except OSError as e:
            os.remove(tmp) if os.path.exists(tmp) else None
            if final:
                self.close(1, f"the checkpoint could not be written to {self.path} ({e.strerror})")
            print(f"{SCRIPT}: warning: no checkpoint at global_step={self.step} ({e.strerror})", file=sys.stderr)


def report_eval(scores, extra=""):  # the final evaluation's line: the episodes' returns, mean and spread
    print(f"eval/episodic_return={np.mean(scores):.2f} (std {np.std(scores):.2f} over {len(scores)} episodes){extra}")


def load_checkpoint(path, mmap=False):  # a checkpoint of this script, or one sentence saying why the file is not one
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)  # mmap: unused parts are not read
    except Exception as e:  # a missing or truncated file, or not a torch file at all
        raise SystemExit(f"{SCRIPT}: {path} cannot be read as a checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("script") != SCRIPT:
        raise SystemExit(f"{SCRIPT}: {path} is not a checkpoint of {SCRIPT}: use the script that wrote it")
    return ckpt


if __name__ == "__main__":
    main(parse_args())
