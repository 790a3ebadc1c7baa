# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0", "minatar>=1.0.15", "ale-py>=0.10", "opencv-python-headless>=4.8"]
# ///
"""Synchronous Advantage Actor-Critic (A2C) for Discrete or Box actions: N envs step together for `num_steps` steps,
advantages come from GAE(lambda), and one gradient step on policy loss + vf_coef * value loss - ent_coef * entropy
follows each rollout. Vector observations get MLPs, images a convolutional encoder shared by the actor and the critic.
Papers: Mnih et al. 2016, arXiv 1602.01783 (A3C); Schulman et al. 2015, arXiv 1506.02438 (GAE). Docs: docs/a2c.md

    python a2c.py --env-id CartPole-v1

Deviations from the paper:
- synchronous workers (A2C), and GAE(0.95) by default rather than n-step returns (`--gae-lambda 1` gives those);
- a time-limit truncation bootstraps the value of the real final observation;
- separate actor and critic networks for vectors by default (`--shared-torso` for the paper's shared body);
- Adam with a linearly decayed learning rate by default (`--optimizer rmsprop-tf` for the paper's optimiser).
"""

import contextlib
import dataclasses
import glob
import hashlib
import importlib
import logging
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
from gymnasium.wrappers.utils import RunningMeanStd
from torch.distributions import Categorical, Normal
from tqdm import tqdm

SCRIPT = "a2c.py"
NAN_HINT = "Try a lower --learning-rate or --max-grad-norm, or --norm-obs / --norm-reward."
OBS_EPS = 1e-8  # the epsilon of gym.wrappers.NormalizeObservation, so that evaluation normalises as training did
NORM_CLIP = 10.0  # normalised observations and rewards are clipped to +-this, as SB3's VecNormalize and CleanRL's PPO
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

    env_id: str = "CartPole-v1"  # the env id (Discrete or Box actions; vector or image observations, MinAtar, Atari)
    total_timesteps: int = 200_000  # total env steps (summed over all envs)
    num_envs: int = 8  # the number of parallel envs
    async_envs: bool = False  # step the envs in subprocesses (AsyncVectorEnv) instead of in this process
    num_steps: int = 8  # steps per env per rollout (the n of n-step returns)
    learning_rate: float = 1e-3  # the learning rate of the optimiser
    anneal_lr: bool = True  # decay the learning rate linearly to 0 over training
    # Adam; PyTorch's RMSprop; TensorFlow's RMSprop (RMSpropTF: the A2C paper's and SB3's Atari one; see docs/a2c.md)
    optimizer: Literal["adam", "rmsprop", "rmsprop-tf"] = "adam"
    rmsprop_alpha: float = 0.99  # RMSprop smoothing constant (used with --optimizer rmsprop / rmsprop-tf)
    optim_eps: float = 1e-5  # epsilon of the optimiser
    gamma: float = 0.99  # the discount factor
    gae_lambda: float = 0.95  # GAE lambda (1.0 = n-step returns)
    norm_adv: bool = False  # normalise advantages over each rollout batch
    ent_coef: float = 0.0  # entropy bonus coefficient
    vf_coef: float = 0.5  # value loss coefficient
    max_grad_norm: float = 0.5  # gradient-norm clipping threshold
    hidden_dim: int = 64  # width of the two hidden layers (vector observations)
    shared_torso: bool = False  # actor and critic share the hidden layers (images always share their encoder)
    log_std_init: float = 0.0  # initial log-std of the Gaussian policy (Box actions)
    gsde: bool = False  # state-dependent exploration for Box actions (gSDE, arXiv 2005.05719; see docs/a2c.md)
    norm_obs: bool = False  # normalise observations by running statistics shared by the envs, then clip to +-10
    norm_reward: bool = False  # scale rewards by a running std of the envs' discounted returns, then clip to +-10
    eval_episodes: int = 10  # episodes of the final deterministic evaluation


