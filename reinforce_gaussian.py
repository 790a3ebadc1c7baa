# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0"]
# ///
"""REINFORCE for Box action spaces with a diagonal Gaussian policy (mu(s) a network, log sigma a free parameter):
each update collects a batch of whole episodes and takes one step on -mean(log pi(a|s) * Psi), Psi the discounted
reward-to-go, optionally minus a baseline (the batch mean, or a learned V(s) with GAE(lambda) advantages).
Papers: Williams 1992, Machine Learning 8:229-256 (REINFORCE, not on arXiv); Schulman et al. 2015, arXiv 1506.02438.

    python reinforce_gaussian.py --env-id InvertedPendulum-v5

Deviations:
- Adam with the learning rates decayed linearly to 0 (--anneal-lr), and gradient-norm clipping;
- Psi standardised over the batch (--norm-adv; with --baseline none only scaled, since centring is a baseline);
- V(s) fitted with --vf-iters full-batch steps on the lambda-returns; it bootstraps episodes cut by a time limit.
GaussianBandit-v0 (one state, one step; registered on import) prints mu and sigma after every update.
Docs: docs/reinforce_gaussian.md
"""

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
from typing import Literal, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from tqdm import tqdm

SCRIPT = "reinforce_gaussian.py"
NAN_HINT = "Try a lower --learning-rate or --max-grad-norm."
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
    resume: Optional[str] = None  # continue this checkpoint (same flags); `auto`: runs/{run_name}/{exp_name}.pt if any
    # the run's folder under runs/ (default ENV__EXP_NAME__SEED__TIME; with --resume auto, a hash of the set-up flags
    # instead of the time, so that each setting finds its own checkpoint)
    run_name: Optional[str] = None
    eval_checkpoint: Optional[str] = None  # evaluate this checkpoint instead of training

    env_id: str = "InvertedPendulum-v5"  # the environment id (any Box-action env, or the built-in GaussianBandit-v0)
    total_timesteps: int = 200_000  # total env steps; no new batch starts once this many steps were taken
    num_envs: int = 4  # number of parallel envs in the vector env
    async_envs: bool = False  # use gym.vector.AsyncVectorEnv (one process per env) instead of SyncVectorEnv
    # env steps per update, in whole episodes: once the batch holds this many steps, each env finishes the episode
    # it is in and starts no new one; the steps of envs that finish early are discarded (but counted in global_step)
    batch_size: int = 2000
    gamma: float = 0.99  # the discount factor
    learning_rate: float = 1e-2  # Adam learning rate of the policy
    anneal_lr: bool = True  # decay both learning rates linearly to 0 (late large steps can undo a solve)
    baseline: Literal["none", "mean", "value"] = "value"  # Psi = reward-to-go, minus its mean, or GAE of a learned V
    gae_lambda: float = 0.97  # the GAE lambda (--baseline value only); 1.0 gives reward-to-go minus V
    vf_learning_rate: float = 3e-3  # Adam learning rate of the value net (--baseline value only)
    vf_iters: int = 80  # full-batch gradient steps on the value net per update (--baseline value only)
    norm_adv: bool = True  # standardise Psi over the batch (--baseline none: only divide by its std)
    ent_coef: float = 0.0  # coefficient of the entropy bonus
    max_grad_norm: float = 0.5  # the maximum gradient norm (policy and value net)
    state_dependent_std: bool = False  # log sigma from a second head of the policy net, not a parameter
    log_std_init: float = -0.5  # initial log sigma
    eval_episodes: int = 10  # episodes of the final deterministic evaluation
    hidden_dim: int = 64  # units in each of the two hidden layers (policy and value net)


def make_env(env_id, idx, capture_video, run_name):
    main_pid = os.getpid()

    def thunk():
        if os.getpid() != main_pid:  # an AsyncVectorEnv worker: Ctrl-C or a pre-emption signal sent to the whole
            for sig in (signal.SIGINT, signal.SIGTERM):  # process group is for the main process, which stops
                signal.signal(sig, signal.SIG_IGN)  # between batches, saves, then closes the envs
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"runs/{run_name}/videos")
        else:
            env = gym.make(env_id)
        # per-env statistics: the vector version drops the first step of later episodes under SAME_STEP autoreset
        return gym.wrappers.RecordEpisodeStatistics(env)

    return thunk


