# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0", "minari[hf]>=0.5,<0.6", "h5py>=3.8"]
# ///
"""Conservative Q-Learning, CQL(H) (Kumar et al. 2020, arXiv 2006.04779), offline from a Minari dataset with Box
actions: SAC's twin critics plus a penalty that lowers Q on sampled actions and raises it on the dataset's, so that Q
stays a lower bound where the data says nothing. The env only evaluates. Defaults (CORL's), deviations: docs/cql.md"""

import contextlib
import dataclasses
import glob
import hashlib
import math
import os
import pickle
import random
import signal
import socket
import sys
import tempfile
import time
import urllib.parse
import warnings
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from tqdm import tqdm

SCRIPT = "cql.py"
NAN_HINT = "Try a lower --q-lr or --cql-alpha."
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
FIELDS = ("obs", "actions", "rewards", "next_obs", "terminations")
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
    capture_video: bool = False  # record the final evaluation's first episode into runs/{run_name}/videos (and W&B)
    save_model: bool = False  # save runs/{run_name}/{exp_name}.pt at the end (and when stopped by a signal)
    checkpoint_every: int = 0  # also save that checkpoint every this many gradient steps (0: never)
    resume: Optional[str] = None  # continue this checkpoint (same flags); `auto`: runs/{run_name}/{exp_name}.pt if any
    # the run's folder under runs/ (default DATASET__EXP_NAME__SEED__TIME, '/' as '-'; with --resume auto, a hash of the
    # set-up flags instead of the time: each setting finds its own checkpoint)
    run_name: Optional[str] = None
    eval_checkpoint: Optional[str] = None  # evaluate this checkpoint instead of training

    dataset_id: str = "mujoco/hopper/medium-v0"  # Minari id, in MINARI_DATASETS_PATH (default ~/.minari/datasets)
    download: bool = True  # download the dataset when it is not found locally (needs network access)
    env_id: Optional[str] = None  # evaluation env id (default: the dataset's eval env, or the env it was collected in)
    total_timesteps: int = 1_000_000  # number of GRADIENT steps (offline: the environment is only used for evaluation)
    gamma: float = 0.99  # the discount factor
    tau: float = 0.005  # target smoothing coefficient (Polyak averaging)
    batch_size: int = 256  # transitions per gradient step (sampled from the dataset)
    policy_lr: float = 3e-5  # the learning rate of the actor
    q_lr: float = 3e-4  # the learning rate of the critics and of the Lagrange multiplier
    alpha_lr: float = 3e-5  # the learning rate of the SAC entropy temperature (CORL uses the actor's)
    hidden_dim: int = 256  # width of the two hidden layers of the actor and of each critic (CORL: three layers of 256)
    autotune: bool = True  # tune the SAC temperature towards a target entropy of -|A| (--no-autotune: fixed --alpha)
    alpha: float = 1.0  # the SAC temperature: its initial value with --autotune, else fixed
    cql_alpha: float = 10.0  # weight of the conservative penalty (0: plain offline SAC; the paper uses 5 on MuJoCo)
    cql_n_actions: int = 10  # actions per state for the logsumexp: this many uniform, pi(s) and pi(s') ones each
    cql_temp: float = 1.0  # temperature t of the penalty: t * logsumexp((Q - log density) / t), as CORL (docs/cql.md)
    cql_lagrange: bool = False  # tune the penalty weight so that the penalty gap nears --cql-target-action-gap
    cql_target_action_gap: float = 10.0  # target value of (logsumexp - Q(s, a_data)) for the Lagrange variant
    cql_max_target_backup: bool = False  # back up the max over --cql-n-actions policy actions at s', not one sample
    backup_entropy: bool = False  # subtract the entropy term in the TD target (soft backup)
    bc_steps: int = 0  # behaviour-cloning warm-up: the actor maximises log pi(a_data|s) for this many gradient steps
    normalize_obs: bool = True  # standardise observations with the dataset's mean and std (also at evaluation)
    eval_freq: int = 5_000  # evaluate every this many gradient steps (0: only at the end)
    eval_episodes: int = 10  # episodes per evaluation (periodic and final)


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy scaled into [low, high]; the observation statistics are buffers, used by act()."""

    def __init__(self, obs_dim, act_space, hidden_dim, obs_mean, obs_std):
        super().__init__()
        act_dim = int(np.prod(act_space.shape))
        layers = [nn.Linear(obs_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.fc_mean = nn.Linear(hidden_dim, act_dim)
        self.fc_logstd = nn.Linear(hidden_dim, act_dim)
        low, high = (torch.as_tensor(bound, dtype=torch.float32) for bound in (act_space.low, act_space.high))
        self.register_buffer("action_scale", (high - low) / 2.0)
        self.register_buffer("action_bias", (high + low) / 2.0)
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean, dtype=torch.float32))
        self.register_buffer("obs_std", torch.as_tensor(obs_std, dtype=torch.float32))

    def normalize(self, raw_obs):
        return (raw_obs - self.obs_mean) / self.obs_std

    def forward(self, obs):
        """The pre-tanh Gaussian at standardised observations."""
        hidden = self.net(obs)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(self.fc_logstd(hidden)) + 1)
        return torch.distributions.Normal(self.fc_mean(hidden), log_std.exp())

    def get_action(self, obs, n_samples=()):
        """Reparameterised actions [*n_samples, *obs.shape[:-1], A] from one network pass, and their log-densities."""
        normal = self(obs)
        u = normal.rsample(n_samples)
        action = torch.tanh(u) * self.action_scale + self.action_bias
        return action, squashed_log_prob(normal.log_prob(u), u, self.action_scale)

    def act(self, raw_obs):
        """The deterministic action tanh(mean) at a raw observation; it draws no random numbers."""
        return torch.tanh(self(self.normalize(raw_obs)).mean) * self.action_scale + self.action_bias

    def log_prob(self, obs, action):
        """log pi(a|s) of given (dataset) actions, for the behaviour-cloning warm-up."""
        u = torch.atanh(((action - self.action_bias) / self.action_scale).clamp(-1 + 1e-6, 1 - 1e-6))
        return squashed_log_prob(self(obs).log_prob(u), u, self.action_scale)


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
    """Both critics in one module; forward(obs [..., D], action [..., A]) returns Q-values of shape [2, ...]."""

    def __init__(self, obs_dim, act_dim, hidden_dim):
        super().__init__()
        hidden = [EnsembleLinear(2, obs_dim + act_dim, hidden_dim), nn.ReLU()]
        self.net = nn.Sequential(
            *hidden, EnsembleLinear(2, hidden_dim, hidden_dim), nn.ReLU(), EnsembleLinear(2, hidden_dim, 1)
        )

    def forward(self, obs, action):
        x = torch.cat([obs, action], dim=-1)
        flat = x.reshape(1, -1, x.shape[-1]).expand(2, -1, -1)  # both critics read the same rows
        return self.net(flat).reshape(2, *x.shape[:-1])


def load_transitions(dataset):
    """The FIELDS as float32 arrays, built episode by episode so that no transition joins two episodes."""
    episodes = []
    try:
        for episode in dataset.iterate_episodes():
            length = len(episode.actions)
            lengths = (len(episode.observations), len(episode.rewards), len(episode.terminations))
            if lengths != (length + 1, length, length):
                counts = f"{lengths[0]} observations and {lengths[1]} rewards for {length} actions"
                expected = f"(expected {length + 1} and {length})"
                raise SystemExit(f"{SCRIPT}: episode {episode.id} is malformed: {counts} {expected}")
            obs = episode.observations  # s_t and s_{t+1} of one episode
            episodes.append((obs[:-1], episode.actions, episode.rewards, obs[1:], episode.terminations))
    except Exception as e:  # h5py's OSError, KeyError, ... for a truncated or damaged file
        raise SystemExit(unreadable(dataset.spec.dataset_id, f"{type(e).__name__}: {e}")) from None
    if not episodes:
        raise SystemExit(f"{SCRIPT}: the dataset holds no episodes")
    return {key: np.concatenate(column).astype(np.float32) for key, column in zip(FIELDS, zip(*episodes))}


def cql_penalty(qf, actor, obs, next_obs, q_data, act_low, act_high, n_actions, temp):
    """Per-critic gap [2]: temp * logsumexp((Q - log density) / temp) over 3N constant actions at s (N uniform, N from
    pi(.|s), N from pi(.|s'); 2006.04779 appendix F) minus Q(s, a_data), batch means. It trains the critics only."""
    batch, obs_dim = obs.shape
    with torch.no_grad():
        uniform = act_low + torch.rand(batch, n_actions, act_low.shape[-1], device=obs.device) * (act_high - act_low)
        uniform_log_density = -torch.log(act_high - act_low).sum().expand(batch, n_actions)
        # one actor pass on s and s' together, N samples from each state's distribution: [N, 2B, A] -> [2B, N, A]
        pi_actions, pi_log_prob = actor.get_action(torch.cat([obs, next_obs]), (n_actions,))
        pi_actions, pi_log_prob = pi_actions.transpose(0, 1), pi_log_prob.transpose(0, 1)
        actions = torch.cat([uniform, pi_actions[:batch], pi_actions[batch:]], dim=1)  # [B, 3N, A]
        log_density = torch.cat([uniform_log_density, pi_log_prob[:batch], pi_log_prob[batch:]], dim=1)  # [B, 3N]
    # one critic pass on all 3N proposals; contiguous rows, so the batched matmul reads plain memory
    q = qf(obs.unsqueeze(1).expand(batch, 3 * n_actions, obs_dim).contiguous(), actions)  # [2, B, 3N]
    logsumexp = torch.logsumexp((q - log_density) / temp, dim=-1) * temp
    return (logsumexp - q_data).mean(dim=1)


def td_target(qf_target, actor, alpha, rewards, next_obs, terminations, gamma, max_backup, n_actions, backup_entropy):
    """r + gamma * (1 - terminated) * V(s'), V from the min of the target critics at the policy's action(s) at s'."""
    with torch.no_grad():
        if max_backup:  # the best of N policy samples per state (2006.04779 appendix F, "max-backup")
            actions, log_prob = actor.get_action(next_obs, (n_actions,))  # [N, B, A], [N, B]
            q = qf_target(next_obs.expand(n_actions, *next_obs.shape), actions).min(dim=0).values  # [N, B]
            next_v, idx = q.max(dim=0)
            next_log_prob = log_prob.gather(0, idx.unsqueeze(0)).squeeze(0)
        else:
            actions, next_log_prob = actor.get_action(next_obs)
            next_v = qf_target(next_obs, actions).min(dim=0).values
        if backup_entropy:
            next_v = next_v - alpha * next_log_prob
        return rewards + gamma * (1.0 - terminations) * next_v  # a truncation bootstraps; only termination stops it


def critic_loss(qf, qf_target, actor, alpha, alpha_prime, batch, act_low, act_high, args):
    """Both critics' squared TD error plus --cql-alpha times the penalty (2006.04779 Eq. 4; --cql-lagrange: Eq. 30,
    alpha_prime constant here); returns (total, TD part, gap [2] or None at --cql-alpha 0, Q(s, a_data) [2, B])."""
    obs, actions, rewards, next_obs, terminations = batch
    backup = (args.cql_max_target_backup, args.cql_n_actions, args.backup_entropy)  # max_backup, n_actions, entropy
    target = td_target(qf_target, actor, alpha, rewards, next_obs, terminations, args.gamma, *backup)
    q_data = qf(obs, actions)  # [2, B]
    td_loss = ((q_data - target) ** 2).mean(dim=1).sum()
    if args.cql_alpha == 0:
        return td_loss, td_loss, None, q_data
    gap = cql_penalty(qf, actor, obs, next_obs, q_data, act_low, act_high, args.cql_n_actions, args.cql_temp)
    if args.cql_lagrange:
        return td_loss + (alpha_prime * args.cql_alpha * (gap - args.cql_target_action_gap)).sum(), td_loss, gap, q_data
    return td_loss + args.cql_alpha * gap.sum(), td_loss, gap, q_data  # one gap per critic


def lagrange_loss(log_alpha_prime, gap, cql_alpha, target_gap):
    """2006.04779 Eq. 30 for alpha' = exp(log alpha') >= 0: it grows while the gap exceeds its target, shrinks below."""
    return -(log_alpha_prime.exp().clamp(0.0, 1e6) * cql_alpha * (gap.detach() - target_gap)).sum()


def actor_loss(actor, qf, alpha, obs, data_actions, behaviour_cloning):
    """SAC's E[alpha log pi - min Q]; during the warm-up, E[alpha log pi - log pi(a_data|s)] (behaviour cloning).
    The caller freezes the critics' parameters: the gradient reaches the actor through a only."""
    actions, log_prob = actor.get_action(obs)
    if behaviour_cloning:
        return (alpha * log_prob - actor.log_prob(obs, data_actions)).mean(), log_prob
    return (alpha * log_prob - qf(obs, actions).min(dim=0).values).mean(), log_prob


def alpha_loss(log_alpha, log_prob, target_entropy):
    """1812.05905 Eq. 18: alpha grows when the entropy -log pi falls below the target, shrinks when above."""
    return (-log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


def gradient_step(optimizer, loss):
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def update(batch, actor, qf, qf_target, log_alpha, log_alpha_prime, optimizers, act_bounds, args, behaviour_cloning):
    """One gradient step: actor, alpha, alpha' (--cql-lagrange), critics, target critics; losses stay on the device."""
    obs, data_actions = batch[0], batch[1]
    alpha = log_alpha.detach().exp()
    qf.requires_grad_(False)  # the actor step needs no weight gradients of the critics
    pi_loss, log_prob = actor_loss(actor, qf, alpha, obs, data_actions, behaviour_cloning)
    gradient_step(optimizers["actor_optimizer"], pi_loss)
    qf.requires_grad_(True)
    if args.autotune:  # 1812.05905 section 5: the heuristic target entropy -dim(A)
        gradient_step(optimizers["a_optimizer"], alpha_loss(log_alpha, log_prob, -float(data_actions.shape[-1])))

    # with --cql-lagrange, the penalty weight alpha' as it was before this step's update of it
    alpha_prime = log_alpha_prime.detach().exp().clamp(0.0, 1e6) if args.cql_lagrange else None
    qf_loss, td_loss, gap, q_data = critic_loss(qf, qf_target, actor, alpha, alpha_prime, batch, *act_bounds, args)
    if args.cql_lagrange and gap is not None:
        prime_loss = lagrange_loss(log_alpha_prime, gap, args.cql_alpha, args.cql_target_action_gap)
        gradient_step(optimizers["prime_optimizer"], prime_loss)
    gradient_step(optimizers["q_optimizer"], qf_loss)
    with torch.no_grad():
        for target, online in zip(qf_target.parameters(), qf.parameters()):
            target.lerp_(online, args.tau)  # Polyak: target += tau * (online - target)
    losses = {"losses/qf_loss": qf_loss, "losses/td_loss": td_loss, "losses/actor_loss": pi_loss}
    losses.update({"losses/alpha": alpha, "losses/q_data": q_data.mean()})
    return losses | ({"losses/cql_gap": gap.mean()} if gap is not None else {})


def main(args):
    if args.eval_checkpoint:
        return run_evaluation_only(args)
    validate(args)
    dataset = load_dataset(args)
    data = load_transitions(dataset)
    n_data, act_space = len(data["actions"]), dataset.action_space
    if args.batch_size > n_data:
        raise SystemExit(f"{SCRIPT}: --batch-size {args.batch_size} is larger than the dataset ({n_data} transitions)")
    env_spec = check_env(args.env_id or dataset_env_spec(dataset), data["obs"].shape[1:], act_space)
    run = Run(args, args.dataset_id)
    device = run.device
    obs_dim, act_dim = data["obs"].shape[1], int(np.prod(act_space.shape))
    obs_mean, obs_std = data["obs"].mean(0), data["obs"].std(0) + 1e-3
    if not args.normalize_obs:
        obs_mean, obs_std = np.zeros_like(obs_mean), np.ones_like(obs_std)
    actor = Actor(obs_dim, act_space, args.hidden_dim, obs_mean, obs_std).to(device)
    transitions = {key: torch.as_tensor(value, device=device) for key, value in data.items()}
    for key in ("obs", "next_obs"):  # the critics and the actor train on standardised observations
        transitions[key] = actor.normalize(transitions[key])
    qf = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device)
    qf_target = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device).requires_grad_(False)
    qf_target.load_state_dict(qf.state_dict())
    log_alpha = torch.tensor(args.alpha, device=device).log().requires_grad_(args.autotune)
    log_alpha_prime = torch.zeros((), device=device, requires_grad=True)  # alpha' = 1 at the start
    act_bounds = torch.tensor(np.stack([act_space.low, act_space.high]), dtype=torch.float32, device=device)
    optimizers = {  # fused Adam: one kernel for all parameters
        "q_optimizer": torch.optim.Adam(qf.parameters(), lr=args.q_lr, fused=True),
        "actor_optimizer": torch.optim.Adam(actor.parameters(), lr=args.policy_lr, fused=True),
        "a_optimizer": torch.optim.Adam([log_alpha], lr=args.alpha_lr, fused=True),
        "prime_optimizer": torch.optim.Adam([log_alpha_prime], lr=args.q_lr, fused=True),
    }
    saved = dict(actor=actor, qf=qf, qf_target=qf_target, **optimizers)
    saved.update(log_alpha=log_alpha, log_alpha_prime=log_alpha_prime)
    header = dict(eval_env=env_spec.id, transitions=n_data, batch=args.batch_size, lr=f"{args.policy_lr}/{args.q_lr}")
    run.start(None, saved, lambda: {"env_spec": env_spec, "act_space": act_space}, **header, cql_alpha=args.cql_alpha)

    while run.going():
        run.step += 1
        run.updates = run.step  # offline: the steps are the gradient steps
        idx = torch.randint(0, n_data, (args.batch_size,), device=device)
        batch = tuple(transitions[key][idx] for key in FIELDS)
        warm_up = run.step <= args.bc_steps  # behaviour cloning first (--bc-steps)
        losses = update(batch, actor, qf, qf_target, log_alpha, log_alpha_prime, optimizers, act_bounds, args, warm_up)
        if run.step % 100 == 0:  # the only host reads of the losses: the hot loop never waits on them
            run.log(dict(zip(losses, torch.stack(list(losses.values())).tolist())))
        # an evaluation every --eval-freq steps; the final one comes after the loop
        if args.eval_freq and args.eval_episodes and run.step % args.eval_freq == 0 and run.step < args.total_timesteps:
            returns, score = scored_evaluation(actor, env_spec, dataset, args, run)
            tqdm.write(f"global_step={run.step}, eval_return={np.mean(returns):.2f}{score}")
            run.last_return = f"{np.mean(returns):.1f}"  # the progress line shows the latest evaluation
            run.log({"eval/episodic_return": float(np.mean(returns))})  # W&B
    video = f"runs/{run.name}/videos" if args.capture_video else None
    run.finish(lambda: scored_evaluation(actor, env_spec, dataset, args, run, video) if args.eval_episodes else [])


def check_env(env_id, obs_shape, act_space):
    """The eval env's EnvSpec (from an id, or a dataset's spec, registered or not), or one sentence if it won't fit."""
    name = env_id if isinstance(env_id, str) else env_id.id
    if isinstance(env_id, str) and name not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {name!r}; pass a registered Gymnasium env, e.g. --env-id Hopper-v5")
    quiet_third_party(name) if name in gym.registry else None
    with gym.make(env_id) as env:
        obs_space, env_act_space = env.observation_space, env.action_space
    if env_act_space != act_space:
        raise SystemExit(f"{SCRIPT}: the eval env {name} has actions {env_act_space}, the policy {act_space}")
    if obs_space.shape != tuple(obs_shape):
        raise SystemExit(f"{SCRIPT}: the eval env {name} has observations {obs_space}, the policy {tuple(obs_shape)}")
    return gym.spec(name) if isinstance(env_id, str) else env_id


def validate(args):
    """Reject nonsensical hyperparameters before anything is written (written `not x > 0` so that NaN fails too)."""
    learning_rates = (args.policy_lr, args.q_lr, args.alpha_lr)
    problems = [
        (not 0 <= args.seed < 2**32, f"--seed must be in [0, 2**32) (got {args.seed})"),
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.hidden_dim < 1, f"--hidden-dim must be >= 1 (got {args.hidden_dim})"),
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (not 0.0 < args.gamma <= 1.0, f"--gamma must be in (0, 1] (got {args.gamma})"),
        (not 0.0 < args.tau <= 1.0, f"--tau must be in (0, 1] (got {args.tau})"),
        (not all(lr > 0 for lr in learning_rates), "--policy-lr, --q-lr and --alpha-lr must be > 0"),
        (not args.alpha > 0, f"--alpha must be > 0 (got {args.alpha})"),
        (not args.cql_alpha >= 0, f"--cql-alpha must be >= 0 (got {args.cql_alpha})"),
        (args.cql_n_actions < 1, f"--cql-n-actions must be >= 1 (got {args.cql_n_actions})"),
        (not args.cql_temp > 0, f"--cql-temp must be > 0 (got {args.cql_temp})"),
        (not math.isfinite(args.cql_target_action_gap), "--cql-target-action-gap must be a finite number"),
        (args.bc_steps < 0, f"--bc-steps must be >= 0 (got {args.bc_steps})"),
        (args.eval_freq < 0, f"--eval-freq must be >= 0 (got {args.eval_freq})"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")


def remote_host():
    """(host, port) of Minari's remote: Hugging Face (HF_ENDPOINT) unless MINARI_REMOTE names a gcp:// bucket."""
    gcp = os.environ.get("MINARI_REMOTE", "hf://").startswith("gcp://")
    remote = "https://storage.googleapis.com" if gcp else os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urllib.parse.urlsplit(remote)
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def load_dataset(args):
    """Load the Minari dataset (downloading it if allowed), or stop with one sentence saying how to get one."""
    import minari

    with warnings.catch_warnings(record=True) as caught:  # minari only warns about a dataset it cannot read
        warnings.simplefilter("always")
        local = minari.list_local_datasets()
    for warning in caught:
        if str(warning.message).startswith(f"Misconfigured dataset named {args.dataset_id}: "):
            raise SystemExit(unreadable(args.dataset_id, str(warning.message).split(": ", 1)[1]))
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if args.dataset_id not in local:
        where = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        missing = f"{SCRIPT}: dataset {args.dataset_id!r} is not in {where}"
        get = f"download it with `minari download {args.dataset_id}` where there is network, or make one with "
        get += f"`python sac_continuous.py --env-id ENV --save-dataset {args.dataset_id}`"
        if not args.download:
            raise SystemExit(f"{missing}: {get}")
        host, port = remote_host()
        try:  # minari itself retries for about 25 s when the network is down
            socket.create_connection((host, port), timeout=2.0).close()
        except OSError:
            raise SystemExit(f"{missing} and {host} is unreachable: {get}") from None
        try:
            minari.download_dataset(args.dataset_id)
        except Exception as e:  # an unknown remote id, or the connection failed after all
            reason = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
            raise SystemExit(f"{missing} and could not be downloaded ({reason}); {get}") from None
    try:
        dataset = minari.load_dataset(args.dataset_id)
    except Exception as e:
        raise SystemExit(unreadable(args.dataset_id, f"{type(e).__name__}: {e}")) from None
    act, obs = dataset.action_space, dataset.observation_space
    if not isinstance(act, gym.spaces.Box) or not np.all(np.isfinite(act.low)) or not np.all(np.isfinite(act.high)):
        raise SystemExit(f"{SCRIPT} needs Box actions with finite bounds; dataset {args.dataset_id!r} has {act}")
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise SystemExit(f"{SCRIPT} needs flat Box observations; dataset {args.dataset_id!r} has {obs}")
    return dataset


def unreadable(dataset_id, reason):
    """The sentence for a dataset whose files cannot be read (a download or a write cut short, a damaged disk)."""
    import minari.storage

    folder, reason = minari.storage.get_dataset_path(dataset_id), (reason.splitlines() or [""])[0][:200]
    damaged = f"if its files in {folder} are damaged, delete that folder and download or write the dataset again"
    return f"{SCRIPT}: dataset {dataset_id!r} could not be read ({reason}): {damaged}"


def dataset_env_spec(dataset):
    """The dataset's evaluation env, else the env it was collected in, as an EnvSpec (without making the env)."""
    eval_json = dataset.storage.metadata.get("eval_env_spec")
    spec = gym.envs.registration.EnvSpec.from_json(eval_json) if eval_json else dataset.env_spec
    if spec is None:
        raise SystemExit(f"{SCRIPT}: dataset {dataset.spec.dataset_id!r} names no env: pass --env-id")
    return spec


def evaluate(actor, env_id, episodes, seed, device, video_folder=None):
    """Returns of the deterministic policy on an env of its own (an id or EnvSpec); video_folder: film episode 1."""
    env = gym.make(env_id, render_mode="rgb_array") if video_folder else gym.make(env_id)
    if video_folder:
        env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: episode == 0)
    returns = []
    with env, torch.no_grad():
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            done, total = False, 0.0
            while not done:
                action = actor.act(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0]
                obs, reward, terminated, truncated, _ = env.step(action.cpu().numpy())
                total, done = total + float(reward), terminated or truncated
            returns.append(total)
    return returns


def scored_evaluation(actor, env_spec, dataset, args, run, video_folder=None):
    """The eval returns, and D4RL's normalized score as text when the dataset has reference scores (also to W&B)."""
    returns = evaluate(actor, env_spec, args.eval_episodes, args.seed + 10_000, run.device, video_folder)
    low, high = (dataset.storage.metadata.get(key) for key in ("ref_min_score", "ref_max_score"))
    if low is None or high is None:
        return returns, ""
    score = 100.0 * (np.mean(returns) - low) / (high - low)  # 0: uniform random actions, 100: the reference policy
    if run.wandb:
        run.wandb.log({"eval/normalized_score": score}, step=run.step)
    return returns, f", normalized_score={score:.1f}"


def run_evaluation_only(args):
    ckpt = load_checkpoint(args.eval_checkpoint, mmap=True)  # only what evaluation needs is read
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    obs_dim = ckpt["actor"]["obs_mean"].shape[0]
    env_spec = check_env(args.env_id or ckpt["env_spec"], (obs_dim,), ckpt["act_space"])
    actor = Actor(obs_dim, ckpt["act_space"], ckpt["args"]["hidden_dim"], np.zeros(obs_dim), np.ones(obs_dim))
    actor.to(device).load_state_dict(ckpt["actor"])  # the normalisation statistics too
    report_eval(evaluate(actor, env_spec, args.eval_episodes, args.seed, device))


def quiet_third_party(env_id):
    """Drop messages that tell the user nothing, each matched by its source and text (never a blanket filter)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # video frames need no display: no XDG_RUNTIME_DIR error
    if "mujoco" in str(gym.spec(env_id).entry_point):
        import mujoco  # the bundled MuJoCo models still use an attribute that MuJoCo 3.3 deprecates

        mujoco.set_mju_user_warning(lambda msg: "settotalmass" in msg or print(f"MuJoCo: {msg}", file=sys.stderr))


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
