# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4", "gymnasium[classic-control,box2d,mujoco]>=1.1", "tyro", "wandb", "numpy", "moviepy"]
# ///
"""Synchronous Advantage Actor-Critic (A2C) on a Gymnasium vector env, Discrete or Box actions.

N envs are stepped together for `num_steps` steps; advantages come from GAE(lambda) (lambda = 1 gives the classic
n-step returns of the A3C paper), and one gradient step on policy loss + vf_coef * value loss - ent_coef * entropy
follows each rollout. Papers: Mnih et al. 2016, "Asynchronous Methods for Deep RL" (arXiv:1602.01783); GAE:
Schulman et al. 2015 (arXiv:1506.02438).

Run:  python a2c.py --env-id CartPole-v1
      python a2c.py --env-id InvertedPendulum-v5 --norm-obs --norm-reward --total-timesteps 300000

Deviations from the paper: synchronous (A2C) rather than asynchronous workers; GAE(0.95) by default instead of plain
n-step returns (`--gae-lambda 1` gives those); time-limit truncation bootstraps the value of the real final observation;
separate actor and critic networks by default (`--shared-torso` for the paper's shared body); Adam with a linearly
decayed learning rate by default, because the paper's RMSprop setting (`--optimizer rmsprop`) did not solve CartPole-v1
on every seed within 200k steps in our runs (benchmark/results/a2c_cartpole_tuning.md).
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
from torch.distributions import Categorical, Normal


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
    """track the run with Weights & Biases"""
    wandb_project_name: str = "cleanrl"
    """the W&B project name"""
    wandb_entity: Optional[str] = None
    """the W&B entity (team)"""
    capture_video: bool = False
    """record videos of env 0 to runs/{run_name}/videos"""
    save_model: bool = False
    """save the model to runs/{run_name}/{exp_name}.pt"""
    eval_checkpoint: Optional[str] = None
    """evaluate this --save-model checkpoint instead of training"""

    env_id: str = "CartPole-v1"
    """the id of the environment"""
    total_timesteps: int = 200_000
    """total env steps (summed over all envs)"""
    num_envs: int = 8
    """the number of parallel envs"""
    async_envs: bool = False
    """step the envs in subprocesses (AsyncVectorEnv) instead of in this process"""
    num_steps: int = 8
    """steps per env per rollout (the n of n-step returns)"""
    learning_rate: float = 1e-3
    """the learning rate of the optimiser"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over training"""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """Adam, or RMSprop (alpha 0.99, eps 1e-5, as in the A2C paper and SB3); Adam measured steadier on CartPole"""
    rmsprop_alpha: float = 0.99
    """RMSprop smoothing constant"""
    optim_eps: float = 1e-5
    """epsilon of the optimiser"""
    gamma: float = 0.99
    """the discount factor"""
    gae_lambda: float = 0.95
    """GAE lambda (1.0 = n-step returns)"""
    norm_adv: bool = False
    """normalise advantages over each rollout batch"""
    ent_coef: float = 0.0
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    max_grad_norm: float = 0.5
    """gradient-norm clipping threshold"""
    hidden_size: int = 64
    """width of the two hidden layers"""
    shared_torso: bool = False
    """actor and critic share the hidden layers (default: separate networks)"""
    log_std_init: float = 0.0
    """initial log-std of the Gaussian policy (Box actions)"""
    norm_obs: bool = False
    """normalise observations with running statistics (gym.wrappers.NormalizeObservation, per env)"""
    norm_reward: bool = False
    """scale rewards by a running std of the discounted return (gym.wrappers.NormalizeReward, per env)"""
    eval_episodes: int = 10
    """episodes of the final deterministic evaluation"""


def make_env(env_id, idx, capture_video, run_name, gamma=0.99, norm_obs=False, norm_reward=False):
    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"runs/{run_name}/videos")
        else:
            env = gym.make(env_id)
        # Statistics first, so that they see the raw rewards, not the normalised ones.
        env = gym.wrappers.RecordEpisodeStatistics(env)
        if norm_obs:
            env = gym.wrappers.NormalizeObservation(env)
        if norm_reward:
            env = gym.wrappers.NormalizeReward(env, gamma=gamma)
        return env

    return thunk


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


