# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4", "gymnasium[classic-control,box2d,mujoco]>=1.1", "tyro", "wandb", "numpy", "moviepy"]
# ///
"""REINFORCE with a diagonal Gaussian policy for Box action spaces.

The policy network outputs mu(s); log sigma is a free parameter (or, with --state-dependent-std, a second head).
Each update collects a batch of whole episodes and takes one gradient step on the pseudo-loss
-mean(log pi(a|s) * Psi), where Psi is the discounted reward-to-go (Williams 1992, "Simple statistical
gradient-following algorithms for connectionist reinforcement learning"), optionally minus a baseline: the batch
mean, or a learned V(s) with GAE(lambda) advantages (Schulman et al. 2015, arXiv:1506.02438).

Run:  python reinforce_gaussian.py --env-id InvertedPendulum-v5
      python reinforce_gaussian.py --env-id GaussianBandit-v0 --batch-size 64 --total-timesteps 20000

Time limits. An episode cut by truncation did not end: with --baseline value, its remaining return is bootstrapped
with V of the real final observation (the last GAE delta is r + gamma V(s_final) - V(s)). Without a value baseline
there is nothing to bootstrap with, so the reward-to-go simply stops at the cut: states near the time limit get a
smaller Psi than the same states earlier in an episode (a bias the time-unaware policy cannot represent). Every
Pendulum-v1 episode is truncated at 200 steps, so there the difference matters.

Deviations from the paper: Adam, with the learning rates decayed linearly to 0 (--anneal-lr), instead of plain
gradient ascent; gradient-norm clipping; Psi optionally divided by its batch std and, with a baseline, centred (never
with --baseline none, which stays baseline-free); the value baseline is fitted with --vf-iters full-batch Adam steps
per update on the lambda-returns.

Built-in env: GaussianBandit-v0 (registered on import), a one-step bandit with one state, action a in [-1, 1] and
reward zeta * beta / max(zeta, |tau - a|) (maximal, beta, within zeta of the fixed target tau). On it the run prints
mu and sigma after every update, so you can watch mu go to tau and sigma shrink.
"""

import os
import random
import time
from dataclasses import dataclass
from typing import Literal, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
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
    """track the run with Weights and Biases"""
    wandb_project_name: str = "cleanrl"
    """the W&B project name"""
    wandb_entity: Optional[str] = None
    """the W&B entity (team)"""
    capture_video: bool = False
    """record videos of the agent (first env) to runs/{run_name}/videos"""
    save_model: bool = False
    """save the policy (and value net) to runs/{run_name}/{exp_name}.pt"""
    eval_checkpoint: Optional[str] = None
    """evaluate this --save-model checkpoint instead of training"""

    env_id: str = "InvertedPendulum-v5"
    """the environment id (any Box-action env, or the built-in GaussianBandit-v0)"""
    total_timesteps: int = 200_000
    """total env steps; no new batch starts once this many steps were taken"""
    num_envs: int = 4
    """number of parallel envs in the vector env"""
    async_envs: bool = False
    """use gym.vector.AsyncVectorEnv (one process per env) instead of SyncVectorEnv"""
    batch_size: int = 2000
    """env steps per update. Once the batch holds this many steps, each env finishes the episode it is in (which \
joins the batch) and then starts no new one; envs that finish early keep stepping until the last one is done, but \
those steps are discarded (still counted in global_step), and all envs are reset before the next batch. So a batch \
is whole episodes only, all from the current policy: no partial episode is kept or bootstrapped."""
    gamma: float = 0.99
    """the discount factor"""
    learning_rate: float = 1e-2
    """Adam learning rate of the policy"""
    anneal_lr: bool = True
    """decay both learning rates linearly to 0 over total_timesteps (late large steps can undo a solved task)"""
    baseline: Literal["none", "mean", "value"] = "value"
    """Psi = reward-to-go (none), minus its batch mean (mean), or GAE(lambda) advantages of a learned V(s) (value)"""
    gae_lambda: float = 0.97
    """the GAE lambda (--baseline value only); 1.0 gives reward-to-go minus V"""
    vf_learning_rate: float = 3e-3
    """Adam learning rate of the value net (--baseline value only)"""
    vf_iters: int = 80
    """full-batch gradient steps on the value net per update (--baseline value only)"""
    norm_adv: bool = True
    """standardise Psi over the batch (zero mean, unit std); with --baseline none only divide by the std, since \
subtracting the mean would be a baseline"""
    ent_coef: float = 0.0
    """coefficient of the entropy bonus"""
    max_grad_norm: float = 0.5
    """the maximum gradient norm (policy and value net)"""
    state_dependent_std: bool = False
    """log sigma from a second head of the policy net instead of a state-independent parameter"""
    log_std_init: float = -0.5
    """initial log sigma"""
    hidden_size: int = 64
    """units in each of the two hidden layers"""
    eval_episodes: int = 10
    """episodes of the final deterministic evaluation"""


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