def make_env(env_id, idx, capture_video, run_name, clip_rewards=True):
    main_pid = os.getpid()

    def thunk():
        if os.getpid() != main_pid:  # an AsyncVectorEnv worker: Ctrl-C or a pre-emption signal sent to the whole
            for sig in (signal.SIGINT, signal.SIGTERM):  # process group is for the main process, which stops
                signal.signal(sig, signal.SIG_IGN)  # between rollouts, saves, then closes the envs
            register_env_family(env_id)  # a spawned worker has not registered MinAtar / Atari ids yet
        kwargs = {"frameskip": 1} if is_atari(env_id) else {}  # the frame skip is AtariPreprocessing's
        video = capture_video and idx == 0  # (render_mode=None would break envs that take no render_mode)
        env = gym.make(env_id, **kwargs, **({"render_mode": "rgb_array"} if video else {}))
        env = gym.wrappers.RecordVideo(env, f"runs/{run_name}/videos") if video else env
        env = gym.wrappers.RecordEpisodeStatistics(env)  # first: it sees the game score, not clipped or normalised
        if is_atari(env_id):
            env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84)
            env = FireReset(env) if "FIRE" in env.unwrapped.get_action_meanings() else env
            env = gym.wrappers.FrameStackObservation(env, 4)
            env = gym.wrappers.TransformReward(env, np.sign) if clip_rewards else env
        return env

    return thunk


class Normaliser:
    """--norm-obs / --norm-reward: one running mean / variance of the observations and one of the discounted returns,
    shared by all envs as SB3's VecNormalize (per-env statistics drift apart: benchmark/notes/a2c_box_noise.md)."""

    def __init__(self, num_envs, obs_shape, gamma, norm_obs, norm_reward, ckpt=None):  # ckpt: of a resumed run
        self.norm_obs, self.norm_reward, self.gamma = norm_obs, norm_reward, gamma
        self.obs_rms, self.return_rms = RunningMeanStd(shape=obs_shape), RunningMeanStd(shape=())
        self.returns = np.zeros(num_envs)  # each env's discounted return so far
        if ckpt and "normaliser" not in ckpt and (norm_obs or norm_reward):  # a2c.py normalised per env before
            raise SystemExit(f"{SCRIPT}: this checkpoint's normalisation is per env (before 2026-12): start a new run")
        vars(self).update((ckpt or {}).get("normaliser", {}))
        if ckpt and not ckpt["envs"]:  # the envs restart from a reset (they were not saved): so do their returns
            self.returns = np.zeros(num_envs)

    def obs(self, obs, update=False):  # update with the observations of each vector step, once
        if not self.norm_obs:
            return obs
        self.obs_rms.update(obs) if update else None
        normalised = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + OBS_EPS)
        return np.clip(normalised, -NORM_CLIP, NORM_CLIP).astype(np.float32)

    def reward(self, rewards, ended):  # the reward is divided by the return's std, not centred (as SB3)
        if not self.norm_reward:
            return rewards
        self.returns = self.returns * self.gamma + rewards
        self.return_rms.update(self.returns)
        self.returns[ended] = 0.0  # the next episode's return starts at 0
        return np.clip(rewards / np.sqrt(self.return_rms.var + OBS_EPS), -NORM_CLIP, NORM_CLIP)

    def to_agent(self, agent):  # the observation statistics, for evaluation and checkpoints
        if self.norm_obs:
            rms, agent.obs_clip = self.obs_rms, NORM_CLIP
            agent.obs_mean.copy_(torch.as_tensor(rms.mean)), agent.obs_var.copy_(torch.as_tensor(rms.var))


def layer_init(layer, std=np.sqrt(2)):  # orthogonal weights, zero biases
    torch.nn.init.orthogonal_(layer.weight, std), torch.nn.init.zeros_(layer.bias)
    return layer


def mlp(in_dim, hidden_dim, out_dim=None, out_std=1.0):
    first, second = layer_init(nn.Linear(in_dim, hidden_dim)), layer_init(nn.Linear(hidden_dim, hidden_dim))
    head = [] if out_dim is None else [layer_init(nn.Linear(hidden_dim, out_dim), std=out_std)]
    return nn.Sequential(first, nn.Tanh(), second, nn.Tanh(), *head)