def mlp(in_dim, hidden, out_dim=None, out_std=1.0):
    layers = [layer_init(nn.Linear(in_dim, hidden)), nn.Tanh(), layer_init(nn.Linear(hidden, hidden)), nn.Tanh()]
    if out_dim is not None:
        layers.append(layer_init(nn.Linear(hidden, out_dim), std=out_std))
    return nn.Sequential(*layers)


class Agent(nn.Module):
    def __init__(self, obs_space, action_space, hidden=64, shared_torso=False, log_std_init=0.0):
        super().__init__()
        obs_dim = int(np.prod(obs_space.shape))
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        act_dim = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        if shared_torso:
            self.torso = mlp(obs_dim, hidden)
            self.actor = layer_init(nn.Linear(hidden, act_dim), std=0.01)
            self.critic = layer_init(nn.Linear(hidden, 1), std=1.0)
        else:
            self.torso = nn.Identity()
            self.actor = mlp(obs_dim, hidden, act_dim, out_std=0.01)
            self.critic = mlp(obs_dim, hidden, 1, out_std=1.0)
        if not self.discrete:
            # State-independent log-std, as in the A3C paper's continuous experiments and SB3.
            self.actor_logstd = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def get_value(self, x):
        return self.critic(self.torso(x)).squeeze(-1)

    def dist(self, h):
        out = self.actor(h)
        if self.discrete:
            return Categorical(logits=out)
        return Normal(out, self.actor_logstd.exp().expand_as(out))

    def get_action(self, x):
        return self.dist(self.torso(x)).sample()

    def get_action_and_value(self, x, action=None):
        h = self.torso(x)
        dist = self.dist(h)
        if action is None:
            action = dist.sample()
        logprob, entropy = dist.log_prob(action), dist.entropy()
        if not self.discrete:  # diagonal Gaussian: independent dimensions
            logprob, entropy = logprob.sum(-1), entropy.sum(-1)
        return action, logprob, entropy, self.critic(h).squeeze(-1)

    def act_deterministic(self, x):
        out = self.actor(self.torso(x))
        return out.argmax(-1) if self.discrete else out


def compute_gae(rewards, values, next_values, terminated, dones, gamma, gae_lambda):
    """GAE over a [T, N] rollout (arXiv:1506.02438, eq. 16). Returns (advantages, returns).

    next_values[t] is V of the *real* next observation of step t: V(obs[t+1]) while the episode goes on,
    V(final_obs) when it ended at t. terminated[t] zeroes it (no value after a terminal state); a truncation keeps
    it (the time limit is not part of the MDP). dones[t] = terminated | truncated cuts the lambda-chain, so no
    advantage flows from one episode into the next.
    """
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_values[t] * (1.0 - terminated[t]) - values[t]
        lastgaelam = delta + gamma * gae_lambda * (1.0 - dones[t]) * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values  # value target = advantages + values


def a2c_loss(logprob, entropy, value, advantages, returns, vf_coef, ent_coef, norm_adv=False):
    """Policy gradient with a baseline, value regression, entropy bonus (arXiv:1602.01783, Algorithm S3)."""
    if norm_adv:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = -(advantages.detach() * logprob).mean()  # the advantage is a fixed weight, not differentiated
    v_loss = 0.5 * ((value - returns.detach()) ** 2).mean()
    entropy_loss = entropy.mean()
    loss = pg_loss + vf_coef * v_loss - ent_coef * entropy_loss
    return loss, pg_loss, v_loss, entropy_loss