def make_env(env_id, idx, capture_video, run_name):
    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"runs/{run_name}/videos")
        else:
            env = gym.make(env_id)
        return gym.wrappers.RecordEpisodeStatistics(env)  # per env: the vector version drops steps under SAME_STEP

    return thunk


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Actor(nn.Module):
    def __init__(self, obs_dim, act_dim, hidden_size=64, state_dependent_std=False, log_std_init=-0.5):
        super().__init__()
        self.body = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden_size)), nn.Tanh(),
            layer_init(nn.Linear(hidden_size, hidden_size)), nn.Tanh(),
        )
        self.mu = layer_init(nn.Linear(hidden_size, act_dim), std=0.01)
        if state_dependent_std:
            self.log_std_head = layer_init(nn.Linear(hidden_size, act_dim), std=0.01, bias_const=log_std_init)
        else:
            self.log_std = nn.Parameter(torch.full((act_dim,), log_std_init))
        self.state_dependent_std = state_dependent_std

    def forward(self, obs):
        """mu(s) and sigma(s) of the diagonal Gaussian."""
        h = self.body(obs)
        log_std = self.log_std_head(h) if self.state_dependent_std else self.log_std.expand(h.shape[0], -1)
        return self.mu(h), log_std.exp()

    def dist(self, obs):
        mu, std = self(obs)
        return torch.distributions.Normal(mu, std)


class Critic(nn.Module):
    def __init__(self, obs_dim, hidden_size=64):
        super().__init__()
        self.net = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden_size)), nn.Tanh(),
            layer_init(nn.Linear(hidden_size, hidden_size)), nn.Tanh(),
            layer_init(nn.Linear(hidden_size, 1), std=1.0),
        )

    def forward(self, obs):
        return self.net(obs).squeeze(-1)


def reward_to_go(rewards, ends, gamma, bootstrap=None):
    """G_t = r_t + gamma G_{t+1} within an episode; `ends[t]` marks an episode's last step, where G_{t+1} is
    `bootstrap[t]` (V of the real final obs if truncated, else 0), or 0 when no bootstrap is given.
    Episodes are concatenated in the flat arrays; a return never crosses an `ends` boundary."""
    returns = np.zeros(len(rewards), dtype=np.float64)
    following = 0.0
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
    advantages = np.zeros(len(rewards), dtype=np.float64)
    last = 0.0
    for t in reversed(range(len(rewards))):
        last = deltas[t] + (0.0 if ends[t] else gamma * gae_lambda * last)  # never across episodes
        advantages[t] = last
    return advantages


def policy_loss(log_prob, psi, entropy, ent_coef):
    """REINFORCE pseudo-loss: its gradient is -mean(grad log pi(a|s) * Psi), minus an entropy bonus."""
    return -(log_prob * psi).mean() - ent_coef * entropy.mean()


def value_loss(values, targets):
    return 0.5 * ((values - targets) ** 2).mean()


