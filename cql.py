# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0", "minari[hf]>=0.5,<0.6", "h5py>=3.8"]
# ///
"""Conservative Q-Learning, CQL(H), offline from a Minari dataset with Box actions: SAC's twin critics plus a penalty
that lowers Q on uniform and policy actions (an importance-sampled logsumexp) and raises it on the dataset's actions,
so that Q stays a lower bound where the data says nothing. The env only evaluates; `--total-timesteps` counts
gradient steps. Papers: Kumar et al. 2020, arXiv 2006.04779 (Eq. 4, appendix F); SAC arXiv 1801.01290, 1812.05905.

    python cql.py --dataset-id mujoco/hopper/medium-v0

Defaults: CORL's cql.py (tinkoff-ai/CORL algorithms/offline/cql.py and its hopper/medium_v2 config). Deviations:
- 2 hidden layers per network (CORL: 3), PyTorch's default initialisation (CORL: orthogonal), unscaled rewards;
- uniform proposal over the env's [low, high] with density 1 / prod(high - low) (CORL: [-1, 1]^|A|);
- --cql-temp t computes t * logsumexp((Q - log density) / t), the form of the authors' code and CORL: the
  importance-sampled estimate of t * log integral exp(Q / t) da only at t = 1.
Docs: docs/cql.md
"""

import dataclasses
import glob
import math
import os
import pickle
import random
import signal
import socket
import sys
import time
import urllib.parse
from dataclasses import dataclass
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from tqdm import tqdm

SCRIPT = "cql.py"
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
FIELDS = ("obs", "actions", "rewards", "next_obs", "terminations")
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
    """record the first episode of the final evaluation into runs/{run_name}/videos (and W&B with --track)"""
    save_model: bool = False
    """save a checkpoint to runs/{run_name}/{exp_name}.pt at the end (and when stopped by a signal)"""
    checkpoint_every: int = 0
    """also save that checkpoint every this many gradient steps (0: never)"""
    resume: Optional[str] = None
    """continue the run saved in this checkpoint (give the same flags as the original command)"""
    eval_checkpoint: Optional[str] = None
    """evaluate this checkpoint instead of training"""

    dataset_id: str = "mujoco/hopper/medium-v0"
    """the Minari dataset id (looked up in MINARI_DATASETS_PATH, default ~/.minari/datasets)"""
    download: bool = True
    """download the dataset when it is not found locally (needs network access)"""
    env_id: Optional[str] = None
    """evaluation env id; default: the dataset's own eval env (or the env it was collected in)"""
    total_timesteps: int = 1_000_000
    """number of GRADIENT steps (offline: the environment is only used for evaluation)"""
    gamma: float = 0.99
    """the discount factor"""
    tau: float = 0.005
    """target smoothing coefficient (Polyak averaging)"""
    batch_size: int = 256
    """the batch size of sampled transitions"""
    policy_lr: float = 3e-5
    """the learning rate of the actor"""
    q_lr: float = 3e-4
    """the learning rate of the critics and of the Lagrange multiplier"""
    alpha_lr: float = 3e-5
    """the learning rate of the SAC entropy temperature (CORL uses the actor's)"""
    hidden_dim: int = 256
    """width of the two hidden layers of the actor and of each critic (CORL: three layers of 256)"""
    autotune: bool = True
    """tune the SAC temperature towards a target entropy of -|A| (--no-autotune: fixed --alpha)"""
    alpha: float = 1.0
    """the SAC temperature: its initial value with --autotune, else fixed"""
    cql_alpha: float = 10.0
    """weight of the conservative penalty (0 gives plain offline SAC; the paper uses 5 on MuJoCo, CORL 10)"""
    cql_n_actions: int = 10
    """sampled actions per state for the logsumexp: this many uniform, policy-at-s and policy-at-s' actions each"""
    cql_temp: float = 1.0
    """temperature t of the logsumexp: t * logsumexp((Q - log density) / t) over the sampled actions, as in the
    authors' code and CORL; it is the importance-sampled t * log integral exp(Q / t) da only at t = 1"""
    cql_lagrange: bool = False
    """tune the penalty weight alpha' automatically so that the penalty gap approaches --cql-target-action-gap"""
    cql_target_action_gap: float = 10.0
    """target value of (logsumexp - Q(s, a_data)) for the Lagrange variant"""
    cql_max_target_backup: bool = False
    """back up the max over --cql-n-actions policy actions at s' instead of a single sample"""
    backup_entropy: bool = False
    """subtract the entropy term in the TD target (soft backup)"""
    bc_steps: int = 0
    """behaviour-cloning warm-up: the actor maximises log pi(a_data|s) for this many gradient steps"""
    normalize_obs: bool = True
    """standardise observations with the dataset's mean and std (the same statistics at evaluation)"""
    eval_freq: int = 5_000
    """evaluate every this many gradient steps (0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation (periodic and final)"""


