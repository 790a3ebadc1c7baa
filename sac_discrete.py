# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0"]
# ///
"""Soft Actor-Critic for Discrete action spaces: a categorical actor, twin critics that output Q(s, .) for every action
(the min of two Polyak-averaged target critics forms the soft value), and a temperature alpha tuned towards a target
entropy of --target-entropy-scale * log|A|.
Papers: Christodoulou 2019, arXiv 1910.07207 (SAC-Discrete); Haarnoja et al. 2018, arXiv 1812.05905 (temperature).

    python sac_discrete.py --env-id CartPole-v1

Deviations:
- the soft value, actor and alpha losses are exact expectations over actions: no sampled actions, no Gumbel-softmax;
- one backward pass for the three losses; the actor uses the critic pass from before this step's update (one-step lag);
- log(alpha) is clamped to [--log-alpha-min, --log-alpha-max] after every step;
- defaults, one mechanism per problem (docs page): the critic target leaves -alpha log pi out (Yu et al. 2022,
  arXiv 2201.12434; --backup-entropy: the paper); a fast actor (lr 3e-3) starting near the critic's greedy policy
  (alpha 0.01); an entropy target of half the maximum entropy; a replay buffer of the last 50k transitions.
Docs: docs/sac_discrete.md
"""

import dataclasses
import glob
import math
import os
import pickle
import random
import signal
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
from tqdm import tqdm

SCRIPT = "sac_discrete.py"
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
    """record videos of the first env into runs/{run_name}/videos (and W&B with --track)"""
    save_model: bool = False
    """save a checkpoint to runs/{run_name}/{exp_name}.pt at the end (and when stopped by a signal)"""
    checkpoint_every: int = 0
    """also save that checkpoint every this many env steps (0: never)"""
    save_buffer: bool = True
    """include the replay buffer in checkpoints, so that --resume continues exactly (--no-save-buffer for huge ones)"""
    resume: Optional[str] = None
    """continue the run saved in this checkpoint (give the same flags as the original command)"""
    eval_checkpoint: Optional[str] = None
    """evaluate this checkpoint instead of training"""

    env_id: str = "CartPole-v1"
    """the id of the environment (Discrete actions, flat Box observations)"""
    total_timesteps: int = 50_000
    """total environment steps, summed over all envs"""
    num_envs: int = 1
    """parallel envs; each vector step adds num_envs transitions and makes one gradient step"""
    buffer_size: int = 50_000
    """the replay memory size, in transitions"""
    gamma: float = 0.99
    """the discount factor"""
    tau: float = 0.02
    """target smoothing coefficient (Polyak averaging)"""
    batch_size: int = 256
    """the batch size of sampled transitions (drawn with replacement, also before the buffer holds a batch)"""
    learning_starts: int = 2_000
    """env steps of uniform random actions before learning starts"""
    policy_lr: float = 3e-3
    """the learning rate of the actor"""
    q_lr: float = 1e-3
    """the learning rate of the critics"""
    alpha_lr: float = 3e-4
    """the learning rate of log(alpha)"""
    hidden_dim: int = 64
    """width of the two hidden layers of the actor and of each critic"""
    target_entropy_scale: float = 0.7
    """target entropy = target_entropy_scale * log|A| (a fraction of the maximum entropy)"""
    alpha_init: float = 0.01
    """the initial temperature alpha (log(alpha) starts at its log)"""
    log_alpha_min: float = -10.0
    """lower clamp of log(alpha)"""
    log_alpha_max: float = 2.0
    """upper clamp of log(alpha)"""
    backup_entropy: bool = False
    """put the entropy bonus -alpha log pi into the critic target, as the paper does; by default the target backs up
    V(s') = sum_a pi(a|s') Q(s', a) and the entropy acts in the actor loss only (Yu et al. 2022, arXiv 2201.12434)"""
    eval_episodes: int = 10
    """episodes of the final deterministic (greedy) evaluation"""


def make_env(env_id, idx, capture_video, run_name):
    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"runs/{run_name}/videos")
        else:
            env = gym.make(env_id)
        # per-env statistics: the vector version drops the first step of later episodes under SAME_STEP autoreset
        return gym.wrappers.RecordEpisodeStatistics(env)

    return thunk


def check_env(env_id):
    """Fail with one clear sentence if this script cannot handle env_id; return the env's spaces."""
    if env_id not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {env_id!r}; pick a registered Gymnasium env, e.g. CartPole-v1")
    quiet_third_party(env_id)
    env = gym.make(env_id)
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(act_space, gym.spaces.Discrete):
        raise SystemExit(f"{SCRIPT} needs a Discrete action space; {env_id} has {act_space}: use sac_continuous.py")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(
            f"{SCRIPT} needs a flat Box observation space; {env_id} has {obs_space}: "
            "flatten it with gymnasium.wrappers.FlattenObservation"
        )
    return obs_space, act_space