def evaluate(actor, env_id, eval_episodes, seed, device, low, high):
    """Deterministic policy (a = mu(s), clipped) on its own env; returns the episodic returns."""
    env = gym.wrappers.RecordEpisodeStatistics(gym.make(env_id))
    returns = []
    obs, _ = env.reset(seed=seed)
    while len(returns) < eval_episodes:
        with torch.no_grad():
            mu, _ = actor(torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0))
        obs, _, terminated, truncated, info = env.step(np.clip(mu[0].cpu().numpy(), low, high))
        if terminated or truncated:
            returns.append(float(info["episode"]["r"]))
            obs, _ = env.reset()
    env.close()
    return returns


def check_args(args):
    """Bad input gets one sentence and a non-zero exit before anything is written."""
    name = "reinforce_gaussian.py"
    try:
        env = gym.make(args.env_id)
    except gym.error.Error as e:
        raise SystemExit(f"{name}: unknown env id {args.env_id}: {e}")
    space, obs_space = env.action_space, env.observation_space
    bandit_tau = env.unwrapped.tau if isinstance(env.unwrapped, GaussianBandit) else None
    env.close()
    if not isinstance(space, gym.spaces.Box):
        raise SystemExit(f"{name} needs a Box action space; {args.env_id} has {space}: use a2c.py or sac_discrete.py")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"{name} needs a flat Box observation space; {args.env_id} has {obs_space}")
    for flag, ok in [("--total-timesteps", args.total_timesteps > 0), ("--batch-size", args.batch_size > 0),
                     ("--num-envs", args.num_envs > 0), ("--eval-episodes", args.eval_episodes >= 0),
                     ("--vf-iters", args.vf_iters >= 0), ("--gamma", 0.0 <= args.gamma <= 1.0),
                     ("--gae-lambda", 0.0 <= args.gae_lambda <= 1.0), ("--learning-rate", args.learning_rate > 0)]:
        if not ok:
            raise SystemExit(f"{name}: {flag} is out of range; use a positive count (gamma and lambda in [0, 1])")
    return space, bandit_tau


