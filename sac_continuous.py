# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4", "gymnasium[classic-control,box2d,mujoco]>=1.1", "tyro", "wandb", "numpy", "moviepy", "minari>=0.5", "h5py"]
# ///
"""Soft Actor-Critic for continuous (Box) action spaces.

SAC maximises reward plus policy entropy: a tanh-squashed Gaussian actor, twin Q critics whose minimum forms the
target, Polyak-averaged target critics, and a temperature alpha tuned so the policy's entropy tracks -|A|.
Papers: Haarnoja et al. 2018, "Soft Actor-Critic" (arXiv 1801.01290) and "Soft Actor-Critic Algorithms and
Applications" (arXiv 1812.05905, automatic temperature, Eq. 17-18 below).

    python sac_continuous.py --env-id Pendulum-v1 --total-timesteps 15000 --learning-starts 1000

Deliberate deviations, all shared with CleanRL so its flags keep their meaning: delayed policy updates
(`--policy-frequency` actor steps every `--policy-frequency` critic steps), and the temperature loss is written on
alpha = exp(log_alpha) rather than on log_alpha. The twin critics are one batched module (same math, faster).
`--save-dataset` writes the replay buffer or fresh policy episodes as a Minari dataset, for cql.py.
"""

import glob
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Literal, Optional

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
    """use CUDA when it is available"""
    track: bool = False
    """track the run with Weights & Biases"""
    wandb_project_name: str = "cleanrl"
    """the W&B project name"""
    wandb_entity: Optional[str] = None
    """the W&B entity (team)"""
    capture_video: bool = False
    """record videos of the first training env into runs/{run_name}/videos (and W&B with --track)"""
    save_model: bool = False
    """save the actor, critics and temperature to runs/{run_name}/{exp_name}.pt"""
    eval_checkpoint: Optional[str] = None
    """evaluate this --save-model checkpoint instead of training"""

    env_id: str = "Pendulum-v1"
    """the id of the environment (any Box-action env)"""
    total_timesteps: int = 1_000_000
    """total environment steps, summed over all envs"""
    num_envs: int = 1
    """parallel envs; each vector step adds num_envs transitions and makes ONE gradient step, so the update-to-data ratio is 1/num_envs"""
    buffer_size: int = 1_000_000
    """the replay memory size, in transitions"""
    gamma: float = 0.99
    """the discount factor"""
    tau: float = 0.005
    """target smoothing coefficient (Polyak averaging)"""
    batch_size: int = 256
    """the batch size of sampled transitions"""
    learning_starts: int = 5_000
    """env steps of uniform random actions before learning starts"""
    policy_lr: float = 3e-4
    """the learning rate of the actor"""
    q_lr: float = 1e-3
    """the learning rate of the critics"""
    policy_frequency: int = 2
    """actor (and alpha) update every this many critic updates, repeated this many times (delayed, as in CleanRL)"""
    target_network_frequency: int = 1
    """the frequency of target network updates, in critic updates"""
    hidden_dim: int = 256
    """width of the two hidden layers of every network"""
    alpha: float = 0.2
    """entropy temperature; the initial value when --autotune is on"""
    autotune: bool = True
    """automatic tuning of alpha towards a target entropy of -|A| (--no-autotune keeps alpha fixed)"""
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
        # per-env statistics: the vector version drops steps under SAME_STEP autoreset (DESIGN.md section 3)
        return gym.wrappers.RecordEpisodeStatistics(env)

    return thunk


def check_env(env_id):
    """Fail with one clear sentence if this script cannot handle env_id; return the env's spaces."""
    try:
        env = gym.make(env_id)
    except gym.error.Error as e:
        raise SystemExit(f"sac_continuous.py: unknown env id {env_id!r} ({e}); pick a registered Gymnasium env with Box actions, e.g. Pendulum-v1")
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(act_space, gym.spaces.Box):
        raise SystemExit(f"sac_continuous.py needs a Box action space; {env_id} has {act_space}: use sac_discrete.py")
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise SystemExit(f"sac_continuous.py squashes actions into finite bounds; {env_id} has {act_space}: wrap it so that its action space has finite low and high")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"sac_continuous.py needs a flat Box observation space; {env_id} has {obs_space}: flatten it with gymnasium.wrappers.FlattenObservation")
    return obs_space, act_space