class ImageEncoder(nn.Module):
    """Frames, channels first or last, to features: MinAtar's network for grids under 36 pixels, else Nature DQN's."""

    def __init__(self, obs_shape):
        super().__init__()
        self.channels_last = obs_shape[2] <= obs_shape[0]  # (10, 10, 4) MinAtar, (4, 84, 84) stacked Atari
        c, h, w = (obs_shape[2], *obs_shape[:2]) if self.channels_last else obs_shape
        if min(h, w) < 36:
            convs, self.features = [nn.Conv2d(c, 16, 3, 1), nn.ReLU()], 128
        else:
            convs = [nn.Conv2d(c, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(), nn.Conv2d(64, 64, 3, 1)]
            convs, self.features = [*convs, nn.ReLU()], 512
        # orthogonal init, gain sqrt(2), as the MLPs: PyTorch's default left Pong's features ~constant (notes/atari.md)
        self.convs = nn.Sequential(*[layer_init(m) if isinstance(m, nn.Conv2d) else m for m in convs], nn.Flatten())
        flat = self.convs(torch.zeros(1, c, h, w)).shape[1]
        self.fc = nn.Sequential(layer_init(nn.Linear(flat, self.features)), nn.ReLU())

    def forward(self, obs):
        x = obs.float() / 255.0 if obs.dtype == torch.uint8 else obs.float()  # uint8 to [0, 1], bool to 0 / 1
        return self.fc(self.convs(x.permute(0, 3, 1, 2) if self.channels_last else x))


class Agent(nn.Module):
    """Categorical or Gaussian policy and a state-value critic; `act` normalises raw observations as training did."""

    def __init__(self, obs_space, action_space, hidden_dim=64, shared_torso=False, log_std_init=0.0, gsde=False):
        super().__init__()
        self.gsde, self.noise, self.obs_clip = gsde, None, math.inf  # obs_clip: NORM_CLIP with --norm-obs
        obs_dim = int(np.prod(obs_space.shape))
        self.discrete, self.image = isinstance(action_space, gym.spaces.Discrete), len(obs_space.shape) == 3
        act_dim = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        if self.image:  # one encoder for both heads: two would double the costliest part
            self.torso = ImageEncoder(obs_space.shape)
            hidden_dim = self.torso.features
        elif shared_torso:
            self.torso = mlp(obs_dim, hidden_dim)
        if self.image or shared_torso:
            self.actor = layer_init(nn.Linear(hidden_dim, act_dim), std=0.01)
            self.critic = layer_init(nn.Linear(hidden_dim, 1), std=1.0)
        else:
            self.torso = nn.Identity()
            self.actor = mlp(obs_dim, hidden_dim, act_dim, out_std=0.01)
            self.critic = mlp(obs_dim, hidden_dim, 1, out_std=1.0)
        if not self.discrete:  # a state-independent log-std (the A3C paper, SB3); gSDE: one per weight
            self.actor_logstd = nn.Parameter(log_std_init + torch.zeros((hidden_dim, act_dim) if gsde else (act_dim,)))
        if not self.image:  # the training statistics (Normaliser.to_agent); the defaults: no normalising
            self.register_buffer("obs_mean", torch.zeros(obs_dim)), self.register_buffer("obs_var", torch.ones(obs_dim))

    def get_value(self, x):
        return self.critic(self.torso(x)).squeeze(-1)

    def dist(self, h):
        if self.discrete:
            return Categorical(logits=self.actor(h))
        split = isinstance(self.actor, nn.Sequential)  # hidden layers and a head, or (shared torso) a head only
        self.latent = self.actor[:-1](h) if split else h  # the actor's last hidden features
        mean = (self.actor[-1] if split else self.actor)(self.latent)
        if not self.gsde:
            return Normal(mean, self.actor_logstd.exp().expand_as(mean))
        # gSDE: noise = latent @ W, W ~ N(0, sigma^2): variance latent^2 @ sigma^2 (latent detached, as in SB3)
        return Normal(mean, torch.sqrt(self.latent.detach() ** 2 @ self.actor_logstd.exp() ** 2 + 1e-6))

    def reset_noise(self, num_envs):  # gSDE: each env's exploration weights W, drawn at the start of every rollout
        sigma = self.actor_logstd.detach().exp()
        self.noise = torch.randn(num_envs, *sigma.shape, device=sigma.device) * sigma

    def get_action(self, x):
        dist = self.dist(self.torso(x))
        if self.gsde:  # the same W for the whole rollout: the noise is a smooth function of the state
            return dist.loc + (self.latent[:, None] @ self.noise).squeeze(1)
        return dist.sample()

    def evaluate_actions(self, x, action):  # what the update differentiates: log-probs, entropies, state values
        dist = self.dist(h := self.torso(x))
        logprob, entropy = dist.log_prob(action), dist.entropy()
        if not self.discrete:  # diagonal Gaussian: independent dimensions
            logprob, entropy = logprob.sum(-1), entropy.sum(-1)
        return logprob, entropy, self.critic(h).squeeze(-1)

    def act(self, raw_obs):
        """The deterministic action (argmax / Gaussian mean) for a raw observation; it draws no random numbers."""
        x = raw_obs if self.image else (raw_obs - self.obs_mean) / torch.sqrt(self.obs_var + OBS_EPS)
        x = x if self.image else x.clamp(-self.obs_clip, self.obs_clip)
        out = self.actor(self.torso(x))
        return out.argmax(-1) if self.discrete else out


def obs_dtype_of(obs_space):  # the rollout's dtype: images keep uint8 / bool (the encoder converts), vectors float32
    image_dtypes = {np.dtype(np.uint8): torch.uint8, np.dtype(bool): torch.bool}
    return image_dtypes.get(np.dtype(obs_space.dtype), torch.float32) if len(obs_space.shape) == 3 else torch.float32


@torch.no_grad()
def collect_rollout(envs, agent, obs, num_steps, device, normaliser, action_low=None, action_high=None):
    """Step all envs num_steps times from raw `obs`: the rollout ([T, N], normalised), raw next obs, (t, infos)."""
    num_envs, obs_space = envs.num_envs, envs.single_observation_space
    dtype = obs_dtype_of(obs_space)
    rollout = {"obs": torch.zeros((num_steps, num_envs, *obs_space.shape), dtype=dtype, device=device)}
    rollout["actions"] = torch.zeros((num_steps, num_envs, *envs.single_action_space.shape), device=device)
    for name in ("rewards", "values", "next_values", "terminated", "dones"):
        rollout[name] = torch.zeros((num_steps, num_envs), device=device)
    episodes = []
    next_obs = torch.as_tensor(normaliser.obs(obs), dtype=dtype, device=device)  # statistics updated when obs came
    value = agent.get_value(next_obs)
    agent.reset_noise(num_envs) if agent.gsde else None
    for t in range(num_steps):
        rollout["obs"][t], rollout["values"][t] = next_obs, value
        action = agent.get_action(next_obs)
        rollout["actions"][t], env_action = action, action.cpu().numpy()
        if action_low is not None:  # clip only what the env sees; the loss uses the unclipped sample
            env_action = np.clip(env_action, action_low, action_high)
        obs, rewards, terminations, truncations, infos = envs.step(env_action)
        ended = np.logical_or(terminations, truncations)
        next_obs = torch.as_tensor(normaliser.obs(obs, update=True), dtype=dtype, device=device)
        rollout["rewards"][t] = torch.as_tensor(normaliser.reward(rewards, ended), dtype=torch.float32, device=device)
        rollout["terminated"][t] = torch.as_tensor(terminations, dtype=torch.float32, device=device)
        rollout["dones"][t] = torch.as_tensor(ended, dtype=torch.float32, device=device)
        value = agent.get_value(next_obs)  # V(obs[t+1]), also values[t+1]: one critic pass per step
        next_value = value.clone()
        if ended.any():  # SAME_STEP autoreset: obs[i] of an ended env is already the next episode's first
            ends = np.flatnonzero(ended)  # their final obs: normalised, not added to the statistics
            final = torch.as_tensor(normaliser.obs(np.stack(infos["final_obs"][ends])), dtype=dtype, device=device)
            next_value[torch.as_tensor(ends, device=device)] = agent.get_value(final)
        rollout["next_values"][t] = next_value
        episodes += [(t, infos)] if "final_info" in infos else []
    return rollout, obs, episodes


def compute_gae(rewards, values, next_values, terminated, dones, gamma, gae_lambda):
    """GAE over a [T, N] rollout (arXiv:1506.02438, eq. 16); next_values[t] is V of the real next observation,
    terminated[t] drops it, dones[t] (terminated | truncated) cuts the lambda-chain. Returns (advantages, returns)."""
    advantages, lastgaelam = torch.zeros_like(rewards), torch.zeros_like(rewards[0])
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


class RMSpropTF(torch.optim.Optimizer):  # SB3's RMSpropTFLike: the square average starts at 1, eps inside the sqrt
    def __init__(self, params, lr, alpha, eps):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

    @torch.no_grad()
    def step(self):
        for group, p in [(g, p) for g in self.param_groups for p in g["params"] if p.grad is not None]:
            square_avg = self.state[p].setdefault("square_avg", torch.ones_like(p))
            square_avg.mul_(group["alpha"]).addcmul_(p.grad, p.grad, value=1 - group["alpha"])
            p.addcdiv_(p.grad, (square_avg + group["eps"]).sqrt(), value=-group["lr"])


def update(agent, optimizer, rollout, args):
    """One gradient step on a rollout (GAE, one batched forward pass); the (total, policy, value, entropy) losses."""
    gae_inputs = [rollout[k] for k in ("rewards", "values", "next_values", "terminated", "dones")]
    advantages, returns = (x.flatten() for x in compute_gae(*gae_inputs, args.gamma, args.gae_lambda))
    obs, actions = rollout["obs"].flatten(0, 1), rollout["actions"].flatten(0, 1)  # [T, N, ...] -> [T * N, ...]
    logprob, entropy, value = agent.evaluate_actions(obs, actions.long() if agent.discrete else actions)
    losses = a2c_loss(logprob, entropy, value, advantages, returns, args.vf_coef, args.ent_coef, args.norm_adv)
    optimizer.zero_grad()
    losses[0].backward()
    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
    optimizer.step()
    return losses


def main(args):
    if args.eval_checkpoint:
        return run_evaluation_only(args)
    obs_space, act_space = check_env(args.env_id)
    validate(args, obs_space, act_space)
    run = Run(args, args.env_id)
    device = run.device
    vector_env = gym.vector.AsyncVectorEnv if args.async_envs else gym.vector.SyncVectorEnv
    env_fns = [make_env(args.env_id, i, args.capture_video, run.name) for i in range(args.num_envs)]
    envs = vector_env(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    normaliser = Normaliser(args.num_envs, obs_space.shape, args.gamma, args.norm_obs, args.norm_reward, run.ckpt)
    low, high = (act_space.low, act_space.high) if isinstance(act_space, gym.spaces.Box) else (None, None)
    agent = Agent(obs_space, act_space, args.hidden_dim, args.shared_torso, args.log_std_init, args.gsde).to(device)
    optimizer_class = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "rmsprop-tf": RMSpropTF}
    alpha = {} if args.optimizer == "adam" else {"alpha": args.rmsprop_alpha}
    optimizer = optimizer_class[args.optimizer](agent.parameters(), lr=args.learning_rate, eps=args.optim_eps, **alpha)
    batch_size = args.num_envs * args.num_steps
    num_updates = args.total_timesteps // batch_size

    def checkpoint_state():
        normaliser.to_agent(agent)  # into the agent's state_dict, taken just before: it holds them by reference
        return {"obs": obs, "normaliser": dict(vars(normaliser))}

    header = dict(rollout=f"{args.num_envs}x{args.num_steps}", optimizer=args.optimizer, lr=args.learning_rate)
    saved = {"agent": agent, "optimizer": optimizer}
    obs = run.start(envs, saved, checkpoint_state, total=num_updates * batch_size, **header)

    while run.going():
        if args.anneal_lr:  # run.updates is the position in the schedule
            optimizer.param_groups[0]["lr"] = (1.0 - run.updates / num_updates) * args.learning_rate
        rollout, obs, episodes = collect_rollout(envs, agent, obs, args.num_steps, device, normaliser, low, high)
        for t, infos in episodes:  # at the step where each ended
            run.episodes(run.step + (t + 1) * args.num_envs, infos)
        run.step += batch_size
        run.updates += 1
        losses = update(agent, optimizer, rollout, args)
        names = ("losses/loss", "losses/policy_loss", "losses/value_loss", "losses/entropy")
        metrics = dict(zip(names, torch.stack(losses).tolist()))  # free: the rollout syncs at every env step anyway
        run.log({**metrics, "charts/learning_rate": optimizer.param_groups[0]["lr"]})

    def wrap_up():
        normaliser.to_agent(agent)  # evaluation normalises raw observations with the training statistics
        return evaluate(agent, args.env_id, args.eval_episodes, args.seed + 10_000, device)

    run.finish(wrap_up)


def check_env(env_id):
    """Fail with one clear sentence if this script cannot handle env_id; return the env's spaces."""
    register_env_family(env_id)
    if env_id.split(":")[-1] not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {env_id!r}; pick a registered Gymnasium env, e.g. CartPole-v1")
    quiet_third_party(env_id)
    env = make_env(env_id, 0, False, "")()
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) not in (1, 3):
        hint = "flatten it (images, rank-3 Boxes, work as they are)"
        raise SystemExit(f"{SCRIPT} needs a flat Box observation space; {env_id} has {obs_space}: {hint}")
    flat_box = isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1
    if not (isinstance(act_space, gym.spaces.Discrete) or flat_box):
        raise SystemExit(f"{SCRIPT} needs a Discrete or flat Box action space; {env_id} has {act_space}")
    return obs_space, act_space