def main(args):
    if args.eval_checkpoint is not None:
        if not os.path.isfile(args.eval_checkpoint):
            raise SystemExit(f"reinforce_gaussian.py: checkpoint {args.eval_checkpoint} not found: pass a file written by --save-model")
        try:
            ckpt = torch.load(args.eval_checkpoint, map_location="cpu", weights_only=False)
            saved = Args(**{**ckpt["args"], "eval_checkpoint": None})
        except Exception as e:
            raise SystemExit(f"reinforce_gaussian.py: {args.eval_checkpoint} is not a --save-model checkpoint of this script ({e})")
        space, _ = check_args(saved)
        env = gym.make(saved.env_id)
        actor = Actor(env.observation_space.shape[0], space.shape[0], saved.hidden_size, saved.state_dependent_std)
        env.close()
        actor.load_state_dict(ckpt["actor"])
        returns = evaluate(actor, saved.env_id, args.eval_episodes, args.seed, "cpu", space.low, space.high)
        print(f"eval/episodic_return={np.mean(returns):.2f} (std {np.std(returns):.2f} over {len(returns)} episodes)")
        return

    space, bandit_tau = check_args(args)
    low, high = space.low, space.high  # true bounds, read before any wrapper
    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    if args.track:
        import wandb

        wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args), name=run_name,
                   save_code=True, monitor_gym=False)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")

    vector_cls = gym.vector.AsyncVectorEnv if args.async_envs else gym.vector.SyncVectorEnv
    envs = vector_cls([make_env(args.env_id, i, args.capture_video, run_name) for i in range(args.num_envs)],
                      autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.action_space.seed(args.seed)
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    actor = Actor(obs_dim, act_dim, args.hidden_size, args.state_dependent_std, args.log_std_init).to(device)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=args.learning_rate)
    critic = Critic(obs_dim, args.hidden_size).to(device) if args.baseline == "value" else None
    critic_opt = torch.optim.Adam(critic.parameters(), lr=args.vf_learning_rate) if critic else None

    def log(metrics, step):
        if args.track:
            wandb.log(metrics, step=step)

    def save():
        path = f"runs/{run_name}/{args.exp_name}.pt"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        state = {"args": vars(args), "actor": actor.state_dict()}
        if critic is not None:
            state["critic"] = critic.state_dict()
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)  # atomic
        print(f"model saved to {path}")

    global_step, update, last_return = 0, 0, float("nan")
    start_time = last_print = time.time()
    interrupted = False
    try:
        next_obs, _ = envs.reset(seed=args.seed)
        while global_step < args.total_timesteps:
            update += 1
            if args.anneal_lr:
                frac = 1.0 - global_step / args.total_timesteps
                for opt, lr in [(actor_opt, args.learning_rate), (critic_opt, args.vf_learning_rate)]:
                    if opt is not None:
                        opt.param_groups[0]["lr"] = frac * lr
            if update > 1:
                next_obs, _ = envs.reset()  # drop the discarded episodes that idle envs were in
            ep_obs, ep_act, ep_rew = ([[] for _ in range(args.num_envs)] for _ in range(3))
            episodes = []  # (obs, actions, rewards, final_obs, truncated) of each whole episode in the batch
            collecting = np.ones(args.num_envs, dtype=bool)  # env still owes the batch its current episode
            batch_steps = 0
            while collecting.any():
                with torch.no_grad():
                    action = actor.dist(torch.as_tensor(next_obs, dtype=torch.float32, device=device)).sample()
                action = action.cpu().numpy()
                # clip only when stepping the env: the log-prob is of the unclipped sample
                obs_now = next_obs
                next_obs, reward, terminated, truncated, infos = envs.step(np.clip(action, low, high))
                global_step += args.num_envs
                for i in np.flatnonzero(collecting):
                    ep_obs[i].append(obs_now[i])
                    ep_act[i].append(action[i])
                    ep_rew[i].append(reward[i])
                batch_steps += int(collecting.sum())
                for i in np.flatnonzero(terminated | truncated):
                    if infos["final_info"]["_episode"][i]:
                        last_return = float(infos["final_info"]["episode"]["r"][i])
                        length = int(infos["final_info"]["episode"]["l"][i])
                        print(f"global_step={global_step}, episodic_return={last_return:.1f}, episodic_length={length}")
                        log({"charts/episodic_return": last_return, "charts/episodic_length": length}, global_step)
                    if collecting[i]:
                        # under SAME_STEP, next_obs[i] is already the next episode's reset obs: use final_obs
                        episodes.append((ep_obs[i], ep_act[i], ep_rew[i], infos["final_obs"][i],
                                         bool(truncated[i] and not terminated[i])))
                        collecting[i] = batch_steps < args.batch_size
                    ep_obs[i], ep_act[i], ep_rew[i] = [], [], []
                if time.time() - last_print > 5:
                    last_print = time.time()
                    sps = global_step / (last_print - start_time)
                    eta = int((args.total_timesteps - global_step) / max(sps, 1e-8))
                    print(f"progress: step {global_step}/{args.total_timesteps} "
                          f"({100 * global_step / args.total_timesteps:.0f}%) | SPS {sps:.0f} | "
                          f"last return {last_return:.1f} | ETA {eta // 3600}:{eta % 3600 // 60:02d}:{eta % 60:02d}")

            # flatten the batch: episodes back to back, `ends` marks each one's last step
            lengths = [len(e[2]) for e in episodes]
            obs_b = torch.as_tensor(np.array([o for e in episodes for o in e[0]]), dtype=torch.float32, device=device)
            act_b = torch.as_tensor(np.array([a for e in episodes for a in e[1]]), dtype=torch.float32, device=device)
            rewards = np.array([r for e in episodes for r in e[2]], dtype=np.float64)
            ends = np.zeros(len(rewards), dtype=bool)
            ends[np.cumsum(lengths) - 1] = True
            if critic is not None:
                with torch.no_grad():
                    values = critic(obs_b).double().cpu().numpy()
                    final_obs = torch.as_tensor(np.array([e[3] for e in episodes]), dtype=torch.float32, device=device)
                    # bootstrap on truncation only: a terminated episode has no value after its last step
                    final_values = critic(final_obs).double().cpu().numpy() * np.array([e[4] for e in episodes])
                next_values = np.append(values[1:], 0.0)
                next_values[ends] = final_values  # replaces V of the next episode's first obs
                psi = compute_gae(rewards, values, next_values, ends, args.gamma, args.gae_lambda)
                vf_targets = torch.as_tensor(psi + values, dtype=torch.float32, device=device)  # lambda-returns
            else:
                psi = reward_to_go(rewards, ends, args.gamma)  # cut at truncation: see the module docstring
                if args.baseline == "mean":
                    psi = psi - psi.mean()
            if args.norm_adv and len(psi) > 1:
                # centring is itself a baseline, so --baseline none only gets the scale normalised
                psi = (psi if args.baseline == "none" else psi - psi.mean()) / (psi.std() + 1e-8)
            psi_b = torch.as_tensor(psi, dtype=torch.float32, device=device)

            dist = actor.dist(obs_b)
            log_prob = dist.log_prob(act_b).sum(-1)  # diagonal Gaussian: sum over action dims
            entropy = dist.entropy().sum(-1)
            loss = policy_loss(log_prob, psi_b, entropy, args.ent_coef)
            actor_opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(actor.parameters(), args.max_grad_norm)
            actor_opt.step()
            metrics = {"losses/policy_loss": loss.item(), "losses/entropy": entropy.mean().item()}
            if critic is not None and args.vf_iters > 0:
                for _ in range(args.vf_iters):
                    v_loss = value_loss(critic(obs_b), vf_targets)
                    critic_opt.zero_grad()
                    v_loss.backward()
                    nn.utils.clip_grad_norm_(critic.parameters(), args.max_grad_norm)
                    critic_opt.step()
                metrics["losses/value_loss"] = v_loss.item()
            for key, value in metrics.items():
                if not np.isfinite(value):
                    raise SystemExit(f"reinforce_gaussian.py: {key} became {value} at global_step={global_step}; "
                                     "try a lower --learning-rate or --max-grad-norm")
            sps = int(global_step / (time.time() - start_time))
            log({**metrics, "charts/SPS": sps, "charts/sigma": actor.dist(obs_b[:1]).stddev.mean().item(),
                 "charts/batch_episodes": len(episodes)}, global_step)
            if bandit_tau is not None:  # one state: mu and sigma are the whole policy
                with torch.no_grad():
                    mu, sigma = actor(torch.ones(1, 1, device=device))
                print(f"bandit: update {update}, global_step={global_step}, mu={mu.item():.4f}, "
                      f"sigma={sigma.item():.4f}, tau={bandit_tau}")
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at global_step={global_step}: stopping without the final evaluation")

    if args.save_model:
        save()
    if not interrupted and args.eval_episodes > 0:
        returns = evaluate(actor, args.env_id, args.eval_episodes, args.seed, device, low, high)
        print(f"eval/episodic_return={np.mean(returns):.2f} (std {np.std(returns):.2f} over {len(returns)} episodes)")
        log({"eval/episodic_return": float(np.mean(returns))}, global_step)
    envs.close()
    if args.track:
        if args.capture_video:
            import glob

            for video in sorted(glob.glob(f"runs/{run_name}/videos/*.mp4")):
                wandb.log({"videos": wandb.Video(video)})
        wandb.finish()


if __name__ == "__main__":
    main(tyro.cli(Args))
