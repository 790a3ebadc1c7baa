# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4", "gymnasium[classic-control,box2d,mujoco]>=1.1", "tyro", "wandb", "numpy", "moviepy", "minari[hf]>=0.5", "h5py"]
# ///
"""Conservative Q-Learning (CQL(H)) for offline RL on Box actions, from a Minari dataset.

CQL trains SAC's twin critics on a fixed dataset and adds a penalty that pushes Q down on actions that a uniform
proposal or the policy would pick (a logsumexp over sampled actions) and up on the dataset's own actions, so that the
learned Q stays a lower bound where the data says nothing. Paper: Kumar et al. 2020, "Conservative Q-Learning for
Offline Reinforcement Learning" (arXiv 2006.04779), CQL(H) Eq. 4 with the importance-sampled logsumexp of its
appendix F; the SAC backbone follows arXiv 1801.01290 / 1812.05905; other defaults follow the paper's code and CORL.

    python cql.py --dataset-id pendulum/sac-replay-v0

`--total-timesteps` counts gradient steps (the environment is only used for evaluation).
Deliberate choices: a deterministic backup (no entropy term in the target) by default, as in the paper's Gym runs;
uniform actions are drawn over the env's real [low, high] per dimension with log-density -sum(log(high - low)), not
log(0.5^|A|) of a [-1, 1] box. Deviations, so that small tasks learn in minutes on a CPU: 2 hidden layers of 64
units, policy lr 3e-4 and critic lr 1e-3 by default (the paper and CORL: 3 x 256, 3e-5 or 1e-4, 3e-4); for the MuJoCo
datasets pass --hidden-dim 256 --policy-lr 1e-4 --q-lr 3e-4 --total-timesteps 1000000.
"""

import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """if toggled, sets `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """use CUDA when available"""
    track: bool = False
    """track the run with Weights & Biases"""
    wandb_project_name: str = "cleanrl"
    """the W&B project name"""
    wandb_entity: Optional[str] = None
    """the W&B entity (team)"""
    capture_video: bool = False
    """record videos of the evaluation env into runs/{run_name}/videos (and W&B with --track)"""
    save_model: bool = False
    """save the actor (with its normalisation statistics) and critics to runs/{run_name}/{exp_name}.pt"""
    eval_checkpoint: Optional[str] = None
    """evaluate this --save-model checkpoint instead of training"""

    dataset_id: str = "mujoco/hopper/medium-v0"
    """the Minari dataset id (looked up in MINARI_DATASETS_PATH, default ~/.minari/datasets)"""
    download: bool = True
    """download the dataset when it is not found locally (needs network access)"""
    env_id: Optional[str] = None
    """evaluation env id; default: the dataset's own eval env (or the env it was collected in)"""
    total_timesteps: int = 5_000
    """number of GRADIENT steps (offline: the environment is only used for evaluation)"""
    num_envs: int = 1
    """parallel evaluation envs (the eval episodes are split between them)"""
    gamma: float = 0.99
    """the discount factor"""
    eval_episodes: int = 10
    """episodes per evaluation (periodic and final)"""
    eval_freq: int = 1_000
    """evaluate every this many gradient steps (0: only at the end)"""
    batch_size: int = 256
    """the batch size of sampled transitions"""
    policy_lr: float = 3e-4
    """the learning rate of the actor"""
    q_lr: float = 1e-3
    """the learning rate of the critics and of the Lagrange multiplier"""
    alpha_lr: float = 3e-4
    """the learning rate of the SAC entropy temperature"""
    tau: float = 0.005
    """target smoothing coefficient (Polyak averaging)"""
    hidden_dim: int = 64
    """width of the two hidden layers of the actor and of each critic"""
    autotune: bool = True
    """tune the SAC temperature towards a target entropy of -|A| (--no-autotune: fixed --alpha)"""
    alpha: float = 1.0
    """the SAC temperature: its initial value with --autotune, else fixed"""
    cql_alpha: float = 5.0
    """weight of the conservative penalty (0 gives plain offline SAC)"""
    cql_n_actions: int = 10
    """sampled actions per state for the logsumexp: this many uniform, policy-at-s and policy-at-s' actions each"""
    cql_temp: float = 1.0
    """temperature of the logsumexp"""
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