def validate(args):
    """Reject nonsensical hyperparameters before anything is written."""
    alpha_range = f"[{np.exp(args.log_alpha_min):.3g}, {np.exp(args.log_alpha_max):.3g}]"
    problems = [
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.num_envs < 1, f"--num-envs must be >= 1 (got {args.num_envs})"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (args.buffer_size < args.batch_size, f"--buffer-size {args.buffer_size} is smaller than --batch-size"),
        (args.buffer_size < args.num_envs, f"--buffer-size {args.buffer_size} cannot hold one step of all envs"),
        (not 0.0 < args.gamma <= 1.0, f"--gamma must be in (0, 1] (got {args.gamma})"),
        (not 0.0 < args.tau <= 1.0, f"--tau must be in (0, 1] (got {args.tau})"),
        (
            not 0.0 <= args.target_entropy_scale < 1.0,
            f"--target-entropy-scale must be in [0, 1) (got {args.target_entropy_scale}): 1 is the maximum entropy "
            "log|A|, never reached",
        ),
        (args.log_alpha_min >= args.log_alpha_max, "--log-alpha-min must be below --log-alpha-max"),
        (not args.alpha_init > 0, f"--alpha-init must be > 0 (got {args.alpha_init})"),
        (
            args.alpha_init > 0 and not args.log_alpha_min <= np.log(args.alpha_init) <= args.log_alpha_max,
            f"--alpha-init {args.alpha_init} is outside exp([--log-alpha-min, --log-alpha-max]) = {alpha_range}",
        ),
        (min(args.policy_lr, args.q_lr, args.alpha_lr) <= 0, "--policy-lr, --q-lr and --alpha-lr must be > 0"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")


class Actor(nn.Module):
    """Categorical policy: logits from an MLP."""

    def __init__(self, obs_dim, n_actions, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, n_actions),
        )

    def forward(self, obs):
        """Returns (pi(.|s), log pi(.|s)), each [B, A]; log_softmax keeps log-probabilities finite."""
        log_pi = F.log_softmax(self.net(obs), dim=-1)
        return log_pi.exp(), log_pi

    def act(self, obs):
        """The greedy action, the most probable one; it draws no random numbers."""
        return self(obs)[0].argmax(-1)


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
            EnsembleLinear(2, obs_dim, hidden_dim),
            nn.ReLU(),
            EnsembleLinear(2, hidden_dim, hidden_dim),
            nn.ReLU(),
            EnsembleLinear(2, hidden_dim, n_actions),
        )

    def forward(self, obs):
        return self.net(obs.unsqueeze(0).expand(2, *obs.shape))


