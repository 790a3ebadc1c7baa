# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4", "gymnasium[classic-control,box2d,mujoco]>=1.1", "tyro", "wandb", "numpy", "moviepy"]
# ///
"""Soft Actor-Critic for discrete action spaces (a categorical policy).

Off-policy maximum-entropy actor-critic: twin critics output Q(s, .) for every action, and because the policy is a
categorical distribution, the soft state value, the actor loss and the temperature loss are exact expectations
over actions (a sum weighted by pi(.|s)), with no sampled actions and no Gumbel-softmax relaxation. The temperature
alpha is tuned automatically towards a target entropy given as a fraction of the maximum entropy log|A|.

Papers: Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings" (arXiv 1910.07207);
Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications" (arXiv 1812.05905).

Run:  python sac_discrete.py --env-id CartPole-v1

Choices and deviations (evidence: benchmark/results/sac_discrete_*.md, runs by benchmark/sac_discrete_cartpole.py):
- Critic lr 1e-3 (actor and alpha 3e-4). With 3e-4 for the critics too, CartPole-v1 seeds 1-5 stalled at a training
  average of 200-300 from about 10k to 35k steps: median step to a 10-episode training average of 475 was 44.6k
  and seed 4 ended at a greedy eval of 266. With 1e-3: 25113 / 36537 / 18254 / 37627 / 19016 (median 25.1k), and a
  greedy eval of 500 on all five (sac_discrete_critic_lr_ablation.md; a lower initial alpha did not help alone).
- Target entropy = --target-entropy-scale * log|A|, default 0.2. The paper's 0.98 is nearly the maximum entropy
  log|A| (0.68 of 0.69 nats with 2 actions), met only by an almost uniform policy (in 15k steps on seed 1 it was
  not yet worse than 0.2 or 0.5).
  Between 0.2 and 0.5 the evidence is thin and mixed (measured with the older critic lr 3e-4, 50k steps,
  sac_discrete_target_entropy_ablation.md): seed 1 reached a training average of 475 at 46k with 0.2 but never
  with 0.5 (it ended at 403), seed 4 did at 46k with 0.5 but not with 0.2.
- log(alpha) starts at log(--alpha-init) = 0 (alpha = 1) and is clamped to [--log-alpha-min, --log-alpha-max]
  after every step, a safety net against a runaway temperature.
- --target-q min (clipped double Q) is the default; --target-q mean averages the twin target critics instead
  (with a 50k buffer on LunarLander-v3 it landed on 1 of seeds 1-3, like min: no reason to change the default).
- LunarLander-v3: --buffer-size 50000 --no-backup-entropy --target-entropy-scale 0.5 gave greedy evals 275.9 /
  264.7 / 284.3 on seeds 1-3 in 300k steps (sac_discrete_lunarlander_buf50k_nobackupent_ent0.5.md). Every other
  setting tried landed on at most 1 of 3 seeds: runs hovered, or landed and kept the engines on (README.md).
- --no-backup-entropy drops -alpha log pi from the critic target and keeps it only in the actor loss ("SACLite",
  Yu et al. 2022, arXiv 2201.12434): with it in the target, ending an episode (landing too) forfeits the bonus of
  every later step, about alpha log|A| / (1 - gamma) = 139 on LunarLander at the start (alpha = 1), more than the
  +100 for landing. Without it a higher entropy target costs no such incentive and keeps every action tried.
  Both flags on CartPole: greedy eval 500 on seeds 1-5 too (median step to MA10 475: 27.8k). Defaults unchanged.
- Time-limit truncation bootstraps from the real final observation; only termination stops bootstrapping.
- One gradient step per vector-env step. The three losses touch disjoint parameters (every cross term is detached),
  so they are summed and take one backward pass and one Adam step; the actor loss uses Q(s, .) from this step's
  critic forward pass, i.e. from before this step's critic update (the paper re-evaluates the updated critics).
  This one-step lag saves a critic forward pass; on CPU the update is the whole cost of the algorithm, which is also
  why the default networks are 64-64 (CartPole-sized; try --hidden-dim 256 for harder envs).
"""

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


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """use CUDA when available"""
    track: bool = False
    """log to Weights & Biases"""
    wandb_project_name: str = "cleanrl"
    """the wandb project name"""
    wandb_entity: Optional[str] = None
    """the wandb entity (team)"""
    capture_video: bool = False
    """record videos of the first env to runs/{run_name}/videos"""
    save_model: bool = False
    """save the model to runs/{run_name}/{exp_name}.pt"""
    eval_checkpoint: Optional[str] = None
    """evaluate this --save-model checkpoint instead of training"""

    env_id: str = "CartPole-v1"
    """the id of the environment (Discrete actions, flat Box observations)"""
    total_timesteps: int = 50_000
    """total env steps (summed over the vector envs)"""
    num_envs: int = 1
    """the number of parallel envs"""
    gamma: float = 0.99
    """the discount factor"""
    eval_episodes: int = 10
    """the number of greedy episodes of the final evaluation"""
    buffer_size: int = 1_000_000
    """the replay buffer capacity, in transitions"""
    tau: float = 0.005
    """the Polyak coefficient of the target critics"""
    batch_size: int = 256
    """the minibatch size of each gradient step"""
    learning_starts: int = 2_000
    """env steps of uniformly random actions before learning starts"""
    policy_lr: float = 3e-4
    """the learning rate of the actor"""
    q_lr: float = 1e-3
    """the learning rate of the critics"""
    alpha_lr: float = 3e-4
    """the learning rate of log(alpha)"""
    hidden_dim: int = 64
    """the width of the two hidden layers of the actor and of each critic"""
    target_entropy_scale: float = 0.2
    """target entropy = target_entropy_scale * log|A| (a fraction of the maximum entropy)"""
    alpha_init: float = 1.0
    """the initial temperature alpha (log(alpha) starts at its log)"""
    log_alpha_min: float = -10.0
    """lower clamp of log(alpha)"""
    log_alpha_max: float = 2.0
    """upper clamp of log(alpha)"""
    backup_entropy: bool = True
    """keep the entropy bonus -alpha log pi in the soft value of the critic target (the paper); --no-backup-entropy
    uses V(s') = sum_a pi(a|s') Q(s', a) and keeps the entropy only in the actor loss (Yu et al. 2022, arXiv 2201.12434)"""
    target_q: Literal["min", "mean"] = "min"
    """how the twin target critics combine in the soft value: min (clipped double Q, as in SAC) or mean (the
    'double average' target of Zhou et al. 2022, arXiv 2209.10081, which underestimates less)"""


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
        raise SystemExit(f"sac_discrete.py: unknown env id {env_id!r} ({e}); pick a registered Gymnasium env with Discrete actions, e.g. CartPole-v1")
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(act_space, gym.spaces.Discrete):
        raise SystemExit(f"sac_discrete.py needs a Discrete action space; {env_id} has {act_space}: use sac_continuous.py")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"sac_discrete.py needs a flat Box observation space; {env_id} has {obs_space}: flatten it with gymnasium.wrappers.FlattenObservation")
    return obs_space, act_space