def make_env(env_spec, idx, capture_video, run_name):
    """Evaluation env from a gymnasium EnvSpec (the dataset's recovered env keeps its kwargs)."""

    def thunk():
        render = "rgb_array" if capture_video and idx == 0 else None
        env = gym.make(env_spec, render_mode=render)
        if render:
            env = gym.wrappers.RecordVideo(env, f"runs/{run_name}/videos", episode_trigger=lambda e: e == 0)
        return gym.wrappers.RecordEpisodeStatistics(env)

    return thunk


def load_dataset(args):
    """Load the Minari dataset, or stop with one sentence naming what was found."""
    import minari

    if args.dataset_id not in minari.list_local_datasets():
        where = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        if not args.download:
            raise SystemExit(f"cql.py: dataset {args.dataset_id!r} is not in {where}: create it (sac_continuous.py --save-dataset) or drop --no-download")
        try:
            minari.download_dataset(args.dataset_id)
        except Exception as e:  # an unknown remote id, or no network
            raise SystemExit(f"cql.py: dataset {args.dataset_id!r} is not in {where} and could not be downloaded ({type(e).__name__}: {str(e).splitlines()[0][:200]}); check the id with `minari list remote` or create it locally")
    try:
        dataset = minari.load_dataset(args.dataset_id)
    except Exception as e:
        raise SystemExit(f"cql.py: dataset {args.dataset_id!r} could not be read ({type(e).__name__}: {e}); re-create or re-download it")
    act, obs = dataset.action_space, dataset.observation_space
    if not isinstance(act, gym.spaces.Box) or not np.all(np.isfinite(act.low)) or not np.all(np.isfinite(act.high)):
        raise SystemExit(f"cql.py needs Box actions with finite bounds; dataset {args.dataset_id!r} has {act} (discrete-action CQL is not supported yet)")
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise SystemExit(f"cql.py needs flat Box observations; dataset {args.dataset_id!r} has {obs}")
    return dataset


def load_transitions(dataset):
    """(obs, actions, rewards, next_obs, terminations) as float32 arrays, built episode by episode.

    Each episode has one more observation than actions: s_t = observations[:-1], s_{t+1} = observations[1:], so no
    transition joins one episode's last state to the next one's first. Only terminations stop bootstrapping: a
    truncated episode's last transition still bootstraps from its real final observation.
    """
    parts = {k: [] for k in ("obs", "actions", "rewards", "next_obs", "terminations")}
    for ep in dataset.iterate_episodes():
        n = len(ep.actions)
        if len(ep.observations) != n + 1 or len(ep.rewards) != n or len(ep.terminations) != n:
            raise SystemExit(f"cql.py: episode {ep.id} is malformed: {len(ep.observations)} observations and {len(ep.rewards)} rewards for {n} actions (expected {n + 1} and {n})")
        for key, value in zip(parts, (ep.observations[:-1], ep.actions, ep.rewards, ep.observations[1:], ep.terminations)):
            parts[key].append(value)
    if not parts["actions"]:
        raise SystemExit("cql.py: the dataset holds no episodes")
    return {k: np.concatenate(v).astype(np.float32) for k, v in parts.items()}


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy on standardised observations; the statistics are buffers saved with it."""

    def __init__(self, obs_dim, act_space, hidden_dim, obs_mean, obs_std):
        super().__init__()
        act_dim = int(np.prod(act_space.shape))
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU())
        self.fc_mean = nn.Linear(hidden_dim, act_dim)
        self.fc_logstd = nn.Linear(hidden_dim, act_dim)
        low, high = torch.as_tensor(act_space.low, dtype=torch.float32), torch.as_tensor(act_space.high, dtype=torch.float32)
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

    def get_action(self, obs):
        """Sampled action and its log-density in the env's action space, and the deterministic action."""
        normal = self(obs)
        u = normal.rsample()
        action = torch.tanh(u) * self.action_scale + self.action_bias
        return action, squashed_log_prob(normal.log_prob(u), u, self.action_scale), torch.tanh(normal.mean) * self.action_scale + self.action_bias

    def log_prob(self, obs, action):
        """log pi(a|s) of given (dataset) actions, for the behaviour-cloning warm-up."""
        u = torch.atanh(((action - self.action_bias) / self.action_scale).clamp(-1 + 1e-6, 1 - 1e-6))
        return squashed_log_prob(self(obs).log_prob(u), u, self.action_scale)