def collect_rollout(envs, agent, next_obs, num_steps, device, action_low=None, action_high=None):
    """Step every env num_steps times. Returns (batch dict of [T, N] tensors, next_obs, finished episodes).

    The vector env runs under AutoresetMode.SAME_STEP: when env i ends at step t, the step returns the real final
    observation in infos["final_obs"] and the reset observation of the next episode as obs[i]. So every stored step
    is a real transition - no autoreset step (NEXT_STEP mode's reward-0, action-ignored step) ever enters the rollout,
    and nothing needs masking out of the losses.
    """
    n = envs.num_envs
    obs = torch.zeros((num_steps, n) + envs.single_observation_space.shape, device=device)
    actions = torch.zeros((num_steps, n) + envs.single_action_space.shape, device=device)
    rewards, values, next_values, terminated, dones = (torch.zeros((num_steps, n), device=device) for _ in range(5))
    episodes = []  # (env step index within the rollout, env index, return, length)
    with torch.no_grad():
        value = agent.get_value(next_obs)
    for t in range(num_steps):
        obs[t], values[t] = next_obs, value
        with torch.no_grad():
            action = agent.get_action(next_obs)
        actions[t] = action
        env_action = action.cpu().numpy()
        if action_low is not None:  # clip only what the env sees; the loss uses the unclipped sample
            env_action = np.clip(env_action, action_low, action_high)
        o, r, term, trunc, infos = envs.step(env_action)
        next_obs = torch.as_tensor(o, dtype=torch.float32, device=device)
        rewards[t] = torch.as_tensor(r, dtype=torch.float32, device=device)
        terminated[t] = torch.as_tensor(term, dtype=torch.float32, device=device)
        ended = np.logical_or(term, trunc)
        dones[t] = torch.as_tensor(ended, dtype=torch.float32, device=device)
        with torch.no_grad():
            value = agent.get_value(next_obs)  # V(obs[t+1]), also values[t+1]: one critic pass per step
            nv = value.clone()
            if ended.any():  # obs[i] of an ended env is already the next episode's: use the real final obs
                idx = np.flatnonzero(ended)
                final = torch.as_tensor(np.stack(infos["final_obs"][idx]), dtype=torch.float32, device=device)
                nv[torch.as_tensor(idx, device=device)] = agent.get_value(final)
                ep = infos["final_info"]
                for i in idx:
                    if ep.get("_episode", np.zeros(n, bool))[i]:
                        episodes.append((t, i, float(ep["episode"]["r"][i]), int(ep["episode"]["l"][i])))
        next_values[t] = nv
    batch = dict(obs=obs, actions=actions, rewards=rewards, values=values, next_values=next_values,
                 terminated=terminated, dones=dones)
    return batch, next_obs, episodes


def merge_rms(stats):
    """Merge per-env running statistics [(mean, var, count)] into one (parallel-variance formula)."""
    mean, var, count = stats[0]
    for m, v, c in stats[1:]:
        delta, total = m - mean, count + c
        var = (var * count + v * c + delta**2 * count * c / total) / total
        mean, count = mean + delta * c / total, total
    return {"mean": np.asarray(mean), "var": np.asarray(var), "count": float(count)}


def evaluate(agent, env_id, eval_episodes, device, obs_rms=None, seed=0):
    """Deterministic policy (argmax / Gaussian mean) on its own env; observation statistics frozen."""
    env = gym.wrappers.RecordEpisodeStatistics(gym.make(env_id))
    if obs_rms is not None:
        env = gym.wrappers.NormalizeObservation(env)
        env.obs_rms.mean, env.obs_rms.var, env.obs_rms.count = obs_rms["mean"], obs_rms["var"], obs_rms["count"]
        env.update_running_mean = False
    box = isinstance(env.action_space, gym.spaces.Box)
    returns = []
    obs, _ = env.reset(seed=seed)
    while len(returns) < eval_episodes:
        with torch.no_grad():
            a = agent.act_deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0]
        a = np.clip(a.cpu().numpy(), env.action_space.low, env.action_space.high) if box else int(a)
        obs, r, term, trunc, info = env.step(a)
        if term or trunc:
            returns.append(float(info["episode"]["r"]))
            obs, _ = env.reset()
    env.close()
    return returns