def video_spec(env_spec, folder):
    """The eval env's spec with RecordVideo of its first episode added: gym.make applies a spec's additional
    wrappers, so evaluate() films without knowing about it."""
    record = gym.envs.registration.WrapperSpec(
        "RecordVideo", "gymnasium.wrappers:RecordVideo", {"video_folder": folder, "episode_trigger": lambda e: e == 0}
    )
    kwargs = {**env_spec.kwargs, "render_mode": "rgb_array"}
    return dataclasses.replace(env_spec, kwargs=kwargs, additional_wrappers=(*env_spec.additional_wrappers, record))


def check_env(env_id, obs_shape, act_space):
    """Fail with one clear sentence if the eval env (an id, or a dataset's EnvSpec) cannot run a policy for these
    spaces; return its EnvSpec. A dataset's spec need not be registered: gym.make imports its entry point."""
    name = env_id if isinstance(env_id, str) else env_id.id
    if isinstance(env_id, str) and name not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {name!r}; pass a registered Gymnasium env, e.g. --env-id Hopper-v5")
    if name in gym.registry:
        quiet_third_party(name)
    env = gym.make(env_id)
    obs_space, env_act_space = env.observation_space, env.action_space
    env.close()
    if env_act_space != act_space:
        raise SystemExit(f"{SCRIPT}: the eval env {name} has actions {env_act_space}, the policy {act_space}")
    if obs_space.shape != tuple(obs_shape):
        raise SystemExit(f"{SCRIPT}: the eval env {name} has observations {obs_space}, the policy {tuple(obs_shape)}")
    return gym.spec(name) if isinstance(env_id, str) else env_id