def squashed_log_prob(gaussian_log_prob, u, action_scale):
    """log pi(a) for a = scale * tanh(u) + bias: subtract log|da/du| = log scale + log(1 - tanh(u)^2) per dim."""
    log_det = 2.0 * (np.log(2.0) - u - F.softplus(-2.0 * u)) + torch.log(action_scale)
    return (gaussian_log_prob - log_det).sum(-1)


class EnsembleLinear(nn.Module):
    """`n` independent linear layers applied in one batched matmul: input [n, B, in] -> output [n, B, out]."""

    def __init__(self, n, in_features, out_features):
        super().__init__()
        bound = 1.0 / np.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_features).uniform_(-bound, bound))

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQ(nn.Module):
    """Both critics in one module; forward(obs [..., D], action [..., A]) returns Q-values of shape [2, ...]."""

    def __init__(self, obs_dim, act_dim, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(EnsembleLinear(2, obs_dim + act_dim, hidden_dim), nn.ReLU(),
                                 EnsembleLinear(2, hidden_dim, hidden_dim), nn.ReLU(), EnsembleLinear(2, hidden_dim, 1))

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
        # one actor pass for the policy's actions at s and at s': [2, B, N, A]
        pi_actions, pi_log_prob, _ = actor.get_action(torch.stack([obs, next_obs]).unsqueeze(2).expand(2, batch, n_actions, obs_dim))
        actions = torch.cat([uniform, pi_actions[0], pi_actions[1]], dim=1)  # [B, 3N, A]
        log_density = torch.cat([uniform_log_density, pi_log_prob[0], pi_log_prob[1]], dim=1)  # [B, 3N]
    # one critic pass on all 3N proposals; contiguous rows, so the batched matmul reads plain memory
    q = qf(obs.unsqueeze(1).expand(batch, 3 * n_actions, obs_dim).contiguous(), actions)  # [2, B, 3N]
    logsumexp = torch.logsumexp((q - log_density) / temp, dim=-1) * temp
    return (logsumexp - q_data).mean(dim=1)


def td_target(qf_target, actor, alpha, rewards, next_obs, terminations, gamma, max_backup, n_actions, backup_entropy):
    """r + gamma * (1 - terminated) * V(s'), V from the min of the target critics at the policy's action(s) at s'."""
    with torch.no_grad():
        if max_backup:  # the best of N policy samples per state (2006.04779 appendix F, "max-backup")
            rep = next_obs.unsqueeze(1).expand(next_obs.shape[0], n_actions, next_obs.shape[-1])
            actions, log_prob, _ = actor.get_action(rep)
            next_v, idx = qf_target(rep, actions).min(dim=0).values.max(dim=-1)
            next_log_prob = log_prob.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        else:
            actions, next_log_prob, _ = actor.get_action(next_obs)
            next_v = qf_target(next_obs, actions).min(dim=0).values
        if backup_entropy:
            next_v = next_v - alpha * next_log_prob
        return rewards + gamma * (1.0 - terminations) * next_v  # a truncation bootstraps; only termination stops it


def actor_loss(actor, qf, alpha, obs, data_actions, behaviour_cloning):
    """SAC's E[alpha log pi - min Q]; during the warm-up, E[alpha log pi - log pi(a_data|s)] (behaviour cloning)."""
    actions, log_prob, _ = actor.get_action(obs)
    if behaviour_cloning:
        return (alpha * log_prob - actor.log_prob(obs, data_actions)).mean(), log_prob
    return (alpha * log_prob - qf(obs, actions).min(dim=0).values).mean(), log_prob


def alpha_loss(log_alpha, log_prob, target_entropy):
    """1812.05905 Eq. 18: alpha grows when the entropy -log pi falls below the target."""
    return (-log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


def evaluate(actor, envs, episodes, seed, device):
    """Deterministic policy on the eval vector env; each env runs its share of the episodes. Returns the returns."""
    n = envs.num_envs
    quota = [episodes // n + (i < episodes % n) for i in range(n)]
    returns = [[] for _ in range(n)]
    obs, _ = envs.reset(seed=seed)
    while any(len(r) < q for r, q in zip(returns, quota)):
        with torch.no_grad():
            actions = actor.get_action(actor.normalize(torch.as_tensor(obs, dtype=torch.float32, device=device)))[2]
        obs, _, _, _, infos = envs.step(actions.cpu().numpy())
        final_info = infos.get("final_info", {})
        for i in np.flatnonzero(final_info.get("_episode", [])):
            if len(returns[i]) < quota[i]:
                returns[i].append(float(final_info["episode"]["r"][i]))
    return [r for env_returns in returns for r in env_returns]


def make_eval_envs(env_spec, args, run_name):
    return gym.vector.SyncVectorEnv([make_env(env_spec, i, args.capture_video, run_name) for i in range(args.num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def normalized_score(dataset, returns):
    """D4RL's 100 * (return - ref_min) / (ref_max - ref_min) when the dataset has reference scores, else None."""
    meta = dataset.storage.metadata if dataset is not None else {}
    if meta.get("ref_min_score") is None or meta.get("ref_max_score") is None:
        return None
    return 100.0 * (np.mean(returns) - meta["ref_min_score"]) / (meta["ref_max_score"] - meta["ref_min_score"])


def validate(args):
    for bad, message in [
        (args.total_timesteps < 1, f"--total-timesteps (gradient steps) must be >= 1 (got {args.total_timesteps})"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (args.num_envs < 1 or args.eval_episodes < 1, "--num-envs and --eval-episodes must be >= 1"),
        (args.cql_n_actions < 1 or args.cql_temp <= 0, "--cql-n-actions must be >= 1 and --cql-temp > 0"),
        (args.cql_alpha < 0 or args.eval_freq < 0, "--cql-alpha and --eval-freq must be >= 0"),
    ]:
        if bad:
            raise SystemExit(f"cql.py: {message}")


def run_evaluation_only(args, device):
    if not os.path.isfile(args.eval_checkpoint):
        raise SystemExit(f"cql.py: checkpoint {args.eval_checkpoint!r} not found: pass a file written by --save-model")
    ckpt = torch.load(args.eval_checkpoint, map_location=device, weights_only=False)
    env_spec = gym.spec(args.env_id) if args.env_id else gym.envs.registration.EnvSpec.from_json(ckpt["env_spec"])
    obs_dim = ckpt["actor"]["obs_mean"].shape[0]
    actor = Actor(obs_dim, gym.make(env_spec).action_space, ckpt["args"]["hidden_dim"], torch.zeros(obs_dim), torch.ones(obs_dim)).to(device)
    actor.load_state_dict(ckpt["actor"])  # restores the normalisation statistics too
    envs = make_eval_envs(env_spec, args, "")
    returns = evaluate(actor, envs, args.eval_episodes, args.seed, device)
    print(f"eval/episodic_return={np.mean(returns):.2f} (std {np.std(returns):.2f} over {len(returns)} episodes)")
    envs.close()


def main(args):
    """Train CQL; returns the trained actor, critics and the (standardised) transitions, for the tests."""
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    if args.eval_checkpoint:
        return run_evaluation_only(args, device)
    validate(args)
    dataset = load_dataset(args)
    data = load_transitions(dataset)
    n_data = len(data["actions"])
    if args.batch_size > n_data:
        raise SystemExit(f"cql.py: --batch-size {args.batch_size} is larger than the dataset ({n_data} transitions): lower it")
    try:  # the eval env: --env-id, else the dataset's eval env (or the env it was collected in)
        env_spec = gym.spec(args.env_id) if args.env_id else dataset.recover_environment(eval_env=True).spec
    except (gym.error.Error, ValueError) as e:
        raise SystemExit(f"cql.py: no evaluation env ({type(e).__name__}: {e}); pass a registered --env-id")
    if args.env_id and gym.make(env_spec).action_space != dataset.action_space:
        raise SystemExit(f"cql.py: --env-id {args.env_id} has actions {gym.make(env_spec).action_space} but the dataset has {dataset.action_space}")
    run_name = f"{args.dataset_id.replace('/', '-')}__{args.exp_name}__{args.seed}__{int(time.time())}"

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic

    obs_dim, act_space = data["obs"].shape[1], dataset.action_space
    act_dim = int(np.prod(act_space.shape))
    obs_mean, obs_std = data["obs"].mean(0), data["obs"].std(0) + 1e-3
    if not args.normalize_obs:
        obs_mean, obs_std = np.zeros_like(obs_mean), np.ones_like(obs_std)
    actor = Actor(obs_dim, act_space, args.hidden_dim, obs_mean, obs_std).to(device)
    tensors = {k: torch.as_tensor(v, device=device) for k, v in data.items()}
    for key in ("obs", "next_obs"):  # the critics and the actor train on standardised observations
        tensors[key] = actor.normalize(tensors[key])
    qf = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device)
    qf_target = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device)
    qf_target.load_state_dict(qf.state_dict())
    q_optimizer = torch.optim.Adam(qf.parameters(), lr=args.q_lr)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.policy_lr)
    target_entropy = -float(act_dim)
    log_alpha = torch.tensor(np.log(args.alpha), dtype=torch.float32, device=device, requires_grad=args.autotune)
    a_optimizer = torch.optim.Adam([log_alpha], lr=args.alpha_lr) if args.autotune else None
    log_alpha_prime = torch.zeros((), device=device, requires_grad=True)
    prime_optimizer = torch.optim.Adam([log_alpha_prime], lr=args.q_lr)
    act_low = torch.as_tensor(act_space.low, dtype=torch.float32, device=device)
    act_high = torch.as_tensor(act_space.high, dtype=torch.float32, device=device)

    eval_envs = make_eval_envs(env_spec, args, run_name)
    wandb = None
    if args.track:
        import wandb
        wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args), name=run_name, save_code=True)
    os.makedirs(f"runs/{run_name}", exist_ok=True)
    print(f"dataset {args.dataset_id}: {dataset.total_episodes} episodes, {n_data} transitions; evaluating on {env_spec.id}")

    def run_eval(step):
        """Periodic line `global_step=..., eval_return=...`; the caller prints the final eval/episodic_return line."""
        returns = evaluate(actor, eval_envs, args.eval_episodes, args.seed + 10_000, device)
        score = normalized_score(dataset, returns)
        score_text = f", normalized_score={score:.1f}" if score is not None else ""
        print(f"global_step={step}, eval_return={np.mean(returns):.2f}{score_text}")
        if wandb:
            wandb.log({"eval/episodic_return": float(np.mean(returns)), **({"eval/normalized_score": score} if score is not None else {})}, step=step)
        return returns, score_text

    start_time = last_print = time.time()
    step, interrupted, last_eval = 0, False, float("nan")
    try:
        for step in range(1, args.total_timesteps + 1):
            idx = torch.randint(0, n_data, (args.batch_size,), device=device)
            obs, actions, rewards, next_obs, terminations = (tensors[k][idx] for k in ("obs", "actions", "rewards", "next_obs", "terminations"))
            alpha = log_alpha.detach().exp()

            pi_loss, log_prob = actor_loss(actor, qf, alpha, obs, actions, behaviour_cloning=step <= args.bc_steps)
            actor_optimizer.zero_grad()
            pi_loss.backward()
            actor_optimizer.step()
            if args.autotune:
                a_loss = alpha_loss(log_alpha, log_prob, target_entropy)
                a_optimizer.zero_grad()
                a_loss.backward()
                a_optimizer.step()

            target = td_target(qf_target, actor, alpha, rewards, next_obs, terminations, args.gamma,
                               args.cql_max_target_backup, args.cql_n_actions, args.backup_entropy)
            q_data = qf(obs, actions)  # [2, B]
            qf_loss = td_loss = ((q_data - target) ** 2).mean(dim=1).sum()
            if args.cql_alpha > 0:
                gap = cql_penalty(qf, actor, obs, next_obs, q_data, act_low, act_high, args.cql_n_actions, args.cql_temp)
                if args.cql_lagrange:  # alpha' >= 0 grows while the gap exceeds its target (2006.04779 Eq. 30)
                    alpha_prime = log_alpha_prime.exp().clamp(0.0, 1e6)
                    qf_loss = td_loss + (alpha_prime.detach() * args.cql_alpha * (gap - args.cql_target_action_gap)).sum()
                    prime_loss = -(alpha_prime * args.cql_alpha * (gap.detach() - args.cql_target_action_gap)).sum()
                    prime_optimizer.zero_grad()
                    prime_loss.backward()
                    prime_optimizer.step()
                else:
                    qf_loss = td_loss + args.cql_alpha * gap.sum()  # Eq. 4, one gap per critic
            q_optimizer.zero_grad()
            qf_loss.backward()
            q_optimizer.step()
            with torch.no_grad():
                torch._foreach_lerp_(list(qf_target.parameters()), list(qf.parameters()), args.tau)

            if step % 500 == 0:
                losses = {"losses/qf_loss": qf_loss.item(), "losses/td_loss": td_loss.item(), "losses/actor_loss": pi_loss.item(),
                          "losses/alpha": alpha.item(), "losses/q_data": q_data.mean().item()}
                if args.cql_alpha > 0:
                    losses["losses/cql_gap"] = gap.mean().item()
                bad = [k for k, v in losses.items() if not np.isfinite(v)]
                if bad:
                    raise FloatingPointError(f"{bad[0]} became {losses[bad[0]]} at gradient step {step}")
                if wandb:
                    wandb.log({**losses, "charts/SPS": int(step / (time.time() - start_time))}, step=step)
            if args.eval_freq and step % args.eval_freq == 0 and step < args.total_timesteps:
                last_eval = float(np.mean(run_eval(step)[0]))
            if time.time() - last_print > 5:
                last_print = time.time()
                sps = step / (last_print - start_time)
                eta = time.strftime("%H:%M:%S", time.gmtime((args.total_timesteps - step) / max(sps, 1e-9)))
                print(f"progress: step {step}/{args.total_timesteps} ({100 * step / args.total_timesteps:.0f}%) | SPS {sps:.0f} | last eval {last_eval:.1f} | ETA {eta}")
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at gradient step {step}", file=sys.stderr)
    except FloatingPointError as e:
        eval_envs.close()
        raise SystemExit(f"cql.py: non-finite loss, stopping: {e}. Try a lower --q-lr or --cql-alpha.")

    print(f"SPS={step / max(time.time() - start_time, 1e-9):.1f} (gradient steps: {step})")
    if args.save_model:
        path = f"runs/{run_name}/{args.exp_name}.pt"
        torch.save({"args": vars(args), "env_spec": env_spec.to_json(), "actor": actor.state_dict(),
                    "qf": qf.state_dict(), "qf_target": qf_target.state_dict()}, path + ".tmp")
        os.replace(path + ".tmp", path)
        print(f"model saved to {path}")
    returns = None
    if not interrupted:
        returns, score_text = run_eval(step)
        print(f"eval/episodic_return={np.mean(returns):.2f} (std {np.std(returns):.2f} over {len(returns)} episodes){score_text}")
    eval_envs.close()
    if wandb:
        if args.capture_video:
            for root, _, files in os.walk(f"runs/{run_name}/videos"):
                for f in sorted(files):
                    if f.endswith(".mp4"):
                        wandb.log({"videos": wandb.Video(os.path.join(root, f))}, step=step)
        wandb.finish()
    return {"actor": actor, "qf": qf, "data": tensors, "eval_returns": returns}


if __name__ == "__main__":
    main(tyro.cli(Args))