def check_inputs(args):
    """Refuse bad input with one sentence, before anything is written. Returns the env's spaces."""
    for name in ("num_envs", "num_steps", "total_timesteps", "eval_episodes", "hidden_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"a2c.py: --{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}.")
    if args.total_timesteps < args.num_envs * args.num_steps:
        raise SystemExit(f"a2c.py: --total-timesteps {args.total_timesteps} is less than one rollout "
                         f"(--num-envs x --num-steps = {args.num_envs * args.num_steps}): raise it or shrink the rollout.")
    if not (args.learning_rate > 0 and 0 <= args.gamma <= 1 and 0 <= args.gae_lambda <= 1):
        raise SystemExit("a2c.py: need --learning-rate > 0 and --gamma, --gae-lambda in [0, 1].")
    if args.eval_checkpoint is not None and not os.path.isfile(args.eval_checkpoint):
        raise SystemExit(f"a2c.py: checkpoint {args.eval_checkpoint} does not exist: pass a file written by --save-model.")
    try:
        env = gym.make(args.env_id)
    except gym.error.Error as e:
        raise SystemExit(f"a2c.py: unknown env id {args.env_id!r}: {e} (for example use CartPole-v1).")
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(obs_space, gym.spaces.Box):
        raise SystemExit(f"a2c.py needs a Box observation space; {args.env_id} has {obs_space}: "
                         "flatten it (gym.wrappers.FlattenObservation) or choose another env.")
    if not isinstance(act_space, (gym.spaces.Discrete, gym.spaces.Box)):
        raise SystemExit(f"a2c.py needs a Discrete or Box action space; {args.env_id} has {act_space}: choose another env.")
    return obs_space, act_space


def save_checkpoint(path, agent, args, envs):
    ckpt = {"args": vars(args), "agent": agent.state_dict()}
    for key in ("obs_rms", "return_rms"):
        if (key == "obs_rms" and args.norm_obs) or (key == "return_rms" and args.norm_reward):
            stats = merge_rms([(r.mean, r.var, r.count) for r in envs.get_attr(key)])
            ckpt[key] = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in stats.items()}
    torch.save(ckpt, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: a crash never leaves a half-written checkpoint
    print(f"model saved to {path}")


def eval_checkpoint(args, device):
    ckpt = torch.load(args.eval_checkpoint, map_location="cpu", weights_only=True)  # the rms stats go to numpy
    saved = ckpt["args"]
    env = gym.make(saved["env_id"])
    agent = Agent(env.observation_space, env.action_space, saved["hidden_size"], saved["shared_torso"]).to(device)
    env.close()
    agent.load_state_dict(ckpt["agent"])
    obs_rms = {k: v.numpy() for k, v in ckpt["obs_rms"].items()} if "obs_rms" in ckpt else None
    returns = evaluate(agent, saved["env_id"], args.eval_episodes, device, obs_rms, seed=args.seed)
    print(f"eval/episodic_return={np.mean(returns):.2f} (std {np.std(returns):.2f} over {len(returns)} episodes)")


def main(args):
    obs_space, act_space = check_inputs(args)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")
    if args.eval_checkpoint is not None:
        return eval_checkpoint(args, device)

    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    if args.track:
        import wandb

        wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args), name=run_name,
                   save_code=True)
    log = (lambda metrics, step: wandb.log(metrics, step=step)) if args.track else (lambda metrics, step: None)

    # SAME_STEP autoreset (see collect_rollout): the rollout holds only real transitions.
    vec_env = gym.vector.AsyncVectorEnv if args.async_envs else gym.vector.SyncVectorEnv
    envs = vec_env([make_env(args.env_id, i, args.capture_video, run_name, args.gamma, args.norm_obs, args.norm_reward)
                    for i in range(args.num_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    box = isinstance(act_space, gym.spaces.Box)
    low, high = (act_space.low, act_space.high) if box else (None, None)

    agent = Agent(obs_space, act_space, args.hidden_size, args.shared_torso, args.log_std_init).to(device)
    if args.optimizer == "rmsprop":
        optimizer = torch.optim.RMSprop(agent.parameters(), lr=args.learning_rate, alpha=args.rmsprop_alpha,
                                        eps=args.optim_eps)
    else:
        optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=args.optim_eps)

    batch_size = args.num_envs * args.num_steps
    num_updates = args.total_timesteps // batch_size
    obs, _ = envs.reset(seed=args.seed)
    envs.action_space.seed(args.seed)
    next_obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
    global_step, start, last_print, last_return, interrupted = 0, time.time(), time.time(), float("nan"), False
    try:
        for update in range(1, num_updates + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = (1.0 - (update - 1.0) / num_updates) * args.learning_rate
            b, next_obs, episodes = collect_rollout(envs, agent, next_obs, args.num_steps, device, low, high)
            for t, _, ret, length in episodes:
                step = global_step + (t + 1) * args.num_envs
                last_return = ret
                print(f"global_step={step}, episodic_return={ret:.1f}, episodic_length={length}")
                log({"charts/episodic_return": ret, "charts/episodic_length": length}, step)
            global_step += batch_size

            advantages, returns = compute_gae(b["rewards"], b["values"], b["next_values"], b["terminated"],
                                              b["dones"], args.gamma, args.gae_lambda)
            # One batched forward pass over the whole rollout, with gradients.
            flat_actions = b["actions"].reshape((batch_size,) + act_space.shape)
            _, logprob, entropy, value = agent.get_action_and_value(
                b["obs"].reshape((batch_size,) + obs_space.shape), flat_actions.long() if not box else flat_actions)
            loss, pg_loss, v_loss, entropy_loss = a2c_loss(logprob, entropy, value, advantages.reshape(-1),
                                                           returns.reshape(-1), args.vf_coef, args.ent_coef,
                                                           args.norm_adv)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            optimizer.step()

            now = time.time()
            if now - last_print >= 5.0 or update == num_updates:
                losses = {"losses/loss": loss.item(), "losses/policy_loss": pg_loss.item(),
                          "losses/value_loss": v_loss.item(), "losses/entropy": entropy_loss.item()}
                bad = [k for k, v in losses.items() if not np.isfinite(v)]
                if bad:
                    raise SystemExit(f"a2c.py: {bad[0]} became {losses[bad[0]]} at global_step={global_step}: "
                                     "lower --learning-rate or --max-grad-norm, or try --norm-obs/--norm-reward.")
                sps = int(global_step / (now - start))
                eta = int((args.total_timesteps - global_step) / max(sps, 1))
                print(f"progress: step {global_step}/{args.total_timesteps} "
                      f"({100 * global_step // args.total_timesteps}%) | SPS {sps} | last return {last_return:.1f} | "
                      f"ETA {eta // 3600}:{eta % 3600 // 60:02d}:{eta % 60:02d}", flush=True)
                log({**losses, "charts/SPS": sps, "charts/learning_rate": optimizer.param_groups[0]["lr"]},
                    global_step)
                last_print = now
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at global_step={global_step}; skipping the final evaluation")

    if args.save_model:
        os.makedirs(f"runs/{run_name}", exist_ok=True)
        save_checkpoint(f"runs/{run_name}/{args.exp_name}.pt", agent, args, envs)
    if not interrupted:
        obs_rms = None
        if args.norm_obs:  # evaluation uses the training statistics, frozen
            obs_rms = merge_rms([(r.mean, r.var, r.count) for r in envs.get_attr("obs_rms")])
        returns = evaluate(agent, args.env_id, args.eval_episodes, device, obs_rms, seed=args.seed + 10_000)
        print(f"eval/episodic_return={np.mean(returns):.2f} (std {np.std(returns):.2f} over {len(returns)} episodes)")
        log({"eval/episodic_return": float(np.mean(returns))}, global_step)
    envs.close()
    if args.track:
        if args.capture_video and os.path.isdir(f"runs/{run_name}/videos"):
            for f in sorted(os.listdir(f"runs/{run_name}/videos")):
                if f.endswith(".mp4"):
                    wandb.log({"videos": wandb.Video(f"runs/{run_name}/videos/{f}")})
        wandb.finish()


if __name__ == "__main__":
    main(tyro.cli(Args))