class Actor(nn.Module):
    """Gaussian policy squashed by tanh, then scaled affinely into the action bounds [low, high]."""

    def __init__(self, obs_dim, act_space, hidden_dim=256):
        super().__init__()
        act_dim = int(np.prod(act_space.shape))
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU())
        self.fc_mean = nn.Linear(hidden_dim, act_dim)
        self.fc_logstd = nn.Linear(hidden_dim, act_dim)
        low, high = torch.as_tensor(act_space.low, dtype=torch.float32), torch.as_tensor(act_space.high, dtype=torch.float32)
        self.register_buffer("action_scale", (high - low) / 2.0)
        self.register_buffer("action_bias", (high + low) / 2.0)

    def forward(self, obs):
        h = self.net(obs)
        log_std = torch.tanh(self.fc_logstd(h))  # soft clamp into [LOG_STD_MIN, LOG_STD_MAX], as in CleanRL
        return self.fc_mean(h), LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)

    def get_action(self, obs):
        """Sampled action, its log-density under the squashed and scaled distribution, and the deterministic action."""
        mean, log_std = self(obs)
        normal = torch.distributions.Normal(mean, log_std.exp())
        u = normal.rsample()  # reparameterised: gradients flow into mean and std
        action = torch.tanh(u) * self.action_scale + self.action_bias
        return action, squashed_log_prob(normal.log_prob(u), u, self.action_scale), torch.tanh(mean) * self.action_scale + self.action_bias


def squashed_log_prob(gaussian_log_prob, u, action_scale):
    """log pi(a) for a = scale * tanh(u) + bias (1801.01290 Eq. 21, with the scale): subtract log|da/du| per dim.

    log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)) is the overflow-free form of the same quantity.
    """
    log_det = 2.0 * (np.log(2.0) - u - F.softplus(-2.0 * u)) + torch.log(action_scale)
    return (gaussian_log_prob - log_det).sum(-1)