def validate(args):
    """Reject nonsensical hyperparameters before anything is written."""
    problems = [
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (not 0.0 < args.tau <= 1.0, f"--tau must be in (0, 1] (got {args.tau})"),
        (not 0.0 < args.gamma <= 1.0, f"--gamma must be in (0, 1] (got {args.gamma})"),
        (args.alpha <= 0, f"--alpha must be > 0 (got {args.alpha})"),
        (args.cql_n_actions < 1 or args.cql_temp <= 0, "--cql-n-actions must be >= 1 and --cql-temp > 0"),
        (args.cql_alpha < 0 or args.eval_freq < 0, "--cql-alpha and --eval-freq must be >= 0"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")


def remote_host():
    """(host, port) of Minari's remote: Hugging Face (HF_ENDPOINT, default huggingface.co) unless MINARI_REMOTE
    names a gcp:// bucket."""
    gcp = os.environ.get("MINARI_REMOTE", "hf://").startswith("gcp://")
    url = urllib.parse.urlsplit(
        "https://storage.googleapis.com" if gcp else os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    )
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def load_dataset(args):
    """Load the Minari dataset (downloading it if allowed), or stop with one sentence saying how to get one."""
    import minari

    if args.dataset_id not in minari.list_local_datasets():
        where = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        get = (
            f"download it with `minari download {args.dataset_id}` where there is network, or make one with "
            f"`python sac_continuous.py --env-id ENV --save-dataset {args.dataset_id}`"
        )
        if not args.download:
            raise SystemExit(f"{SCRIPT}: dataset {args.dataset_id!r} is not in {where}: {get}")
        host, port = remote_host()
        try:  # minari itself retries for about 25 s when the network is down
            socket.create_connection((host, port), timeout=2.0).close()
        except OSError:
            raise SystemExit(
                f"{SCRIPT}: dataset {args.dataset_id!r} is not in {where} and {host} is unreachable: {get}"
            ) from None
        try:
            minari.download_dataset(args.dataset_id)
        except Exception as e:  # an unknown remote id, or the connection failed after all
            reason = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
            raise SystemExit(
                f"{SCRIPT}: dataset {args.dataset_id!r} is not in {where} and could not be downloaded ({reason}); {get}"
            ) from None
    try:
        dataset = minari.load_dataset(args.dataset_id)
    except Exception as e:
        raise SystemExit(f"{SCRIPT}: dataset {args.dataset_id!r} could not be read ({type(e).__name__}: {e})") from None
    act, obs = dataset.action_space, dataset.observation_space
    if not isinstance(act, gym.spaces.Box) or not np.all(np.isfinite(act.low)) or not np.all(np.isfinite(act.high)):
        raise SystemExit(f"{SCRIPT} needs Box actions with finite bounds; dataset {args.dataset_id!r} has {act}")
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise SystemExit(f"{SCRIPT} needs flat Box observations; dataset {args.dataset_id!r} has {obs}")
    return dataset


def dataset_env_spec(dataset):
    """The dataset's evaluation env, else the env it was collected in, as an EnvSpec (without making the env)."""
    eval_json = dataset.storage.metadata.get("eval_env_spec")
    spec = gym.envs.registration.EnvSpec.from_json(eval_json) if eval_json else dataset.env_spec
    if spec is None:
        raise SystemExit(f"{SCRIPT}: dataset {dataset.spec.dataset_id!r} names no env: pass --env-id")
    return spec


def load_transitions(dataset):
    """(obs, actions, rewards, next_obs, terminations) as float32 arrays, built episode by episode.

    Each episode has one more observation than actions: s_t = observations[:-1], s_{t+1} = observations[1:], so no
    transition joins one episode's last state to the next one's first. Only terminations stop bootstrapping: a
    truncated episode's last transition still bootstraps from its real final observation.
    """
    parts = {k: [] for k in FIELDS}
    for ep in dataset.iterate_episodes():
        n = len(ep.actions)
        if len(ep.observations) != n + 1 or len(ep.rewards) != n or len(ep.terminations) != n:
            raise SystemExit(
                f"{SCRIPT}: episode {ep.id} is malformed: {len(ep.observations)} observations and "
                f"{len(ep.rewards)} rewards for {n} actions (expected {n + 1} and {n})"
            )
        arrays = (ep.observations[:-1], ep.actions, ep.rewards, ep.observations[1:], ep.terminations)
        for key, value in zip(FIELDS, arrays):
            parts[key].append(value)
    if not parts["actions"]:
        raise SystemExit(f"{SCRIPT}: the dataset holds no episodes")
    return {k: np.concatenate(v).astype(np.float32) for k, v in parts.items()}


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy on standardised observations, scaled affinely into [low, high]; the
    standardisation statistics are buffers, saved with the weights and applied by act() to raw observations."""

    def __init__(self, obs_dim, act_space, hidden_dim, obs_mean, obs_std):
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
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean, dtype=torch.float32))
        self.register_buffer("obs_std", torch.as_tensor(obs_std, dtype=torch.float32))

    def normalize(self, raw_obs):
        return (raw_obs - self.obs_mean) / self.obs_std

    def forward(self, obs):
        """The pre-tanh Gaussian at standardised observations."""
        h = self.net(obs)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(self.fc_logstd(h)) + 1)
        return torch.distributions.Normal(self.fc_mean(h), log_std.exp())

    def get_action(self, obs, n_samples=()):
        """Reparameterised actions, n_samples of them per state from one network pass (shape [*n_samples,
        *obs.shape[:-1], A]; one per state by default), and their log-densities in the env's action space."""
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
    """Both critics in one module; forward(obs [..., D], action [..., A]) returns Q-values of shape [2, ...]."""

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
        flat = x.reshape(1, -1, x.shape[-1]).expand(2, -1, -1)  # both critics read the same rows
        return self.net(flat).reshape(2, *x.shape[:-1])


def cql_penalty(qf, actor, obs, next_obs, q_data, act_low, act_high, n_actions, temp):
    """Per-critic CQL(H) gap: temp * logsumexp over 3N importance-weighted actions of Q/temp, minus Q(s, a_data).

    The logsumexp estimates log integral exp(Q(s, a)) da with three proposals, N actions each (2006.04779 appendix F):
    uniform over [low, high] (density 1 / prod(high - low)), the policy at s, and the policy at s' (evaluated at s);
    each Q minus its proposal's log-density. The sampled actions are constants: the penalty trains the critics only.
    Returns a [2] tensor (one gap per critic, averaged over the batch).
    """
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
    """Both critics' squared TD error plus the CQL(H) penalty weighted by --cql-alpha (2006.04779 Eq. 4); with
    --cql-lagrange, alpha_prime * cql_alpha * (gap - target gap) (Eq. 30; alpha_prime is a constant here).
    Returns (total, TD part, per-critic gap [2] or None when --cql-alpha is 0, Q(s, a_data) [2, B])."""
    obs, actions, rewards, next_obs, terminations = batch
    target = td_target(qf_target, actor, alpha, rewards, next_obs, terminations, args.gamma,
                       args.cql_max_target_backup, args.cql_n_actions, args.backup_entropy)  # fmt: skip
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
    alpha_prime = log_alpha_prime.exp().clamp(0.0, 1e6)
    return -(alpha_prime * cql_alpha * (gap.detach() - target_gap)).sum()


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


def evaluate(actor, env_id, episodes, seed, device):
    """Deterministic policy (tanh of the mean) on an env of its own (env_id: an id or an EnvSpec); returns the list
    of episodic returns."""
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


def normalized_score(dataset, returns):
    """D4RL's 100 * (return - ref_min) / (ref_max - ref_min) when the dataset has reference scores, else None."""
    meta = dataset.storage.metadata if dataset is not None else {}
    if meta.get("ref_min_score") is None or meta.get("ref_max_score") is None:
        return None
    return 100.0 * (np.mean(returns) - meta["ref_min_score"]) / (meta["ref_max_score"] - meta["ref_min_score"])


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
    obs_dim = ckpt["actor"]["obs_mean"].shape[0]
    env_spec = check_env(args.env_id or ckpt["env_spec"], (obs_dim,), ckpt["act_space"])
    actor = Actor(obs_dim, ckpt["act_space"], ckpt["args"]["hidden_dim"], np.zeros(obs_dim), np.ones(obs_dim))
    actor.to(device).load_state_dict(ckpt["actor"])  # the normalisation statistics too
    report_eval(evaluate(actor, env_spec, args.eval_episodes, args.seed, device), None, 0)


def main(args):
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    if args.eval_checkpoint:
        return run_evaluation_only(args, device)
    validate(args)
    dataset = load_dataset(args)
    data = load_transitions(dataset)
    n_data, act_space = len(data["actions"]), dataset.action_space
    if args.batch_size > n_data:
        raise SystemExit(f"{SCRIPT}: --batch-size {args.batch_size} is larger than the dataset ({n_data} transitions)")
    env_spec = check_env(args.env_id or dataset_env_spec(dataset), data["obs"].shape[1:], act_space)
    ckpt = load_resume(args) if args.resume else None
    name = args.dataset_id.replace("/", "-")
    run_name = ckpt["run_name"] if ckpt else f"{name}__{args.exp_name}__{args.seed}__{int(time.time())}"
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.threads or torch.get_num_threads())

    obs_dim, act_dim = data["obs"].shape[1], int(np.prod(act_space.shape))
    obs_mean, obs_std = data["obs"].mean(0), data["obs"].std(0) + 1e-3
    if not args.normalize_obs:
        obs_mean, obs_std = np.zeros_like(obs_mean), np.ones_like(obs_std)
    actor = Actor(obs_dim, act_space, args.hidden_dim, obs_mean, obs_std).to(device)
    tensors = {k: torch.as_tensor(v, device=device) for k, v in data.items()}
    for key in ("obs", "next_obs"):  # the critics and the actor train on standardised observations
        tensors[key] = actor.normalize(tensors[key])
    qf = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device)
    qf_target = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device).requires_grad_(False)
    qf_target.load_state_dict(qf.state_dict())
    log_alpha = torch.tensor(args.alpha, device=device).log().requires_grad_(args.autotune)
    log_alpha_prime = torch.zeros((), device=device, requires_grad=True)  # alpha' = 1 at the start
    target_entropy = -float(act_dim)  # 1812.05905 section 5: the heuristic target entropy -dim(A)
    act_low, act_high = (
        torch.as_tensor(b, dtype=torch.float32, device=device) for b in (act_space.low, act_space.high)
    )
    parts = {  # everything with a state_dict that a checkpoint keeps; fused Adam: one kernel for all parameters
        "actor": actor, "qf": qf, "qf_target": qf_target,
        "q_optimizer": torch.optim.Adam(qf.parameters(), lr=args.q_lr, fused=True),
        "actor_optimizer": torch.optim.Adam(actor.parameters(), lr=args.policy_lr, fused=True),
        "a_optimizer": torch.optim.Adam([log_alpha], lr=args.alpha_lr, fused=True),
        "prime_optimizer": torch.optim.Adam([log_alpha_prime], lr=args.q_lr, fused=True),
    }  # fmt: skip
    q_optimizer, actor_optimizer, a_optimizer, prime_optimizer = (
        parts[k] for k in ("q_optimizer", "actor_optimizer", "a_optimizer", "prime_optimizer")
    )
    counters = {"global_step": 0, "wandb_id": None}  # global_step counts gradient steps
    if ckpt:
        for k, part in parts.items():
            part.load_state_dict(ckpt[k])
        with torch.no_grad():
            log_alpha.copy_(ckpt["log_alpha"])
            log_alpha_prime.copy_(ckpt["log_alpha_prime"])
        counters = ckpt["counters"]
        restore_run(ckpt, None, args.seed)
    wandb = init_wandb(args, run_name, counters["wandb_id"]) if args.track else None
    counters["wandb_id"] = wandb.run.id if wandb else None
    path = f"runs/{run_name}/{args.exp_name}.pt"

    def checkpoint():
        state = {k: v.state_dict() for k, v in parts.items()}
        run = {"script": SCRIPT, "args": vars(args), "run_name": run_name, "counters": counters, "rng": rng_state(None)}
        run.update(env_spec=env_spec, act_space=act_space, log_alpha=log_alpha.detach().cpu())
        save_checkpoint(path, {**run, "log_alpha_prime": log_alpha_prime.detach().cpu(), **state})

    def run_eval(spec):
        """Returns the eval returns and the D4RL normalized score as text ('' without reference scores)."""
        returns = evaluate(actor, spec, args.eval_episodes, args.seed + 10_000, device)
        score = normalized_score(dataset, returns)
        if wandb and score is not None:
            wandb.log({"eval/normalized_score": score}, step=counters["global_step"])
        return returns, "" if score is None else f", normalized_score={score:.1f}"

    lr = f"{args.policy_lr}/{args.q_lr}"
    print_header(args.dataset_id, device, run_name, args.total_timesteps, eval_env=env_spec.id, transitions=n_data,
                 batch=args.batch_size, lr=lr, cql_alpha=args.cql_alpha)  # fmt: skip
    start_step, start_time, stop = counters["global_step"], time.time(), StopSignal()
    progress = Progress(args.total_timesteps, start_step)
    try:
        while counters["global_step"] < args.total_timesteps and stop.signum is None:
            global_step = counters["global_step"] = counters["global_step"] + 1
            idx = torch.randint(0, n_data, (args.batch_size,), device=device)
            batch = tuple(tensors[k][idx] for k in FIELDS)
            alpha = log_alpha.detach().exp()

            qf.requires_grad_(False)  # the actor step needs no weight gradients of the critics
            pi_loss, log_prob = actor_loss(actor, qf, alpha, batch[0], batch[1], global_step <= args.bc_steps)
            actor_optimizer.zero_grad(set_to_none=True)
            pi_loss.backward()
            actor_optimizer.step()
            qf.requires_grad_(True)
            if args.autotune:
                a_loss = alpha_loss(log_alpha, log_prob, target_entropy)
                a_optimizer.zero_grad(set_to_none=True)
                a_loss.backward()
                a_optimizer.step()

            # with --cql-lagrange, the penalty weight alpha' as it was before this step's update of it
            alpha_prime = log_alpha_prime.detach().exp().clamp(0.0, 1e6) if args.cql_lagrange else None
            qf_loss, td_loss, gap, q_data = critic_loss(qf, qf_target, actor, alpha, alpha_prime, batch, act_low,
                                                        act_high, args)  # fmt: skip
            if args.cql_lagrange and gap is not None:
                prime_loss = lagrange_loss(log_alpha_prime, gap, args.cql_alpha, args.cql_target_action_gap)
                prime_optimizer.zero_grad(set_to_none=True)
                prime_loss.backward()
                prime_optimizer.step()
            q_optimizer.zero_grad(set_to_none=True)
            qf_loss.backward()
            q_optimizer.step()
            with torch.no_grad():
                torch._foreach_lerp_(list(qf_target.parameters()), list(qf.parameters()), args.tau)

            if global_step % 100 == 0:  # the only host reads of the losses
                metrics = {"losses/qf_loss": qf_loss.item(), "losses/td_loss": td_loss.item(),
                           "losses/actor_loss": pi_loss.item(), "losses/alpha": alpha.item(),
                           "losses/q_data": q_data.mean().item()}  # fmt: skip
                metrics.update({"losses/cql_gap": gap.mean().item()} if gap is not None else {})
                check_finite(metrics, global_step)
                if wandb:
                    sps = (global_step - start_step) / (time.time() - start_time)
                    wandb.log({**metrics, "charts/SPS": sps}, step=global_step)
            if args.eval_freq and args.eval_episodes and global_step % args.eval_freq == 0:
                if global_step < args.total_timesteps:  # the final evaluation comes after the loop
                    returns, score = run_eval(env_spec)
                    tqdm.write(f"global_step={global_step}, eval_return={np.mean(returns):.2f}{score}")
                    progress.last_return = float(np.mean(returns))  # the progress line shows the latest eval
                    if wandb:
                        wandb.log({"eval/episodic_return": float(np.mean(returns))}, step=global_step)
            if args.checkpoint_every and global_step % args.checkpoint_every == 0:
                checkpoint()
            progress.update(global_step)
    except FloatingPointError as e:
        finish_wandb(wandb, run_name, counters["global_step"], exit_code=1)
        raise SystemExit(f"{SCRIPT}: non-finite loss, stopping: {e}. Try a lower --q-lr or --cql-alpha.") from None
    progress.close()
    stop.release()
    global_step = counters["global_step"]
    print(f"SPS={(global_step - start_step) / (time.time() - start_time):.1f} (gradient steps: {global_step})")
    if args.save_model or args.checkpoint_every:
        checkpoint()
        print(f"checkpoint saved to {path}")
    if stop.signum is not None:
        saved = f"resume with --resume {path}" if args.save_model or args.checkpoint_every else "no checkpoint saved"
        print(f"stopped by {signal.Signals(stop.signum).name} at global_step={global_step}: {saved}")
        finish_wandb(wandb, run_name, global_step, exit_code=128 + stop.signum)
        sys.exit(128 + stop.signum)
    if args.eval_episodes > 0:
        spec = video_spec(env_spec, f"runs/{run_name}/videos") if args.capture_video else env_spec
        returns, score = run_eval(spec)
        report_eval(returns, wandb, global_step, extra=score)
    finish_wandb(wandb, run_name, global_step)


if __name__ == "__main__":
    main(parse_args())
