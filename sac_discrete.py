# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0", "minatar>=1.0.15", "ale-py>=0.10", "opencv-python-headless>=4.8"]
# ///
"""Soft Actor-Critic for Discrete action spaces: a categorical actor, twin critics that output Q(s, .) for every action
(the min of two Polyak-averaged target critics forms the soft value), and a temperature alpha tuned towards a target
entropy of --target-entropy-scale * log|A|. Vector observations get MLPs, images a convolutional encoder.
Papers: Christodoulou 2019, arXiv 1910.07207 (SAC-Discrete); Haarnoja et al. 2018, arXiv 1812.05905 (temperature).

    python sac_discrete.py --env-id CartPole-v1

Deviations (docs/sac_discrete.md gives the reasons for these and for each default):
- the soft value, actor and alpha losses are exact expectations over actions: no sampled actions, no Gumbel-softmax;
- one backward pass for the three losses; the actor uses the critic pass from before this step's update (one-step lag);
- log(alpha) is clamped to [--log-alpha-min, --log-alpha-max] after every step;
- the critic target leaves -alpha log pi out (Yu et al. 2022, arXiv 2201.12434; --backup-entropy: the paper).
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
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from tqdm import tqdm

SCRIPT = "sac_discrete.py"
NAN_HINT = "Try a lower --q-lr or --policy-lr."
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

    env_id: str = "CartPole-v1"  # the env id (Discrete actions; vector or image observations, MinAtar/* and Atari ids)
    total_timesteps: int = 50_000  # total environment steps, summed over all envs
    num_envs: int = 1  # parallel envs; each vector step adds num_envs transitions
    update_frequency: int = 1  # a gradient step every this many vector steps (4 for images, as CleanRL)
    buffer_size: int = 50_000  # the replay memory size, in transitions
    gamma: float = 0.99  # the discount factor
    tau: float = 0.02  # target smoothing coefficient (Polyak averaging)
    target_network_frequency: int = 1  # the Polyak step every this many gradient steps (--tau 1: hard copy)
    batch_size: int = 256  # transitions per gradient step (drawn with replacement, also from a buffer holding fewer)
    learning_starts: int = 2_000  # env steps of uniform random actions before learning starts
    policy_lr: float = 3e-3  # the learning rate of the actor
    q_lr: float = 1e-3  # the learning rate of the critics
    alpha_lr: float = 3e-4  # the learning rate of log(alpha)
    adam_eps: float = 1e-8  # epsilon of Adam (CleanRL's sac_atari.py: 1e-4, for numerical stability on Atari)
    hidden_dim: int = 64  # width of the two hidden layers of the actor and of each critic (vector observations)
    target_entropy_scale: float = 0.7  # target entropy = this * log|A| (a fraction of the maximum entropy)
    alpha_init: float = 0.01  # the initial temperature alpha (log(alpha) starts at its log)
    log_alpha_min: float = -10.0  # lower clamp of log(alpha)
    log_alpha_max: float = 2.0  # upper clamp of log(alpha)
    backup_entropy: bool = False  # -alpha log pi in the critic target, as the paper (default: in the actor loss only)
    eval_episodes: int = 10  # episodes of the final deterministic (greedy) evaluation
    episodic_life: bool = False  # Atari: a lost life ends the episode for learning, not the game (see EpisodicLife)


def make_env(env_id, idx, capture_video, run_name, episodic_life=False, clip_rewards=True):
    def thunk():
        kwargs = {"frameskip": 1} if is_atari(env_id) else {}  # the frame skip is AtariPreprocessing's
        video = capture_video and idx == 0  # (render_mode=None would break envs that take no render_mode)
        env = gym.make(env_id, **kwargs, **({"render_mode": "rgb_array"} if video else {}))
        env = gym.wrappers.RecordVideo(env, f"runs/{run_name}/videos") if video else env
        # per-env statistics (the vector one drops steps under SAME_STEP), inside the Atari wrappers: game scores
        env = gym.wrappers.RecordEpisodeStatistics(env)
        if is_atari(env_id):
            env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84)
            env = EpisodicLife(env) if episodic_life else env
            env = FireReset(env) if "FIRE" in env.unwrapped.get_action_meanings() else env
            env = gym.wrappers.FrameStackObservation(env, 4)
            env = gym.wrappers.TransformReward(env, np.sign) if clip_rewards else env
        return env

    return thunk


def to_float(obs):  # uint8 frames to [0, 1], booleans to 0/1; float observations unchanged
    return obs.float() / 255.0 if obs.dtype == torch.uint8 else obs.float()


def mlp(linear, in_dim, hidden_dim, out_dim):  # two ReLU hidden layers; linear(n_in, n_out) makes each layer
    layers = [linear(in_dim, hidden_dim), nn.ReLU(), linear(hidden_dim, hidden_dim), nn.ReLU()]
    return nn.Sequential(*layers, linear(hidden_dim, out_dim))


class ImageEncoder(nn.Module):
    """Frames (channels first or last) to features: MinAtar's network below 36 pixels, Nature DQN's for Atari frames."""

    def __init__(self, obs_shape):
        super().__init__()
        self.channels_last = obs_shape[2] <= obs_shape[0]  # (10, 10, 4) MinAtar, (4, 84, 84) stacked Atari
        c, h, w = (obs_shape[2], *obs_shape[:2]) if self.channels_last else obs_shape
        if min(h, w) < 36:
            convs, self.features = [nn.Conv2d(c, 16, 3, 1), nn.ReLU()], 128
        else:
            convs = [nn.Conv2d(c, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(), nn.Conv2d(64, 64, 3, 1)]
            convs, self.features = [*convs, nn.ReLU()], 512
        self.convs = nn.Sequential(*convs, nn.Flatten())
        flat = self.convs(torch.zeros(1, c, h, w)).shape[1]
        self.fc = nn.Sequential(nn.Linear(flat, self.features), nn.ReLU())
        # Nature's net at PyTorch's default init died on Breakout: features constant over frames (notes/atari.md)
        for layer in [*convs[::2], self.fc[0]] if self.features == 512 else []:  # orthogonal, gain sqrt(2), as a2c's
            nn.init.orthogonal_(layer.weight, math.sqrt(2)), nn.init.zeros_(layer.bias)

    def forward(self, obs):
        x = to_float(obs)
        return self.fc(self.convs(x.permute(0, 3, 1, 2) if self.channels_last else x))


class Actor(nn.Module):
    """Categorical policy: logits from an MLP (vectors) or an image encoder and one linear layer."""

    def __init__(self, obs_shape, n_actions, hidden_dim):
        super().__init__()
        if len(obs_shape) == 1:
            self.net = mlp(nn.Linear, obs_shape[0], hidden_dim, n_actions)
        else:
            encoder = ImageEncoder(obs_shape)
            self.net = nn.Sequential(encoder, nn.Linear(encoder.features, n_actions))

    def forward(self, obs):  # (pi(.|s), log pi(.|s)), each [B, A]; log_softmax keeps log-probabilities finite
        log_pi = F.log_softmax(self.net(obs), dim=-1)
        return log_pi.exp(), log_pi

    def act(self, obs):  # the greedy action, the most probable one; it draws no random numbers
        return self(obs)[0].argmax(-1)


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
    """Both critics in one module: out[k] = Q(s, .) of critic k, a [2, B, |A|] tensor; images: an encoder per critic."""

    def __init__(self, obs_shape, n_actions, hidden_dim):
        super().__init__()
        self.encoders = None
        if len(obs_shape) == 1:
            self.net = mlp(lambda n_in, n_out: EnsembleLinear(2, n_in, n_out), obs_shape[0], hidden_dim, n_actions)
        else:
            self.encoders = nn.ModuleList([ImageEncoder(obs_shape), ImageEncoder(obs_shape)])
            self.net = EnsembleLinear(2, self.encoders[0].features, n_actions)

    def forward(self, obs):
        if self.encoders is None:
            return self.net(obs.unsqueeze(0).expand(2, *obs.shape))
        return self.net(torch.stack([encoder(obs) for encoder in self.encoders]))


class ReplayBuffer:
    """Preallocated ring buffer of real transitions (s, a, r, s', terminated), observations in their own dtype; s' is
    the true successor of s (the final observation when the episode ended): no transition spans two episodes."""

    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminations")

    def __init__(self, size, obs_space, device):
        self.size, self.pos, self.full, self.added, self.device = size, 0, False, 0, device
        obs_dtype = obs_dtype_of(obs_space)
        self.obs = torch.zeros((size, *obs_space.shape), dtype=obs_dtype, device=device)
        self.next_obs = torch.zeros((size, *obs_space.shape), dtype=obs_dtype, device=device)
        self.actions = torch.zeros(size, dtype=torch.long, device=device)
        self.rewards = torch.zeros(size, device=device)
        self.terminations = torch.zeros(size, device=device)

    @staticmethod
    def nbytes(size, obs_space):
        return size * (2 * math.prod(obs_space.shape) * obs_dtype_of(obs_space).itemsize + 8 + 4 + 4)

    def __len__(self):
        return self.size if self.full else self.pos

    def add(self, obs, next_obs, actions, rewards, terminations):
        idx = (self.pos + np.arange(len(obs))) % self.size
        for name, value in zip(self.FIELDS, (obs, next_obs, actions, rewards, terminations)):
            buf = getattr(self, name)
            buf[idx] = torch.as_tensor(np.asarray(value), dtype=buf.dtype, device=self.device)
        self.full = self.full or self.pos + len(obs) >= self.size
        self.pos = (self.pos + len(obs)) % self.size
        self.added += len(obs)

    def sample(self, batch_size):
        idx = torch.randint(0, len(self), (batch_size,), device=self.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminations[idx]

    def state_dict(self):
        # the filled rows, without a copy on the CPU: torch.save writes a tensor's whole storage, and a numpy view's
        # storage is just its rows (a slice would write the empty rows too; a copy doubled the memory while saving)
        rows = {k: torch.from_numpy(getattr(self, k)[: len(self)].cpu().numpy()) for k in self.FIELDS}
        return {"pos": self.pos, "full": self.full, "added": self.added, **rows}

    def load_state_dict(self, state):
        self.pos, self.full, self.added = state["pos"], state["full"], state.get("added", len(state["obs"]))
        for k in self.FIELDS:
            getattr(self, k)[: len(state[k])] = state[k]


def obs_dtype_of(obs_space):  # the dtype that stores observations of this space without loss: uint8, bool, float32
    return {np.dtype(np.uint8): torch.uint8, np.dtype(bool): torch.bool}.get(np.dtype(obs_space.dtype), torch.float32)


def obs_tensor(obs, device):  # an observation batch on the device, in the buffer's dtype (networks convert images)
    obs = torch.as_tensor(obs, device=device)
    return obs if obs.dtype in (torch.uint8, torch.bool) else obs.float()


def soft_value(next_probs, next_log_pi, next_q_target, alpha):
    """V(s') = sum_a pi(a|s') [min_k Q_targ_k(s', a) - alpha log pi(a|s')] (eq. 10); alpha 0 unless --backup-entropy"""
    q = next_q_target.min(0).values
    return (next_probs * (q - alpha * next_log_pi)).sum(-1)


def critic_loss(q, actions, rewards, terminated, next_v, gamma):
    """Sum over the twin critics of the mean squared soft Bellman error; only termination stops bootstrapping."""
    target = (rewards + gamma * (1.0 - terminated) * next_v).detach()
    q_taken = q.gather(2, actions.view(1, -1, 1).expand(q.shape[0], -1, 1)).squeeze(2)  # [2, B]
    return ((q_taken - target) ** 2).mean(1).sum()


def actor_loss(probs, log_pi, q, alpha):
    """E_s sum_a pi(a|s) [alpha log pi(a|s) - min_k Q_k(s, a)]  (eq. 12): a sum over actions, a mean over states."""
    return (probs * (alpha * log_pi - q.min(0).values.detach())).sum(-1).mean()


def alpha_loss(log_alpha, probs, log_pi, target_entropy):
    """E_s alpha [H(pi(.|s)) - target], H = -sum_a pi log pi (eq. 11): alpha falls while pi is more random than that."""
    entropy = -(probs * log_pi).sum(-1).detach()
    return (log_alpha.exp() * (entropy - target_entropy)).mean()


def update(batch, actor, qf, qf_target, log_alpha, optimizer, args, target_entropy, polyak=True):
    """One step on the three losses, log(alpha)'s clamp, the targets' Polyak step; losses, entropy on the device."""
    obs, actions, rewards, next_obs, terminations = batch
    alpha = log_alpha.detach().exp()
    # One actor pass over s and s': pi(.|s') feeds the target (no gradient), pi(.|s) the actor and alpha losses.
    probs, log_pi = actor(torch.cat([obs, next_obs]))
    (probs, next_probs), (log_pi, next_log_pi) = probs.split(len(obs)), log_pi.split(len(obs))
    with torch.no_grad():
        backup_alpha = alpha if args.backup_entropy else 0.0  # no entropy reward: no bonus for staying alive
        next_v = soft_value(next_probs, next_log_pi, qf_target(next_obs), backup_alpha)
    q = qf(obs)  # the actor loss reuses this pass, from before the critic step (the paper re-evaluates)
    losses = (
        critic_loss(q, actions, rewards, terminations, next_v, args.gamma),
        actor_loss(probs, log_pi, q, alpha),
        alpha_loss(log_alpha, probs, log_pi, target_entropy),
    )
    optimizer.zero_grad(set_to_none=True)
    sum(losses).backward()  # every cross term is detached: one backward pass equals three
    optimizer.step()
    with torch.no_grad():
        log_alpha.clamp_(args.log_alpha_min, args.log_alpha_max)
        for target, online in zip(qf_target.parameters(), qf.parameters()) if polyak else []:
            target.lerp_(online, args.tau)  # Polyak: target += tau * (online - target)
    return losses, -(probs * log_pi).sum(-1).mean().detach()


def main(args):
    if args.eval_checkpoint:
        return run_evaluation_only(args)
    obs_space, act_space = check_env(args.env_id)
    validate(args, obs_space)
    run = Run(args, args.env_id)
    device = run.device
    # SAME_STEP autoreset: an ended env's last observation is in infos["final_obs"], its returned obs the next start
    env_fns = [make_env(args.env_id, i, args.capture_video, run.name, args.episodic_life) for i in range(args.num_envs)]
    envs = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    n_actions = int(act_space.n)
    actor = Actor(obs_space.shape, n_actions, args.hidden_dim).to(device)
    qf = TwinQ(obs_space.shape, n_actions, args.hidden_dim).to(device)
    qf_target = TwinQ(obs_space.shape, n_actions, args.hidden_dim).to(device).requires_grad_(False)
    qf_target.load_state_dict(qf.state_dict())
    log_alpha = torch.tensor(float(np.log(args.alpha_init)), device=device, requires_grad=True)
    target_entropy = args.target_entropy_scale * np.log(n_actions)
    # the three losses touch disjoint parameters, so one Adam over three parameter groups equals three Adams
    groups = [(actor.parameters(), args.policy_lr), (qf.parameters(), args.q_lr), ([log_alpha], args.alpha_lr)]
    optimizer = torch.optim.Adam([{"params": p, "lr": lr} for p, lr in groups], eps=args.adam_eps, fused=True)
    rb = ReplayBuffer(args.buffer_size, obs_space, device)
    saved = dict(actor=actor, qf=qf, qf_target=qf_target, optimizer=optimizer, rb=rb, log_alpha=log_alpha)
    lr = f"{args.policy_lr}/{args.q_lr}/{args.alpha_lr}"
    obs = run.start(envs, saved, lambda: {"obs": obs}, batch=args.batch_size, lr=lr, alpha=args.alpha_init)

    while run.going():
        if run.step < args.learning_starts:
            actions = envs.action_space.sample()
        else:
            with torch.no_grad():
                probs, _ = actor(obs_tensor(obs, device))
            actions = torch.multinomial(probs, 1).squeeze(1).cpu().numpy()
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        run.step += args.num_envs
        real_next_obs = next_obs.copy()  # an ended env's next_obs is the next episode's first: use final_obs
        for i in np.flatnonzero(infos.get("_final_obs", [])):
            real_next_obs[i] = infos["final_obs"][i]
        run.episodes(run.step, infos)
        rb.add(obs, real_next_obs, actions, rewards, terminations)
        obs = next_obs

        # a resume without the buffer refills it first
        if rb.added > args.learning_starts and (run.step // args.num_envs) % args.update_frequency == 0:
            run.updates += 1
            batch = rb.sample(args.batch_size)
            polyak = run.updates % args.target_network_frequency == 0
            losses, entropy = update(batch, actor, qf, qf_target, log_alpha, optimizer, args, target_entropy, polyak)
            if run.updates % 100 == 0:  # the only host reads of the losses: the hot loop never waits on them
                names = ("losses/qf_loss", "losses/actor_loss", "losses/alpha_loss", "losses/entropy", "losses/alpha")
                run.log(dict(zip(names, torch.stack([*losses, entropy, log_alpha.detach().exp()]).tolist())))
    run.finish(lambda: evaluate(actor, args.env_id, args.eval_episodes, args.seed + 10_000, device, args.episodic_life))


def check_env(env_id):
    """Fail with one clear sentence if this script cannot handle env_id; return the env's spaces."""
    register_env_family(env_id)
    if env_id.split(":")[-1] not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {env_id!r}; pick a registered Gymnasium env, e.g. CartPole-v1")
    quiet_third_party(env_id)
    env = make_env(env_id, 0, False, "")()
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(act_space, gym.spaces.Discrete):
        raise SystemExit(f"{SCRIPT} needs a Discrete action space; {env_id} has {act_space}: use sac_continuous.py")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) not in (1, 3):
        needs = f"{SCRIPT} needs a flat Box or an image (rank-3 Box) observation space; {env_id} has {obs_space}"
        raise SystemExit(f"{needs}: flatten it with gymnasium.wrappers.FlattenObservation")
    return obs_space, act_space