class EnsembleLinear(nn.Module):
    """`n` independent linear layers applied in one batched matmul: input [n, B, in] -> output [n, B, out]."""

    def __init__(self, n, in_features, out_features):
        super().__init__()
        bound = 1.0 / np.sqrt(in_features)  # nn.Linear's default initialisation range, for each member
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_features).uniform_(-bound, bound))

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQ(nn.Module):
    """Both critics Q1, Q2 of SAC in one module: forward returns a [2, B] tensor of Q-values."""

    def __init__(self, obs_dim, act_dim, hidden_dim=256):
        super().__init__()
        self.net = nn.Sequential(
            EnsembleLinear(2, obs_dim + act_dim, hidden_dim), nn.ReLU(),
            EnsembleLinear(2, hidden_dim, hidden_dim), nn.ReLU(),
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

    def __init__(self, size, obs_dim, act_dim, device):
        self.size, self.pos, self.full, self.device = size, 0, False, device
        self.added = 0  # rows ever added; row number c (0-based) came from env c % num_envs
        self.obs = torch.zeros(size, obs_dim, device=device)
        self.next_obs = torch.zeros(size, obs_dim, device=device)
        self.actions = torch.zeros(size, act_dim, device=device)
        self.rewards = torch.zeros(size, device=device)
        self.terminations = torch.zeros(size, device=device)
        self.truncations = torch.zeros(size, device=device)

    def __len__(self):
        return self.size if self.full else self.pos

    def add(self, obs, next_obs, actions, rewards, terminations, truncations):
        idx = (self.pos + np.arange(len(obs))) % self.size
        for name, value in zip(("obs", "next_obs", "actions", "rewards", "terminations", "truncations"),
                               (obs, next_obs, actions, rewards, terminations, truncations)):
            getattr(self, name)[idx] = torch.as_tensor(np.asarray(value), dtype=torch.float32, device=self.device)
        self.full = self.full or self.pos + len(obs) >= self.size
        self.added += len(obs)
        self.pos = (self.pos + len(obs)) % self.size

    def sample(self, batch_size):
        idx = torch.randint(0, len(self), (batch_size,), device=self.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminations[idx]


def critic_loss(qf, qf_target, actor, alpha, batch, gamma):
    """Sum of the two critics' MSE to the soft TD target (1801.01290 Eq. 5-6 with the min of two target critics)."""
    obs, actions, rewards, next_obs, terminations = batch
    with torch.no_grad():
        next_actions, next_log_prob, _ = actor.get_action(next_obs)
        next_v = qf_target(next_obs, next_actions).min(dim=0).values - alpha * next_log_prob
        # only termination stops bootstrapping; a time-limit truncation keeps the value of the real final obs
        target = rewards + gamma * (1.0 - terminations) * next_v
    q = qf(obs, actions)
    return ((q - target) ** 2).mean(dim=1).sum()


def actor_loss(actor, qf, alpha, obs):
    """E[alpha log pi(a|s) - min_i Q_i(s, a)], a ~ pi reparameterised (1801.01290 Eq. 7-9); also returns log pi."""
    actions, log_prob, _ = actor.get_action(obs)
    return (alpha * log_prob - qf(obs, actions).min(dim=0).values).mean(), log_prob


def alpha_loss(log_alpha, log_prob, target_entropy):
    """1812.05905 Eq. 18: alpha grows when the entropy -log pi falls below the target, shrinks when above."""
    return (-log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


def evaluate(actor, env_id, episodes, seed, device):
    """Mean action (tanh of the Gaussian mean), on an env of its own; returns the list of episodic returns."""
    env = gym.make(env_id)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                action = actor.get_action(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[2][0]
            obs, reward, terminated, truncated, _ = env.step(action.cpu().numpy())
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def save_checkpoint(path, args, actor, qf, qf_target, log_alpha):
    """Everything needed to act and to resume the critics, plus the Args; written atomically."""
    tmp = path + ".tmp"
    torch.save({"args": vars(args), "actor": actor.state_dict(), "qf": qf.state_dict(),
                "qf_target": qf_target.state_dict(), "log_alpha": log_alpha.detach().cpu()}, tmp)
    os.replace(tmp, path)
    print(f"model saved to {path}")


def save_minari_dataset(dataset_id, args, rb, actor, device):
    """Write the replay buffer (per env, split at episode ends) or fresh policy episodes as a Minari dataset."""
    import minari
    from minari.data_collector import EpisodeBuffer

    episodes = []
    if args.dataset_kind == "replay":
        n = len(rb)
        order = (torch.arange(n) + (rb.pos if rb.full else 0)) % rb.size  # storage rows, oldest first
        env_of = (torch.arange(n) + rb.added - n) % args.num_envs  # rows of one vector step are consecutive
        for env_idx in range(args.num_envs):
            rows = order[env_of == env_idx]
            ends = (rb.terminations[rows] + rb.truncations[rows]).cpu().numpy() > 0
            starts = [0] + [i + 1 for i in np.flatnonzero(ends)]
            for s, e in zip(starts, starts[1:] + [len(rows)]):
                if e > s:  # an unfinished last episode is written as truncated (it was cut, not terminated)
                    episodes.append(_episode(rows[s:e], rb, truncate_last=True))
    else:
        env = gym.make(args.env_id)
        for ep in range(args.dataset_episodes):
            obs, _ = env.reset(seed=args.seed + 100_000 + ep)
            o, a, r, te, tr = [obs], [], [], [], []
            while not (te and (te[-1] or tr[-1])):
                with torch.no_grad():
                    action = actor.get_action(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0][0].cpu().numpy()
                obs, reward, terminated, truncated, _ = env.step(action)
                o.append(obs), a.append(action), r.append(reward), te.append(terminated), tr.append(truncated)
            episodes.append(dict(observations=np.array(o), actions=np.array(a), rewards=np.array(r, dtype=np.float64),
                                 terminations=np.array(te), truncations=np.array(tr)))
        env.close()
    buffers = [EpisodeBuffer(id=i, **ep) for i, ep in enumerate(episodes)]
    env = gym.make(args.env_id)
    minari.create_dataset_from_buffers(dataset_id=dataset_id, buffer=buffers, env=env, algorithm_name="sac_continuous.py",
                                       author="sac_continuous.py", description=f"SAC {args.dataset_kind} data, seed {args.seed}")
    env.close()
    print(f"minari dataset {dataset_id} written: {len(buffers)} episodes, {sum(len(b.actions) for b in buffers)} steps")


def _episode(rows, rb, truncate_last):
    """One episode's arrays from buffer rows: observations has one more entry than actions (the final next_obs)."""
    obs = rb.obs[rows].cpu().numpy()
    observations = np.concatenate([obs, rb.next_obs[rows[-1:]].cpu().numpy()])
    terminations = rb.terminations[rows].cpu().numpy() > 0
    truncations = rb.truncations[rows].cpu().numpy() > 0
    if truncate_last and not terminations[-1]:
        truncations[-1] = True
    return dict(observations=observations, actions=rb.actions[rows].cpu().numpy(),
                rewards=rb.rewards[rows].cpu().numpy().astype(np.float64), terminations=terminations, truncations=truncations)


def validate(args):
    """Reject nonsensical hyperparameters before anything is written."""
    problems = [
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.num_envs < 1, f"--num-envs must be >= 1 (got {args.num_envs})"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (args.buffer_size < args.batch_size, f"--buffer-size {args.buffer_size} is smaller than --batch-size {args.batch_size}: raise the buffer or lower the batch"),
        (args.buffer_size < args.num_envs, f"--buffer-size {args.buffer_size} cannot hold one step of {args.num_envs} envs"),
        (args.policy_frequency < 1 or args.target_network_frequency < 1, "--policy-frequency and --target-network-frequency must be >= 1"),
        (not 0.0 < args.tau <= 1.0, f"--tau must be in (0, 1] (got {args.tau})"),
        (args.eval_episodes < 0, f"--eval-episodes must be >= 0 (got {args.eval_episodes})"),
        (args.dataset_kind == "policy" and args.dataset_episodes < 1, "--dataset-episodes must be >= 1"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"sac_continuous.py: {message}")
    if args.save_dataset:
        try:
            import minari
        except ImportError:
            raise SystemExit("sac_continuous.py: --save-dataset needs minari and h5py: pip install 'minari>=0.5' h5py")
        if args.save_dataset in minari.list_local_datasets():
            raise SystemExit(f"sac_continuous.py: a local Minari dataset {args.save_dataset!r} already exists: pick another id or delete it with `minari delete {args.save_dataset}`")


def run_evaluation_only(args, device):
    if not os.path.isfile(args.eval_checkpoint):
        raise SystemExit(f"sac_continuous.py: checkpoint {args.eval_checkpoint!r} not found: pass a file written by --save-model")
    ckpt = torch.load(args.eval_checkpoint, map_location=device, weights_only=False)
    saved = ckpt["args"]
    obs_space, act_space = check_env(saved["env_id"])
    actor = Actor(obs_space.shape[0], act_space, saved["hidden_dim"]).to(device)
    actor.load_state_dict(ckpt["actor"])
    returns = evaluate(actor, saved["env_id"], args.eval_episodes, args.seed, device)
    print(f"eval/episodic_return={np.mean(returns):.2f} (std {np.std(returns):.2f} over {len(returns)} episodes)")


def main(args):
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    if args.eval_checkpoint:
        return run_evaluation_only(args, device)
    validate(args)
    obs_space, act_space = check_env(args.env_id)
    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic

    # SAME_STEP autoreset: when an env ends, its real last observation is in infos["final_obs"] and the returned obs
    # is already the next episode's first, so every step yields one real transition per env (DESIGN.md section 3).
    envs = gym.vector.SyncVectorEnv([make_env(args.env_id, i, args.capture_video, run_name) for i in range(args.num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs_dim, act_dim = obs_space.shape[0], int(np.prod(act_space.shape))
    actor = Actor(obs_dim, act_space, args.hidden_dim).to(device)
    qf = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device)
    qf_target = TwinQ(obs_dim, act_dim, args.hidden_dim).to(device)
    qf_target.load_state_dict(qf.state_dict())
    q_optimizer = torch.optim.Adam(qf.parameters(), lr=args.q_lr)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.policy_lr)
    target_entropy = -float(act_dim)  # 1812.05905 section 5: the heuristic target entropy -dim(A)
    log_alpha = torch.tensor(np.log(args.alpha), dtype=torch.float32, device=device, requires_grad=args.autotune)
    a_optimizer = torch.optim.Adam([log_alpha], lr=args.q_lr) if args.autotune else None
    alpha = log_alpha.detach().exp()
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)

    wandb = None
    if args.track:
        import wandb
        wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args), name=run_name, save_code=True)

    obs, _ = envs.reset(seed=args.seed)
    envs.action_space.seed(args.seed)
    start_time = last_print = time.time()
    global_step, updates, last_return, interrupted = 0, 0, float("nan"), False
    try:
        while global_step < args.total_timesteps:
            if global_step < args.learning_starts:
                actions = envs.action_space.sample()
            else:
                with torch.no_grad():
                    actions = actor.get_action(torch.as_tensor(obs, dtype=torch.float32, device=device))[0].cpu().numpy()
            next_obs, rewards, terminations, truncations, infos = envs.step(actions)
            global_step += args.num_envs

            real_next_obs = next_obs.copy()
            if "_final_obs" in infos:
                for i in np.flatnonzero(infos["_final_obs"]):
                    real_next_obs[i] = infos["final_obs"][i]
            final_info = infos.get("final_info", {})
            if "episode" in final_info:
                for i in np.flatnonzero(final_info["_episode"]):
                    last_return, length = float(final_info["episode"]["r"][i]), int(final_info["episode"]["l"][i])
                    print(f"global_step={global_step}, episodic_return={last_return:.2f}, episodic_length={length}")
                    if wandb:
                        wandb.log({"charts/episodic_return": last_return, "charts/episodic_length": length}, step=global_step)
            rb.add(obs, real_next_obs, actions, rewards, terminations, truncations)
            obs = next_obs

            if global_step > args.learning_starts:
                updates += 1
                batch = rb.sample(args.batch_size)
                qf_loss = critic_loss(qf, qf_target, actor, alpha, batch, args.gamma)
                q_optimizer.zero_grad()
                qf_loss.backward()
                q_optimizer.step()

                if updates % args.policy_frequency == 0:
                    for _ in range(args.policy_frequency):  # compensate for the delay, as in CleanRL / TD3
                        pi_loss, log_prob = actor_loss(actor, qf, alpha, batch[0])
                        actor_optimizer.zero_grad()
                        pi_loss.backward()
                        actor_optimizer.step()
                        if args.autotune:
                            a_loss = alpha_loss(log_alpha, log_prob, target_entropy)
                            a_optimizer.zero_grad()
                            a_loss.backward()
                            a_optimizer.step()
                            alpha = log_alpha.detach().exp()

                if updates % args.target_network_frequency == 0:
                    with torch.no_grad():
                        torch._foreach_lerp_(list(qf_target.parameters()), list(qf.parameters()), args.tau)

                if updates % 100 == 0 and updates >= args.policy_frequency:
                    losses = {"losses/qf_loss": qf_loss.item(), "losses/actor_loss": pi_loss.item(), "losses/alpha": alpha.item(),
                              **({"losses/alpha_loss": a_loss.item()} if args.autotune else {})}
                    bad = [k for k, v in losses.items() if not np.isfinite(v)]
                    if bad:
                        raise FloatingPointError(f"{bad[0]} became {losses[bad[0]]} at global_step={global_step}")
                    if wandb:
                        losses["charts/SPS"] = int(global_step / (time.time() - start_time))
                        wandb.log(losses, step=global_step)

            if time.time() - last_print > 5:
                last_print = time.time()
                sps = global_step / (last_print - start_time)
                eta = time.strftime("%H:%M:%S", time.gmtime((args.total_timesteps - global_step) / max(sps, 1e-9)))
                print(f"progress: step {global_step}/{args.total_timesteps} ({100 * global_step / args.total_timesteps:.0f}%) | SPS {sps:.0f} | last return {last_return:.1f} | ETA {eta}")
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at global_step={global_step}", file=sys.stderr)
    except FloatingPointError as e:
        envs.close()
        raise SystemExit(f"sac_continuous.py: non-finite loss, stopping: {e}. Try a lower --q-lr or --policy-lr.")

    print(f"SPS={global_step / (time.time() - start_time):.1f} (updates: {updates})")
    if args.save_model:
        os.makedirs(f"runs/{run_name}", exist_ok=True)
        save_checkpoint(f"runs/{run_name}/{args.exp_name}.pt", args, actor, qf, qf_target, log_alpha)
    if args.save_dataset and not interrupted:
        save_minari_dataset(args.save_dataset, args, rb, actor, device)
    if not interrupted and args.eval_episodes > 0:
        returns = evaluate(actor, args.env_id, args.eval_episodes, args.seed + 10_000, device)
        print(f"eval/episodic_return={np.mean(returns):.2f} (std {np.std(returns):.2f} over {len(returns)} episodes)")
        if wandb:
            wandb.log({"eval/episodic_return": float(np.mean(returns))}, step=global_step)
    envs.close()
    if wandb:
        for video in sorted(glob.glob(f"runs/{run_name}/videos/*.mp4")):  # empty without --capture-video
            wandb.log({"videos": wandb.Video(video)}, step=global_step)
        wandb.finish()


if __name__ == "__main__":
    main(tyro.cli(Args))