class FireReset(gym.Wrapper):  # press FIRE after a reset, for games that wait for it (Breakout's ball)
    def reset(self, **kwargs):
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(1)
        return self.env.reset(**kwargs) if terminated or truncated else (obs, info)


def is_atari(env_id):
    return env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4")


def register_env_family(env_id):
    """Register MinAtar / Atari ids, or import the module of a "module:Env-v0" id, only when env_id needs it."""
    if ":" in env_id:
        try:
            importlib.import_module(env_id.split(":")[0])
        except ImportError as e:
            raise SystemExit(f"{SCRIPT}: the module of env id {env_id!r} cannot be imported ({e})") from None
    if env_id.startswith("MinAtar/") and env_id not in gym.registry:
        logging.getLogger().addFilter(lambda record: "seaborn" not in record.getMessage())  # minatar's plots only
        import minatar.gym

        minatar.gym.register_envs()
    if is_atari(env_id) and env_id not in gym.registry:
        import ale_py

        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on every env
        gym.register_envs(ale_py)


def validate(args, obs_space, act_space):  # reject nonsensical hyperparameters before anything is written
    rollout = args.num_envs * args.num_steps
    norm_images = f"--norm-obs is for vector observations; {args.env_id} gives images, which the encoder scales itself"
    problems = [
        (not 0 <= args.seed < 2**32, f"--seed must be in [0, 2**32) (got {args.seed})"),
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
        (args.hidden_dim < 1, f"--hidden-dim must be >= 1 (got {args.hidden_dim})"),
        (min(args.num_envs, args.num_steps) < 1, "--num-envs and --num-steps must be >= 1"),
        (args.total_timesteps < rollout, f"--total-timesteps {args.total_timesteps} < one rollout of {rollout} steps"),
        (not min(args.learning_rate, args.max_grad_norm) > 0, "--learning-rate and --max-grad-norm must be > 0"),
        (not 0.0 <= args.gamma <= 1.0, f"--gamma must be in [0, 1] (got {args.gamma})"),
        (not 0.0 <= args.gae_lambda <= 1.0, f"--gae-lambda must be in [0, 1] (got {args.gae_lambda})"),
        (args.norm_obs and len(obs_space.shape) == 3, norm_images),
        (args.gsde and isinstance(act_space, gym.spaces.Discrete), f"--gsde is for Box actions, not {act_space}"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")


def quiet_third_party(env_id):
    """Drop messages that tell the user nothing, each matched by its source and text (never a blanket filter)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # video frames need no display: no XDG_RUNTIME_DIR error
    if "mujoco" in str(gym.spec(env_id.split(":")[-1]).entry_point):
        import mujoco  # the bundled MuJoCo models still use an attribute that MuJoCo 3.3 deprecates

        mujoco.set_mju_user_warning(lambda msg: "settotalmass" in msg or print(f"MuJoCo: {msg}", file=sys.stderr))


@torch.no_grad()
def evaluate(agent, env_id, episodes, seed, device):
    """The deterministic policy on an env of its own (training preprocessing, game rewards): the episodic returns."""
    env = make_env(env_id, 0, False, "", clip_rewards=False)()
    box, dtype = isinstance(env.action_space, gym.spaces.Box), obs_dtype_of(env.observation_space)
    returns = []
    for ep in range(episodes):
        (obs, _), done, total = env.reset(seed=seed + ep), False, 0.0
        while not done:
            action = agent.act(torch.as_tensor(obs, dtype=dtype, device=device)[None])[0].cpu().numpy()
            action = np.clip(action, env.action_space.low, env.action_space.high) if box else int(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def run_evaluation_only(args):
    ckpt = load_checkpoint(args.eval_checkpoint, mmap=True)  # only what evaluation needs is read
    saved = {**vars(Args()), **ckpt["args"]}  # a flag added since the checkpoint was written has its default
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    obs_space, act_space = check_env(saved["env_id"])
    agent = Agent(obs_space, act_space, *(saved[k] for k in ("hidden_dim", "shared_torso", "log_std_init", "gsde")))
    agent.to(device).load_state_dict(ckpt["agent"])  # with the observation statistics of training
    agent.obs_clip = NORM_CLIP if saved["norm_obs"] else math.inf
    report_eval(evaluate(agent, saved["env_id"], args.eval_episodes, args.seed, device))


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