class EpisodicLife(gym.Wrapper):
    """--episodic-life: a lost life is terminal for learning, but the game goes on: reset() then steps a no-op."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over, lives = terminated or truncated, self.env.unwrapped.ale.lives()
        terminated, self.lives = terminated or lives < self.lives, lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if getattr(self, "game_over", True):
            obs, info = self.env.reset(**kwargs)
        else:  # a life was lost: the game goes on from here
            obs, _, _, _, info = self.env.step(0)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


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


def validate(args, obs_space):  # nonsensical hyperparameters, or a buffer the machine (or GPU) cannot hold: a sentence
    alpha_range = f"[{np.exp(args.log_alpha_min):.3g}, {np.exp(args.log_alpha_max):.3g}]"
    alpha_outside = f"--alpha-init {args.alpha_init} is outside exp([--log-alpha-min, --log-alpha-max]) = {alpha_range}"
    alpha_in_range = args.alpha_init > 0 and args.log_alpha_min <= np.log(args.alpha_init) <= args.log_alpha_max
    scale_range = f"--target-entropy-scale must be in [0, 1) (got {args.target_entropy_scale}): "
    scale_range += "1 is the maximum entropy log|A|, never reached"
    problems = [
        (not 0 <= args.seed < 2**32, f"--seed must be in [0, 2**32) (got {args.seed})"),
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.hidden_dim < 1, f"--hidden-dim must be >= 1 (got {args.hidden_dim})"),
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
        (min(args.num_envs, args.update_frequency) < 1, "--num-envs and --update-frequency must be >= 1"),
        (args.target_network_frequency < 1, "--target-network-frequency must be >= 1"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (args.buffer_size < args.batch_size, f"--buffer-size {args.buffer_size} is smaller than --batch-size"),
        (args.buffer_size < args.num_envs, f"--buffer-size {args.buffer_size} cannot hold one step of all envs"),
        (args.learning_starts < 0, f"--learning-starts must be >= 0 (got {args.learning_starts})"),
        (not 0.0 < args.gamma <= 1.0, f"--gamma must be in (0, 1] (got {args.gamma})"),
        (not 0.0 < args.tau <= 1.0, f"--tau must be in (0, 1] (got {args.tau})"),
        (not 0.0 <= args.target_entropy_scale < 1.0, scale_range),
        (args.log_alpha_min >= args.log_alpha_max, "--log-alpha-min must be below --log-alpha-max"),
        (not args.alpha_init > 0, f"--alpha-init must be > 0 (got {args.alpha_init})"),
        (args.alpha_init > 0 and not alpha_in_range, alpha_outside),
        (not min(args.policy_lr, args.q_lr, args.alpha_lr) > 0, "--policy-lr, --q-lr and --alpha-lr must be > 0"),
        (not args.adam_eps > 0, f"--adam-eps must be > 0 (got {args.adam_eps})"),
        (args.episodic_life and not is_atari(args.env_id), f"--episodic-life is for Atari ids, not {args.env_id}"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")
    free = math.inf  # without /proc/meminfo (macOS, Windows) or its MemAvailable (Linux < 3.14): not checked
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:  # MemAvailable: free pages and reclaimable cache
        free = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), math.inf)
    free = torch.cuda.mem_get_info()[0] if torch.cuda.is_available() and args.cuda else free  # the buffer's device
    nbytes = ReplayBuffer.nbytes(args.buffer_size, obs_space)
    if nbytes > free:
        sizes = f"{nbytes / 2**30:.1f} GiB, but {free / 2**30:.1f} GiB are free"
        raise SystemExit(f"{SCRIPT}: --buffer-size {args.buffer_size} needs {sizes}: lower it")


def quiet_third_party(env_id):
    """Drop messages that tell the user nothing, each matched by its source and text (never a blanket filter)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # video frames need no display: no XDG_RUNTIME_DIR error
    if "mujoco" in str(gym.spec(env_id.split(":")[-1]).entry_point):
        import mujoco  # the bundled MuJoCo models still use an attribute that MuJoCo 3.3 deprecates

        mujoco.set_mju_user_warning(lambda msg: "settotalmass" in msg or print(f"MuJoCo: {msg}", file=sys.stderr))


def evaluate(actor, env_id, episodes, seed, device, episodic_life=False):
    """The greedy policy on an env of its own (training preprocessing, game rewards): the returns of whole games."""
    env = make_env(env_id, 0, False, "", episodic_life, clip_rewards=False)()
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                action = actor.act(obs_tensor(obs, device)[None])[0]
            obs, reward, terminated, truncated, info = env.step(int(action))
            total, done = total + float(reward), "episode" in info  # RecordEpisodeStatistics: the game is over
            obs = env.reset()[0] if (terminated or truncated) and not done else obs
        returns.append(total)
    env.close()
    return returns


def run_evaluation_only(args):
    ckpt = load_checkpoint(args.eval_checkpoint, mmap=True)  # only what evaluation needs is read
    saved, device = ckpt["args"], torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    obs_space, act_space = check_env(saved["env_id"])
    actor = Actor(obs_space.shape, int(act_space.n), saved["hidden_dim"]).to(device)
    actor.load_state_dict(ckpt["actor"])
    report_eval(evaluate(actor, saved["env_id"], args.eval_episodes, args.seed, device, saved.get("episodic_life")))


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