def validate(args):
    """Reject nonsensical hyperparameters before anything is written."""
    problems = [
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.num_envs < 1, f"--num-envs must be >= 1 (got {args.num_envs})"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (args.buffer_size < args.batch_size, f"--buffer-size {args.buffer_size} is smaller than --batch-size {args.batch_size}: raise the buffer or lower the batch"),
        (args.buffer_size < args.num_envs, f"--buffer-size {args.buffer_size} cannot hold one step of {args.num_envs} envs"),
        (args.learning_starts < args.batch_size, f"--learning-starts {args.learning_starts} must be >= --batch-size {args.batch_size} (the first batch is sampled then)"),
        (not 0.0 < args.gamma <= 1.0, f"--gamma must be in (0, 1] (got {args.gamma})"),
        (not 0.0 < args.tau <= 1.0, f"--tau must be in (0, 1] (got {args.tau})"),
        (not 0.0 <= args.target_entropy_scale < 1.0, f"--target-entropy-scale must be in [0, 1) (got {args.target_entropy_scale}): 1 is the maximum entropy log|A|, never reached"),
        (args.log_alpha_min >= args.log_alpha_max, "--log-alpha-min must be below --log-alpha-max"),
        (not args.alpha_init > 0, f"--alpha-init must be > 0 (got {args.alpha_init})"),
        (args.alpha_init > 0 and not args.log_alpha_min <= np.log(args.alpha_init) <= args.log_alpha_max,
         f"--alpha-init {args.alpha_init} is outside exp([--log-alpha-min, --log-alpha-max]) = [{np.exp(args.log_alpha_min):.3g}, {np.exp(args.log_alpha_max):.3g}]"),
        (min(args.policy_lr, args.q_lr, args.alpha_lr) <= 0, "--policy-lr, --q-lr and --alpha-lr must be > 0"),
        (args.eval_episodes < 0, f"--eval-episodes must be >= 0 (got {args.eval_episodes})"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"sac_discrete.py: {message}")


class Actor(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, n_actions))

    def forward(self, obs):
        """Returns (pi(.|s), log pi(.|s)), each [B, A]; log_softmax keeps log-probabilities finite."""
        log_pi = F.log_softmax(self.net(obs), dim=-1)
        return log_pi.exp(), log_pi


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
    """Both critics in one module: forward returns Q(s, .) of critic k as out[k], a [2, B, |A|] tensor."""

    def __init__(self, obs_dim, n_actions, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(
            EnsembleLinear(2, obs_dim, hidden_dim), nn.ReLU(),
            EnsembleLinear(2, hidden_dim, hidden_dim), nn.ReLU(),
            EnsembleLinear(2, hidden_dim, n_actions),
        )

    def forward(self, obs):
        return self.net(obs.unsqueeze(0).expand(2, *obs.shape))


class ReplayBuffer:
    """Preallocated ring buffer of real transitions (s, a, r, s', terminated).

    s' is always the true successor of s in the same episode (the final observation when the episode ended), so a
    stored transition never spans two episodes. Rows are added num_envs at a time, env 0 first.
    """

    def __init__(self, size, obs_dim, device):
        self.size, self.pos, self.full, self.device = size, 0, False, device
        self.obs = torch.zeros(size, obs_dim, device=device)
        self.next_obs = torch.zeros(size, obs_dim, device=device)
        self.actions = torch.zeros(size, dtype=torch.long, device=device)
        self.rewards = torch.zeros(size, device=device)
        self.terminations = torch.zeros(size, device=device)

    def __len__(self):
        return self.size if self.full else self.pos

    def add(self, obs, next_obs, actions, rewards, terminations):
        idx = (self.pos + np.arange(len(obs))) % self.size
        for name, value in zip(("obs", "next_obs", "actions", "rewards", "terminations"),
                               (obs, next_obs, actions, rewards, terminations)):
            buf = getattr(self, name)
            buf[idx] = torch.as_tensor(np.asarray(value), dtype=buf.dtype, device=self.device)
        self.full = self.full or self.pos + len(obs) >= self.size
        self.pos = (self.pos + len(obs)) % self.size

    def sample(self, batch_size):
        idx = torch.randint(0, len(self), (batch_size,), device=self.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminations[idx]


def soft_value(next_probs, next_log_pi, next_q_target, alpha, reduce="min"):
    """V(s') = sum_a pi(a|s') [min_k Q_targ_k(s', a) - alpha log pi(a|s')]  (Christodoulou 2019, eq. 10). q: [2, B, A].
    reduce="mean" replaces the min over the twin critics by their mean (--target-q)."""
    q = next_q_target.min(0).values if reduce == "min" else next_q_target.mean(0)
    return (next_probs * (q - alpha * next_log_pi)).sum(-1)


def critic_loss(q, actions, rewards, terminated, next_v, gamma):
    """Sum over the twin critics of the mean squared soft Bellman error; q: [2, B, A]. Only termination stops
    bootstrapping: for a truncated episode next_v is the value of its real final observation."""
    target = (rewards + gamma * (1.0 - terminated) * next_v).detach()
    q_taken = q.gather(2, actions.view(1, -1, 1).expand(q.shape[0], -1, 1)).squeeze(2)  # [2, B]
    return ((q_taken - target) ** 2).mean(1).sum()


def actor_loss(probs, log_pi, q, alpha):
    """E_s sum_a pi(a|s) [alpha log pi(a|s) - min_k Q_k(s, a)]  (eq. 12): a sum over actions, a mean over states."""
    return (probs * (alpha * log_pi - q.min(0).values.detach())).sum(-1).mean()


def alpha_loss(log_alpha, probs, log_pi, target_entropy):
    """E_s alpha [H(pi(.|s)) - target], with the exact entropy H = -sum_a pi log pi  (eq. 11). Minimising it lowers
    alpha when the policy is more random than the target and raises it when it is less random."""
    entropy = -(probs * log_pi).sum(-1).detach()
    return (log_alpha.exp() * (entropy - target_entropy)).mean()


def evaluate(actor, env_id, episodes, seed, device):
    """Greedy policy (the most probable action), on an env of its own; returns the list of episodic returns."""
    env = gym.make(env_id)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                action = actor(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0].argmax(-1)[0]
            obs, reward, terminated, truncated, _ = env.step(int(action))
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


def run_evaluation_only(args, device):
    if not os.path.isfile(args.eval_checkpoint):
        raise SystemExit(f"sac_discrete.py: checkpoint {args.eval_checkpoint!r} not found: pass a file written by --save-model")
    ckpt = torch.load(args.eval_checkpoint, map_location=device, weights_only=False)
    saved = ckpt["args"]
    obs_space, act_space = check_env(saved["env_id"])
    actor = Actor(obs_space.shape[0], act_space.n, saved["hidden_dim"]).to(device)
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
    obs_dim, n_actions = obs_space.shape[0], int(act_space.n)
    actor = Actor(obs_dim, n_actions, args.hidden_dim).to(device)
    qf = TwinQ(obs_dim, n_actions, args.hidden_dim).to(device)
    qf_target = TwinQ(obs_dim, n_actions, args.hidden_dim).to(device).requires_grad_(False)
    qf_target.load_state_dict(qf.state_dict())
    log_alpha = torch.tensor(float(np.log(args.alpha_init)), device=device, requires_grad=True)
    target_entropy = args.target_entropy_scale * np.log(n_actions)
    # The three losses touch disjoint parameters, so one Adam over three parameter groups equals three Adams.
    optimizer = torch.optim.Adam([{"params": actor.parameters(), "lr": args.policy_lr},
                                  {"params": qf.parameters(), "lr": args.q_lr},
                                  {"params": [log_alpha], "lr": args.alpha_lr}])
    q_params, q_target_params = list(qf.parameters()), list(qf_target.parameters())
    rb = ReplayBuffer(args.buffer_size, obs_dim, device)

    def update():
        obs, actions, rewards, next_obs, terminations = rb.sample(args.batch_size)
        alpha = log_alpha.detach().exp()
        # One actor pass over s and s': pi(.|s') feeds the target (no gradient), pi(.|s) the actor and alpha losses.
        probs, log_pi = actor(torch.cat([obs, next_obs]))
        (probs, next_probs), (log_pi, next_log_pi) = probs.split(args.batch_size), log_pi.split(args.batch_size)
        with torch.no_grad():
            backup_alpha = alpha if args.backup_entropy else 0.0  # no entropy reward: no bonus for staying alive
            next_v = soft_value(next_probs, next_log_pi, qf_target(next_obs), backup_alpha, args.target_q)
        q = qf(obs)
        losses = (critic_loss(q, actions, rewards, terminations, next_v, args.gamma),
                  actor_loss(probs, log_pi, q, alpha), alpha_loss(log_alpha, probs, log_pi, target_entropy))
        optimizer.zero_grad(set_to_none=True)
        sum(losses).backward()
        optimizer.step()
        with torch.no_grad():
            log_alpha.clamp_(args.log_alpha_min, args.log_alpha_max)
            torch._foreach_lerp_(q_target_params, q_params, args.tau)  # Polyak: target += tau * (online - target)
        return losses, -(probs * log_pi).sum(-1).mean().detach()

    wandb = None
    if args.track:
        import wandb
        wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args), name=run_name, save_code=True)
    os.makedirs(f"runs/{run_name}", exist_ok=True)
    model_path = f"runs/{run_name}/{args.exp_name}.pt"

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
                    probs, _ = actor(torch.as_tensor(obs, dtype=torch.float32, device=device))
                actions = torch.multinomial(probs, 1).squeeze(1).cpu().numpy()
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
            rb.add(obs, real_next_obs, actions, rewards, terminations)
            obs = next_obs

            if global_step > args.learning_starts:
                updates += 1
                losses, entropy = update()
                if updates % 100 == 0:  # the only host reads of the losses: the hot loop never waits on them
                    metrics = {"losses/qf_loss": losses[0].item(), "losses/actor_loss": losses[1].item(),
                               "losses/alpha_loss": losses[2].item(), "losses/alpha": log_alpha.exp().item(),
                               "losses/entropy": entropy.item()}
                    bad = [k for k, v in metrics.items() if not np.isfinite(v)]
                    if bad:
                        raise FloatingPointError(f"{bad[0]} became {metrics[bad[0]]} at global_step={global_step}")
                    if wandb:
                        metrics["charts/SPS"] = int(global_step / (time.time() - start_time))
                        wandb.log(metrics, step=global_step)

            if time.time() - last_print > 5:
                last_print = time.time()
                sps = global_step / (last_print - start_time)
                eta = time.strftime("%H:%M:%S", time.gmtime((args.total_timesteps - global_step) / max(sps, 1e-9)))
                print(f"progress: step {global_step}/{args.total_timesteps} ({100 * global_step / args.total_timesteps:.0f}%) | SPS {sps:.0f} | last return {last_return:.1f} | alpha {log_alpha.exp().item():.3g} | ETA {eta}")
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at global_step={global_step}", file=sys.stderr)
    except FloatingPointError as e:
        envs.close()
        raise SystemExit(f"sac_discrete.py: non-finite loss, stopping: {e}. Try a lower --q-lr or --policy-lr.")

    print(f"SPS={global_step / (time.time() - start_time):.1f} (updates: {updates})")
    if args.save_model:
        save_checkpoint(model_path, args, actor, qf, qf_target, log_alpha)
    if not interrupted and args.eval_episodes > 0:
        returns = evaluate(actor, args.env_id, args.eval_episodes, args.seed + 10_000, device)
        print(f"eval/episodic_return={np.mean(returns):.2f} (std {np.std(returns):.2f} over {len(returns)} episodes)")
        if wandb:
            wandb.log({"eval/episodic_return": float(np.mean(returns))}, step=global_step)
    envs.close()
    if wandb:
        if args.capture_video:
            for root, _, files in os.walk(f"runs/{run_name}/videos"):
                for f in sorted(files):
                    if f.endswith(".mp4"):
                        wandb.log({"videos": wandb.Video(os.path.join(root, f))}, step=global_step)
        wandb.finish()


if __name__ == "__main__":
    main(tyro.cli(Args))