class ReplayBuffer:
    """Preallocated ring buffer of real transitions (s, a, r, s', terminated).

    s' is always the true successor of s in the same episode (the final observation when the episode ended), so a
    stored transition never spans two episodes. Rows are added num_envs at a time, env 0 first.
    """

    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminations")

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
        for name, value in zip(self.FIELDS, (obs, next_obs, actions, rewards, terminations)):
            buf = getattr(self, name)
            buf[idx] = torch.as_tensor(np.asarray(value), dtype=buf.dtype, device=self.device)
        self.full = self.full or self.pos + len(obs) >= self.size
        self.pos = (self.pos + len(obs)) % self.size

    def sample(self, batch_size):
        idx = torch.randint(0, len(self), (batch_size,), device=self.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminations[idx]

    def state_dict(self):
        n = len(self)  # clone: torch.save of a slice would write the whole preallocated storage
        return {"pos": self.pos, "full": self.full, **{k: getattr(self, k)[:n].clone() for k in self.FIELDS}}

    def load_state_dict(self, state):
        self.pos, self.full = state["pos"], state["full"]
        for k in self.FIELDS:
            getattr(self, k)[: len(state[k])] = state[k]


def soft_value(next_probs, next_log_pi, next_q_target, alpha):
    """V(s') = sum_a pi(a|s') [min_k Q_targ_k(s', a) - alpha log pi(a|s')]  (Christodoulou 2019, eq. 10). q: [2, B, A].
    The default run passes alpha = 0 here (no entropy in the target; see --backup-entropy)."""
    q = next_q_target.min(0).values
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


def update(batch, actor, qf, qf_target, log_alpha, optimizer, args, target_entropy):
    """One gradient step on a batch, then the clamp of log(alpha) and the Polyak step of the target critics.
    Returns the (critic, actor, alpha) losses and the policy's mean entropy, left on the device (no host sync).

    The three losses touch disjoint parameters (every cross term is detached), so their sum takes one backward pass
    and one Adam step over three parameter groups; the actor loss reuses this pass's Q(s, .), from before the critic
    step (the paper re-evaluates the updated critics), which saves a critic forward pass."""
    obs, actions, rewards, next_obs, terminations = batch
    alpha = log_alpha.detach().exp()
    # One actor pass over s and s': pi(.|s') feeds the target (no gradient), pi(.|s) the actor and alpha losses.
    probs, log_pi = actor(torch.cat([obs, next_obs]))
    (probs, next_probs), (log_pi, next_log_pi) = probs.split(len(obs)), log_pi.split(len(obs))
    with torch.no_grad():
        backup_alpha = alpha if args.backup_entropy else 0.0  # no entropy reward: no bonus for staying alive
        next_v = soft_value(next_probs, next_log_pi, qf_target(next_obs), backup_alpha)
    q = qf(obs)
    losses = (
        critic_loss(q, actions, rewards, terminations, next_v, args.gamma),
        actor_loss(probs, log_pi, q, alpha),
        alpha_loss(log_alpha, probs, log_pi, target_entropy),
    )
    optimizer.zero_grad(set_to_none=True)
    sum(losses).backward()
    optimizer.step()
    with torch.no_grad():
        log_alpha.clamp_(args.log_alpha_min, args.log_alpha_max)
        # Polyak: target += tau * (online - target)
        torch._foreach_lerp_(list(qf_target.parameters()), list(qf.parameters()), args.tau)
    return losses, -(probs * log_pi).sum(-1).mean().detach()


def evaluate(actor, env_id, episodes, seed, device):
    """Greedy policy (the most probable action) on an env of its own; returns the list of episodic returns."""
    env = gym.make(env_id)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                action = actor.act(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


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
    saved = ckpt["args"]
    obs_space, act_space = check_env(saved["env_id"])
    actor = Actor(obs_space.shape[0], int(act_space.n), saved["hidden_dim"]).to(device)
    actor.load_state_dict(ckpt["actor"])
    report_eval(evaluate(actor, saved["env_id"], args.eval_episodes, args.seed, device), None, 0)


def main(args):
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    if args.eval_checkpoint:
        return run_evaluation_only(args, device)
    validate(args)
    obs_space, act_space = check_env(args.env_id)
    ckpt = load_resume(args) if args.resume else None
    run_name = ckpt["run_name"] if ckpt else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.threads or torch.get_num_threads())

    # SAME_STEP autoreset: when an env ends, its real last observation is in infos["final_obs"] and the returned obs
    # is already the next episode's first, so every step yields one real transition per env.
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, i, args.capture_video, run_name) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    obs_dim, n_actions = obs_space.shape[0], int(act_space.n)
    actor = Actor(obs_dim, n_actions, args.hidden_dim).to(device)
    qf = TwinQ(obs_dim, n_actions, args.hidden_dim).to(device)
    qf_target = TwinQ(obs_dim, n_actions, args.hidden_dim).to(device).requires_grad_(False)
    qf_target.load_state_dict(qf.state_dict())
    log_alpha = torch.tensor(float(np.log(args.alpha_init)), device=device, requires_grad=True)
    target_entropy = args.target_entropy_scale * np.log(n_actions)
    parts = {  # everything with a state_dict that a checkpoint keeps
        "actor": actor, "qf": qf, "qf_target": qf_target,
        # the three losses touch disjoint parameters, so one Adam over three parameter groups equals three Adams
        "optimizer": torch.optim.Adam([{"params": actor.parameters(), "lr": args.policy_lr},
                                       {"params": qf.parameters(), "lr": args.q_lr},
                                       {"params": [log_alpha], "lr": args.alpha_lr}], fused=True),
        "rb": ReplayBuffer(args.buffer_size, obs_dim, device),
    }  # fmt: skip
    optimizer, rb = parts["optimizer"], parts["rb"]
    counters = {"global_step": 0, "updates": 0, "wandb_id": None}
    obs, _ = envs.reset(seed=args.seed)
    envs.action_space.seed(args.seed)
    if ckpt:
        for k, part in parts.items():
            if k in ckpt:  # the buffer is missing from a --no-save-buffer checkpoint
                part.load_state_dict(ckpt[k])
        with torch.no_grad():
            log_alpha.copy_(ckpt["log_alpha"])
        counters = ckpt["counters"]
        obs = restore_run(ckpt, envs, args.seed)
    shown_alpha = log_alpha.exp().item()  # for the progress line; read again only with the losses
    wandb = init_wandb(args, run_name, counters["wandb_id"]) if args.track else None
    counters["wandb_id"] = wandb.run.id if wandb else None
    path = f"runs/{run_name}/{args.exp_name}.pt"

    def checkpoint():
        skip = set() if args.save_buffer else {"rb"}
        state = {k: v.state_dict() for k, v in parts.items() if k not in skip}
        run = {"script": SCRIPT, "args": vars(args), "run_name": run_name, "counters": counters, "obs": obs}
        run.update(rng=rng_state(envs), envs=env_state(envs), log_alpha=log_alpha.detach().cpu())
        save_checkpoint(path, {**run, **state})

    lr = f"{args.policy_lr}/{args.q_lr}/{args.alpha_lr}"
    print_header(
        args.env_id, device, run_name, args.total_timesteps, batch=args.batch_size, lr=lr, alpha=args.alpha_init
    )
    start_step, start_time, stop = counters["global_step"], time.time(), StopSignal()
    progress = Progress(args.total_timesteps, start_step)
    try:
        while counters["global_step"] < args.total_timesteps and stop.signum is None:
            if counters["global_step"] < args.learning_starts:
                actions = envs.action_space.sample()
            else:
                with torch.no_grad():
                    probs, _ = actor(torch.as_tensor(obs, dtype=torch.float32, device=device))
                actions = torch.multinomial(probs, 1).squeeze(1).cpu().numpy()
            next_obs, rewards, terminations, truncations, infos = envs.step(actions)
            global_step = counters["global_step"] = counters["global_step"] + args.num_envs
            real_next_obs = next_obs.copy()
            for i in np.flatnonzero(infos.get("_final_obs", [])):
                real_next_obs[i] = infos["final_obs"][i]
            for i in np.flatnonzero(infos.get("final_info", {}).get("_episode", [])):
                ret, length = float(infos["final_info"]["episode"]["r"][i]), int(infos["final_info"]["episode"]["l"][i])
                progress.episode(global_step, ret, length)
                if wandb:
                    wandb.log({"charts/episodic_return": ret, "charts/episodic_length": length}, step=global_step)
            rb.add(obs, real_next_obs, actions, rewards, terminations)
            obs = next_obs

            if global_step > args.learning_starts:
                updates = counters["updates"] = counters["updates"] + 1
                batch = rb.sample(args.batch_size)
                losses, entropy = update(batch, actor, qf, qf_target, log_alpha, optimizer, args, target_entropy)
                if updates % 100 == 0:  # the only host reads of the losses: the hot loop never waits on them
                    metrics = {
                        "losses/qf_loss": losses[0].item(),
                        "losses/actor_loss": losses[1].item(),
                        "losses/alpha_loss": losses[2].item(),
                        "losses/alpha": log_alpha.exp().item(),
                        "losses/entropy": entropy.item(),
                    }
                    shown_alpha = metrics["losses/alpha"]
                    check_finite(metrics, global_step)
                    if wandb:
                        sps = (global_step - start_step) / (time.time() - start_time)
                        wandb.log({**metrics, "charts/SPS": sps}, step=global_step)
            if args.checkpoint_every and global_step % args.checkpoint_every < args.num_envs:
                checkpoint()
            progress.update(global_step, alpha=shown_alpha)
    except FloatingPointError as e:
        envs.close()
        finish_wandb(wandb, run_name, counters["global_step"], exit_code=1)
        raise SystemExit(f"{SCRIPT}: non-finite loss, stopping: {e}. Try a lower --q-lr or --policy-lr.") from None
    progress.close()
    stop.release()
    global_step = counters["global_step"]
    print(f"SPS={(global_step - start_step) / (time.time() - start_time):.1f} (updates: {counters['updates']})")
    if args.save_model or args.checkpoint_every:
        checkpoint()
        print(f"checkpoint saved to {path}")
    if stop.signum is not None:
        saved = f"resume with --resume {path}" if args.save_model or args.checkpoint_every else "no checkpoint saved"
        print(f"stopped by {signal.Signals(stop.signum).name} at global_step={global_step}: {saved}")
        envs.close()
        finish_wandb(wandb, run_name, global_step, exit_code=128 + stop.signum)
        sys.exit(128 + stop.signum)
    if args.eval_episodes > 0:
        report_eval(evaluate(actor, args.env_id, args.eval_episodes, args.seed + 10_000, device), wandb, global_step)
    envs.close()
    finish_wandb(wandb, run_name, global_step)


if __name__ == "__main__":
    main(parse_args())