class GaussianBandit(gym.Env):
    """One state, one step: reward zeta * beta / max(zeta, |tau - a|), so beta within zeta of tau, less further out."""

    def __init__(self, tau: float = 0.5, zeta: float = 0.05, beta: float = 1.0):
        self.tau, self.zeta, self.beta = tau, zeta, beta
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action):
        reward = self.zeta * self.beta / max(self.zeta, abs(self.tau - float(action[0])))
        return np.ones(1, np.float32), reward, True, False, {}


if "GaussianBandit-v0" not in gym.registry:
    gym.register(id="GaussianBandit-v0", entry_point=GaussianBandit)


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


def tanh_body(obs_dim, hidden_dim):
    """The two tanh hidden layers of the policy and of the value net."""
    first, second = layer_init(nn.Linear(obs_dim, hidden_dim)), layer_init(nn.Linear(hidden_dim, hidden_dim))
    return [first, nn.Tanh(), second, nn.Tanh()]


class Actor(nn.Module):
    """Diagonal Gaussian policy: mu(s) from a tanh MLP, log sigma a free parameter (or a second head). The action
    bounds are buffers, so a checkpoint alone can evaluate the policy."""

    def __init__(self, obs_dim, act_space, hidden_dim, state_dependent_std=False, log_std_init=-0.5):
        super().__init__()
        act_dim = act_space.shape[0]
        self.body = nn.Sequential(*tanh_body(obs_dim, hidden_dim))
        self.mu = layer_init(nn.Linear(hidden_dim, act_dim), std=0.01)
        if state_dependent_std:
            self.log_std_head = layer_init(nn.Linear(hidden_dim, act_dim), std=0.01, bias_const=log_std_init)
        else:
            self.log_std = nn.Parameter(torch.full((act_dim,), log_std_init))
        self.state_dependent_std = state_dependent_std
        self.register_buffer("low", torch.as_tensor(act_space.low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(act_space.high, dtype=torch.float32))

    def forward(self, obs):
        """mu(s) and sigma(s) of the diagonal Gaussian."""
        hidden = self.body(obs)
        log_std = self.log_std_head(hidden) if self.state_dependent_std else self.log_std.expand(hidden.shape[0], -1)
        return self.mu(hidden), log_std.exp()

    def dist(self, obs):
        return torch.distributions.Normal(*self(obs))

    def act(self, obs):
        """The deterministic action mu(s), clipped into the bounds; it draws no random numbers."""
        return torch.clamp(self(obs)[0], self.low, self.high)


class Critic(nn.Module):
    def __init__(self, obs_dim, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(*tanh_body(obs_dim, hidden_dim), layer_init(nn.Linear(hidden_dim, 1), std=1.0))

    def forward(self, obs):
        return self.net(obs).squeeze(-1)


@dataclasses.dataclass
class Batch:
    """Whole episodes back to back. Per step: obs, actions (the unclipped samples), rewards, and ends (True at an
    episode's last step). Per episode, in the same order: final_obs (the real last observation) and truncated (cut
    by a time limit rather than terminated)."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    ends: np.ndarray
    final_obs: np.ndarray
    truncated: np.ndarray


def collect_batch(envs, actor, obs, args, device, run):
    """Run the policy from obs until the batch holds --batch-size steps of whole episodes; every episode that ends
    meanwhile (discarded ones too) goes to run.episode. Returns the Batch and the global step after it."""
    step, batch_steps, low, high = run.step, 0, envs.single_action_space.low, envs.single_action_space.high
    episodes = [[] for _ in range(envs.num_envs)]  # each env's episode so far: (obs, action, reward) per step
    kept, final_obs, truncated = [], [], []  # the batch's episodes, their real last observations, their ends
    collecting = np.ones(envs.num_envs, dtype=bool)  # the env still owes the batch its current episode
    while collecting.any():
        with torch.no_grad():
            actions = actor.dist(torch.as_tensor(obs, dtype=torch.float32, device=device)).sample().cpu().numpy()
        # clip only when stepping the env: the log-prob is of the unclipped sample
        next_obs, rewards, terminations, truncations, infos = envs.step(np.clip(actions, low, high))
        step += envs.num_envs
        for i in np.flatnonzero(collecting):
            episodes[i].append((obs[i], actions[i], rewards[i]))
        batch_steps += int(collecting.sum())
        run.episodes(step, infos)
        for i in np.flatnonzero(terminations | truncations):
            if collecting[i]:
                kept.append(episodes[i])
                # under SAME_STEP autoreset next_obs[i] is already the next episode's first obs: use final_obs
                final_obs.append(infos["final_obs"][i])
                truncated.append(bool(truncations[i] and not terminations[i]))
                collecting[i] = batch_steps < args.batch_size
            episodes[i] = []
        obs = next_obs
    obs, actions, rewards = zip(*[transition for episode in kept for transition in episode])
    ends = np.array([t == len(episode) - 1 for episode in kept for t in range(len(episode))])
    per_step = dict(obs=np.array(obs, np.float32), actions=np.array(actions, np.float32), ends=ends)
    per_episode = dict(final_obs=np.array(final_obs, np.float32), truncated=np.array(truncated, bool))
    return Batch(**per_step, rewards=np.array(rewards, np.float64), **per_episode), step


def reward_to_go(rewards, ends, gamma, bootstrap=None):
    """G_t = r_t + gamma G_{t+1} within an episode; `ends[t]` marks an episode's last step, where G_{t+1} is
    `bootstrap[t]` (V of the real final obs if truncated, else 0), or 0 when no bootstrap is given.
    Episodes are concatenated in the flat arrays; a return never crosses an `ends` boundary."""
    returns, following = np.zeros(len(rewards), dtype=np.float64), 0.0
    for t in reversed(range(len(rewards))):
        if ends[t]:
            following = 0.0 if bootstrap is None else bootstrap[t]
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns


def compute_gae(rewards, values, next_values, ends, gamma, gae_lambda):
    """GAE(lambda) advantages (arXiv:1506.02438, eq. 16) over concatenated episodes. next_values[t] is V(s_{t+1});
    at an episode's last step it is V of the real final obs if truncated and 0 if terminated (set by the caller)."""
    deltas = rewards + gamma * next_values - values
    advantages, last = np.zeros(len(rewards), dtype=np.float64), 0.0
    for t in reversed(range(len(rewards))):
        last = deltas[t] + (0.0 if ends[t] else gamma * gae_lambda * last)  # never across episodes
        advantages[t] = last
    return advantages


def compute_psi(batch, critic, args, device):
    """Psi of every step of the batch (--baseline, --norm-adv), and the lambda-return targets of the value net (None
    without one). A truncated episode bootstraps with V(final obs), a terminated one does not; without a critic the
    reward-to-go stops at a time-limit cut (docs: Implementation details)."""
    if critic is not None:
        with torch.no_grad():
            values = critic(torch.as_tensor(batch.obs, device=device)).double().cpu().numpy()
            final_values = critic(torch.as_tensor(batch.final_obs, device=device)).double().cpu().numpy()
        next_values = np.append(values[1:], 0.0)
        next_values[batch.ends] = final_values * batch.truncated  # replaces V of the next episode's first obs
        psi = compute_gae(batch.rewards, values, next_values, batch.ends, args.gamma, args.gae_lambda)
        vf_targets = psi + values  # lambda-returns
    else:
        psi, vf_targets = reward_to_go(batch.rewards, batch.ends, args.gamma), None
        if args.baseline == "mean":
            psi = psi - psi.mean()
    if args.norm_adv and len(psi) > 1:
        # centring is itself a baseline, so --baseline none only gets the scale normalised
        psi = (psi if args.baseline == "none" else psi - psi.mean()) / (psi.std() + 1e-8)
    return psi, vf_targets


def policy_loss(log_prob, psi, entropy, ent_coef):
    """REINFORCE pseudo-loss: its gradient is -mean(grad log pi(a|s) * Psi), minus an entropy bonus."""
    return -(log_prob * psi).mean() - ent_coef * entropy.mean()


def update(batch, actor, critic, actor_optimizer, critic_optimizer, args, device):
    """One clipped policy step on the pseudo-loss, then --vf-iters full-batch steps of the value net on the
    lambda-returns (--baseline value). Returns the metrics as tensors on the device."""
    psi, vf_targets = compute_psi(batch, critic, args, device)  # from the value net before its steps
    obs = torch.as_tensor(batch.obs, device=device)
    dist = actor.dist(obs)
    log_prob = dist.log_prob(torch.as_tensor(batch.actions, device=device)).sum(-1)  # sum over action dims
    entropy = dist.entropy().sum(-1)
    loss = policy_loss(log_prob, torch.as_tensor(psi, dtype=torch.float32, device=device), entropy, args.ent_coef)
    actor_optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(actor.parameters(), args.max_grad_norm)
    actor_optimizer.step()
    metrics = {"losses/policy_loss": loss.detach(), "losses/entropy": entropy.detach().mean()}
    if critic is not None and args.vf_iters > 0:
        targets = torch.as_tensor(vf_targets, dtype=torch.float32, device=device)
        for _ in range(args.vf_iters):
            v_loss = 0.5 * ((critic(obs) - targets) ** 2).mean()
            critic_optimizer.zero_grad()
            v_loss.backward()
            nn.utils.clip_grad_norm_(critic.parameters(), args.max_grad_norm)
            critic_optimizer.step()
        metrics["losses/value_loss"] = v_loss.detach()
    return metrics


def main(args):
    if args.eval_checkpoint:
        return run_evaluation_only(args)
    obs_space, act_space, bandit_tau = check_env(args.env_id)
    validate(args)
    run = Run(args, args.env_id)
    device = run.device
    # SAME_STEP autoreset: when an env ends, its real last observation is in infos["final_obs"]
    vector_env = gym.vector.AsyncVectorEnv if args.async_envs else gym.vector.SyncVectorEnv
    thunks = [make_env(args.env_id, i, args.capture_video, run.name) for i in range(args.num_envs)]
    envs = vector_env(thunks, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs_dim = obs_space.shape[0]
    actor = Actor(obs_dim, act_space, args.hidden_dim, args.state_dependent_std, args.log_std_init).to(device)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.learning_rate)
    critic = Critic(obs_dim, args.hidden_dim).to(device) if args.baseline == "value" else None
    critic_optimizer = torch.optim.Adam(critic.parameters(), lr=args.vf_learning_rate) if critic is not None else None
    saved = {"actor": actor, "actor_optimizer": actor_optimizer, "critic": critic, "critic_optimizer": critic_optimizer}
    saved = {name: part for name, part in saved.items() if part is not None}  # a value net with --baseline value only
    # obs matters only before the first batch: every later batch starts with envs.reset()
    header = dict(batch=args.batch_size, lr=args.learning_rate, baseline=args.baseline)
    obs = run.start(envs, saved, lambda: {"obs": obs}, **header)

    while run.going():  # one iteration: a batch of whole episodes, then one update
        if args.anneal_lr:
            frac = 1.0 - run.step / args.total_timesteps
            for optimizer, lr in [(actor_optimizer, args.learning_rate), (critic_optimizer, args.vf_learning_rate)]:
                if optimizer is not None:
                    optimizer.param_groups[0]["lr"] = frac * lr
        if run.updates > 0:  # drop the episodes idle envs were in; unseeded: each env's generator goes on (see docs)
            obs, _ = envs.reset()
        batch, run.step = collect_batch(envs, actor, obs, args, device, run)
        run.updates += 1
        metrics = update(batch, actor, critic, actor_optimizer, critic_optimizer, args, device)
        metrics = {name: value.item() for name, value in metrics.items()}  # the host reads them once per batch
        if run.wandb:
            with torch.no_grad():
                sigma = actor(torch.as_tensor(batch.obs[:1], device=device))[1].mean().item()
            metrics.update({"charts/sigma": sigma, "charts/batch_episodes": len(batch.truncated)})
        run.log(metrics)
        if bandit_tau is not None:  # one state: mu and sigma are the whole policy
            with torch.no_grad():
                mu, sigma = actor(torch.ones(1, 1, device=device))
            line = f"bandit: update {run.updates}, global_step={run.step}, mu={mu.item():.4f}, sigma={sigma.item():.4f}"
            tqdm.write(f"{line}, tau={bandit_tau}")
    # the first reset of the evaluation env uses args.seed itself, as the training envs' first reset does
    run.finish(lambda: evaluate(actor, args.env_id, args.eval_episodes, args.seed, device))


def check_env(env_id):
    """Fail with one clear sentence if this script cannot handle env_id; return the env's spaces and, for the
    built-in bandit, its target tau (else None)."""
    if env_id not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {env_id!r}; pick a registered Gymnasium env, e.g. Pendulum-v1")
    quiet_third_party(env_id)
    env = gym.make(env_id)
    obs_space, act_space = env.observation_space, env.action_space
    bandit_tau = env.unwrapped.tau if isinstance(env.unwrapped, GaussianBandit) else None
    env.close()
    if not isinstance(act_space, gym.spaces.Box):
        raise SystemExit(f"{SCRIPT} needs a Box action space; {env_id} has {act_space}: use a2c.py or sac_discrete.py")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"{SCRIPT} needs a flat Box observation space; {env_id} has {obs_space}: flatten it")
    return obs_space, act_space, bandit_tau


def validate(args):
    """Reject nonsensical hyperparameters before anything is written."""
    problems = [
        (not 0 <= args.seed < 2**32, f"--seed must be in [0, 2**32) (got {args.seed})"),
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.hidden_dim < 1, f"--hidden-dim must be >= 1 (got {args.hidden_dim})"),
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
        (args.num_envs < 1, f"--num-envs must be >= 1 (got {args.num_envs})"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (not 0.0 <= args.gamma <= 1.0, f"--gamma must be in [0, 1] (got {args.gamma})"),
        (not 0.0 <= args.gae_lambda <= 1.0, f"--gae-lambda must be in [0, 1] (got {args.gae_lambda})"),
        (not min(args.learning_rate, args.vf_learning_rate) > 0, "--learning-rate and --vf-learning-rate must be > 0"),
        (not args.max_grad_norm > 0, f"--max-grad-norm must be > 0 (got {args.max_grad_norm})"),
        (args.vf_iters < 0, f"--vf-iters must be >= 0 (got {args.vf_iters})"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")


def quiet_third_party(env_id):
    """Drop messages that tell the user nothing, each matched by its source and text (never a blanket filter)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # video frames need no display: no XDG_RUNTIME_DIR error
    if "mujoco" in str(gym.spec(env_id).entry_point):
        import mujoco  # the bundled MuJoCo models still use an attribute that MuJoCo 3.3 deprecates

        mujoco.set_mju_user_warning(lambda msg: "settotalmass" in msg or print(f"MuJoCo: {msg}", file=sys.stderr))


def evaluate(actor, env_id, episodes, seed, device):
    """Deterministic policy (mu, clipped into the bounds) on an env of its own; returns the list of episodic returns.
    Only the first reset is seeded: later episodes continue that env's own RNG."""
    env, returns = gym.make(env_id), []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed if ep == 0 else None)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                action = actor.act(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action.cpu().numpy())
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def run_evaluation_only(args):
    ckpt = load_checkpoint(args.eval_checkpoint, mmap=True)  # only what evaluation needs is read
    saved, device = ckpt["args"], torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    obs_space, act_space, _ = check_env(saved["env_id"])
    actor = Actor(obs_space.shape[0], act_space, saved["hidden_dim"], saved["state_dependent_std"]).to(device)
    actor.load_state_dict(ckpt["actor"])
    report_eval(evaluate(actor, saved["env_id"], args.eval_episodes, args.seed, device))


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
