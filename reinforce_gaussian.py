# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0"]
# ///
"""REINFORCE for Box action spaces with a diagonal Gaussian policy (mu(s) a network, log sigma a free parameter):
each update collects a batch of whole episodes and takes one step on -mean(log pi(a|s) * Psi), Psi the discounted
reward-to-go, optionally minus a baseline (the batch mean, or a learned V(s) with GAE(lambda) advantages).
Papers: Williams 1992, Machine Learning 8:229-256 (REINFORCE, not on arXiv); Schulman et al. 2015, arXiv 1506.02438.

    python reinforce_gaussian.py --env-id InvertedPendulum-v5

Deviations:
- Adam with the learning rates decayed linearly to 0 (--anneal-lr), and gradient-norm clipping;
- Psi standardised over the batch (--norm-adv; with --baseline none only scaled, since centring is a baseline);
- V(s) fitted with --vf-iters full-batch steps on the lambda-returns; it bootstraps episodes cut by a time limit.
GaussianBandit-v0 (one state, one step; registered on import) prints mu and sigma after every update.
Docs: docs/reinforce_gaussian.md
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
from typing import Literal, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from tqdm import tqdm

SCRIPT = "reinforce_gaussian.py"
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
    resume: Optional[str] = None
    """continue the run saved in this checkpoint (give the same flags as the original command)"""
    eval_checkpoint: Optional[str] = None
    """evaluate this checkpoint instead of training"""

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
    eval_episodes: int = 10
    """episodes of the final deterministic evaluation"""
    hidden_dim: int = 64
    """units in each of the two hidden layers (policy and value net)"""


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
        # per-env statistics: the vector version drops the first step of later episodes under SAME_STEP autoreset
        return gym.wrappers.RecordEpisodeStatistics(env)

    return thunk


def check_env(env_id):
    """Fail with one clear sentence if this script cannot handle env_id; return the env's spaces and, for the
    built-in bandit, its target tau (else None)."""
    if env_id not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {env_id!r}; pick a registered Gymnasium env, e.g. Pendulum-v1")
    quiet_third_party(env_id)
    env = gym.make(env_id)
    obs_space, act_space = env.observation_space, env.action_space
    bandit_tau = env.unwrapped.tau if isinstance(env.unwrapped, GaussianBandit) else None
    env.close()
    if not isinstance(act_space, gym.spaces.Box):
        raise SystemExit(f"{SCRIPT} needs a Box action space; {env_id} has {act_space}: use a2c.py or sac_discrete.py")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"{SCRIPT} needs a flat Box observation space; {env_id} has {obs_space}: flatten it")
    return obs_space, act_space, bandit_tau


def validate(args):
    """Reject nonsensical hyperparameters before anything is written."""
    problems = [
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        (args.total_timesteps < 1, f"--total-timesteps must be >= 1 (got {args.total_timesteps})"),
        (args.num_envs < 1, f"--num-envs must be >= 1 (got {args.num_envs})"),
        (args.batch_size < 1, f"--batch-size must be >= 1 (got {args.batch_size})"),
        (not 0.0 <= args.gamma <= 1.0, f"--gamma must be in [0, 1] (got {args.gamma})"),
        (not 0.0 <= args.gae_lambda <= 1.0, f"--gae-lambda must be in [0, 1] (got {args.gae_lambda})"),
        (min(args.learning_rate, args.vf_learning_rate) <= 0, "--learning-rate and --vf-learning-rate must be > 0"),
        (args.max_grad_norm <= 0, f"--max-grad-norm must be > 0 (got {args.max_grad_norm})"),
        (args.vf_iters < 0, f"--vf-iters must be >= 0 (got {args.vf_iters})"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Actor(nn.Module):
    """Diagonal Gaussian policy: mu(s) from a tanh MLP, log sigma a free parameter (or a second head). The action
    bounds are buffers, so a checkpoint alone can evaluate the policy."""

    def __init__(self, obs_dim, act_space, hidden_dim, state_dependent_std=False, log_std_init=-0.5):
        super().__init__()
        act_dim = act_space.shape[0]
        self.body = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden_dim)), nn.Tanh(),
            layer_init(nn.Linear(hidden_dim, hidden_dim)), nn.Tanh(),
        )  # fmt: skip
        self.mu = layer_init(nn.Linear(hidden_dim, act_dim), std=0.01)
        if state_dependent_std:
            self.log_std_head = layer_init(nn.Linear(hidden_dim, act_dim), std=0.01, bias_const=log_std_init)
        else:
            self.log_std = nn.Parameter(torch.full((act_dim,), log_std_init))
        self.state_dependent_std = state_dependent_std
        self.register_buffer("low", torch.as_tensor(act_space.low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(act_space.high, dtype=torch.float32))

    def forward(self, obs):
        """mu(s) and sigma(s) of the diagonal Gaussian."""
        h = self.body(obs)
        log_std = self.log_std_head(h) if self.state_dependent_std else self.log_std.expand(h.shape[0], -1)
        return self.mu(h), log_std.exp()

    def dist(self, obs):
        mu, std = self(obs)
        return torch.distributions.Normal(mu, std)

    def act(self, obs):
        """The deterministic action mu(s), clipped into the bounds; it draws no random numbers."""
        return torch.clamp(self(obs)[0], self.low, self.high)


class Critic(nn.Module):
    def __init__(self, obs_dim, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden_dim)), nn.Tanh(),
            layer_init(nn.Linear(hidden_dim, hidden_dim)), nn.Tanh(),
            layer_init(nn.Linear(hidden_dim, 1), std=1.0),
        )  # fmt: skip

    def forward(self, obs):
        return self.net(obs).squeeze(-1)


@dataclass
class Batch:
    """Whole episodes back to back. Per step: obs, actions (the unclipped samples), rewards, and ends (True at an
    episode's last step). Per episode, in the same order: final_obs (the real last observation) and truncated (cut
    by a time limit rather than terminated)."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    ends: np.ndarray
    final_obs: np.ndarray
    truncated: np.ndarray


def collect_batch(envs, actor, obs, args, device, progress, step):
    """Run the current policy from obs until the batch holds args.batch_size steps of whole episodes (see
    --batch-size). Returns the Batch, the global step after it, and (step, return, length) of every episode that
    ended meanwhile, discarded ones included."""
    n = envs.num_envs
    ep_obs, ep_act, ep_rew = ([[] for _ in range(n)] for _ in range(3))
    kept = {"obs": [], "actions": [], "rewards": [], "final_obs": [], "truncated": [], "lengths": []}
    collecting = np.ones(n, dtype=bool)  # env still owes the batch its current episode
    batch_steps, finished = 0, []
    while collecting.any():
        with torch.no_grad():
            action = actor.dist(torch.as_tensor(obs, dtype=torch.float32, device=device)).sample().cpu().numpy()
        # clip only when stepping the env: the log-prob is of the unclipped sample
        next_obs, reward, terminated, truncated, infos = envs.step(
            np.clip(action, envs.single_action_space.low, envs.single_action_space.high)
        )
        step += n
        for i in np.flatnonzero(collecting):
            ep_obs[i].append(obs[i])
            ep_act[i].append(action[i])
            ep_rew[i].append(reward[i])
        batch_steps += int(collecting.sum())
        for i in np.flatnonzero(infos.get("final_info", {}).get("_episode", [])):
            ret, length = float(infos["final_info"]["episode"]["r"][i]), int(infos["final_info"]["episode"]["l"][i])
            progress.episode(step, ret, length)
            finished.append((step, ret, length))
        for i in np.flatnonzero(terminated | truncated):
            if collecting[i]:
                # under SAME_STEP autoreset next_obs[i] is already the next episode's first obs: use final_obs
                for key, values in (("obs", ep_obs[i]), ("actions", ep_act[i]), ("rewards", ep_rew[i])):
                    kept[key].extend(values)
                kept["final_obs"].append(infos["final_obs"][i])
                kept["truncated"].append(bool(truncated[i] and not terminated[i]))
                kept["lengths"].append(len(ep_rew[i]))
                collecting[i] = batch_steps < args.batch_size
            ep_obs[i], ep_act[i], ep_rew[i] = [], [], []
        obs = next_obs
        progress.update(step)
    ends = np.zeros(len(kept["rewards"]), dtype=bool)
    ends[np.cumsum(kept["lengths"]) - 1] = True
    batch = Batch(
        obs=np.array(kept["obs"], dtype=np.float32),
        actions=np.array(kept["actions"], dtype=np.float32),
        rewards=np.array(kept["rewards"], dtype=np.float64),
        ends=ends,
        final_obs=np.array(kept["final_obs"], dtype=np.float32),
        truncated=np.array(kept["truncated"], dtype=bool),
    )
    return batch, step, finished


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


def compute_psi(batch, critic, args, device):
    """Psi of every step of the batch (--baseline, --norm-adv), and the lambda-return targets of the value net
    (None without one). A truncated episode did not end: V(final obs) bootstraps its tail; a terminated one has no
    value after its last step. Without a critic the reward-to-go simply stops at a time-limit cut, so states near
    the limit get a smaller Psi than the same states earlier (a bias the time-unaware policy cannot represent)."""
    if critic is not None:
        with torch.no_grad():
            values = critic(torch.as_tensor(batch.obs, device=device)).double().cpu().numpy()
            final_values = critic(torch.as_tensor(batch.final_obs, device=device)).double().cpu().numpy()
        next_values = np.append(values[1:], 0.0)
        next_values[batch.ends] = final_values * batch.truncated  # replaces V of the next episode's first obs
        psi = compute_gae(batch.rewards, values, next_values, batch.ends, args.gamma, args.gae_lambda)
        vf_targets = psi + values  # lambda-returns
    else:
        psi, vf_targets = reward_to_go(batch.rewards, batch.ends, args.gamma), None
        if args.baseline == "mean":
            psi = psi - psi.mean()
    if args.norm_adv and len(psi) > 1:
        # centring is itself a baseline, so --baseline none only gets the scale normalised
        psi = (psi if args.baseline == "none" else psi - psi.mean()) / (psi.std() + 1e-8)
    return psi, vf_targets


def policy_loss(log_prob, psi, entropy, ent_coef):
    """REINFORCE pseudo-loss: its gradient is -mean(grad log pi(a|s) * Psi), minus an entropy bonus."""
    return -(log_prob * psi).mean() - ent_coef * entropy.mean()


def value_loss(values, targets):
    return 0.5 * ((values - targets) ** 2).mean()


def evaluate(agent, env_id, episodes, seed, device):
    """Deterministic policy (mu, clipped into the bounds) on an env of its own; returns the list of episodic returns.
    Only the first reset is seeded: later episodes continue that env's own RNG."""
    env = gym.make(env_id)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed if ep == 0 else None)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                action = agent.act(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action.cpu().numpy())
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
    obs_space, act_space, _ = check_env(saved["env_id"])
    actor = Actor(obs_space.shape[0], act_space, saved["hidden_dim"], saved["state_dependent_std"]).to(device)
    actor.load_state_dict(ckpt["actor"])
    report_eval(evaluate(actor, saved["env_id"], args.eval_episodes, args.seed, device), None, 0)


def main(args):
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    if args.eval_checkpoint:
        return run_evaluation_only(args, device)
    validate(args)
    obs_space, act_space, bandit_tau = check_env(args.env_id)
    ckpt = load_resume(args) if args.resume else None
    run_name = ckpt["run_name"] if ckpt else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.threads or torch.get_num_threads())

    # SAME_STEP autoreset: when an env ends, its real last observation is in infos["final_obs"]
    vector_env = gym.vector.AsyncVectorEnv if args.async_envs else gym.vector.SyncVectorEnv
    envs = vector_env(
        [make_env(args.env_id, i, args.capture_video, run_name) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    obs_dim = obs_space.shape[0]
    actor = Actor(obs_dim, act_space, args.hidden_dim, args.state_dependent_std, args.log_std_init).to(device)
    parts = {"actor": actor, "actor_optimizer": torch.optim.Adam(actor.parameters(), lr=args.learning_rate)}
    critic = Critic(obs_dim, args.hidden_dim).to(device) if args.baseline == "value" else None
    if critic is not None:
        parts.update(critic=critic, critic_optimizer=torch.optim.Adam(critic.parameters(), lr=args.vf_learning_rate))
    actor_optimizer, critic_optimizer = parts["actor_optimizer"], parts.get("critic_optimizer")
    counters = {"global_step": 0, "update": 0, "wandb_id": None}
    obs, _ = envs.reset(seed=args.seed)
    envs.action_space.seed(args.seed)
    if ckpt:
        for k, part in parts.items():
            part.load_state_dict(ckpt[k])
        counters = ckpt["counters"]
        obs = restore_run(ckpt, envs, args.seed)
    wandb = init_wandb(args, run_name, counters["wandb_id"]) if args.track else None
    counters["wandb_id"] = wandb.run.id if wandb else None
    path = f"runs/{run_name}/{args.exp_name}.pt"

    def checkpoint():
        state = {k: v.state_dict() for k, v in parts.items()}
        # obs matters only before the first batch: every later batch starts with envs.reset()
        run = {"script": SCRIPT, "args": vars(args), "run_name": run_name, "counters": counters, "obs": obs}
        run.update(rng=rng_state(envs), envs=env_state(envs))
        save_checkpoint(path, {**run, **state})

    print_header(args.env_id, device, run_name, args.total_timesteps, batch=args.batch_size, lr=args.learning_rate,
                 baseline=args.baseline)  # fmt: skip
    start_step, start_time, stop = counters["global_step"], time.time(), StopSignal()
    progress = Progress(args.total_timesteps, start_step)
    try:
        # one iteration = one batch of whole episodes and one update; the stop check and checkpoints fall between
        while counters["global_step"] < args.total_timesteps and stop.signum is None:
            batch_start = counters["global_step"]
            if args.anneal_lr:
                frac = 1.0 - batch_start / args.total_timesteps
                for opt, lr in [(actor_optimizer, args.learning_rate), (critic_optimizer, args.vf_learning_rate)]:
                    if opt is not None:
                        opt.param_groups[0]["lr"] = frac * lr
            if counters["update"] > 0:
                # drop the episodes that idle envs were in. Unseeded: each env's own RNG continues, so with pickled
                # envs (classic control, the bandit) a resumed run is exact; MuJoCo / Box2D envs cannot be pickled
                # and restore_run re-seeds them with seed + global_step: reproducible, but not the same episodes.
                obs, _ = envs.reset()
            batch, global_step, finished = collect_batch(envs, actor, obs, args, device, progress, batch_start)
            counters["global_step"] = global_step
            update = counters["update"] = counters["update"] + 1
            if wandb:
                for step, ret, length in finished:
                    wandb.log({"charts/episodic_return": ret, "charts/episodic_length": length}, step=step)

            psi, vf_targets = compute_psi(batch, critic, args, device)
            obs_b = torch.as_tensor(batch.obs, device=device)
            dist = actor.dist(obs_b)
            log_prob = dist.log_prob(torch.as_tensor(batch.actions, device=device)).sum(-1)  # sum over action dims
            entropy = dist.entropy().sum(-1)
            psi_b = torch.as_tensor(psi, dtype=torch.float32, device=device)
            loss = policy_loss(log_prob, psi_b, entropy, args.ent_coef)
            actor_optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(actor.parameters(), args.max_grad_norm)
            actor_optimizer.step()
            metrics = {"losses/policy_loss": loss.item(), "losses/entropy": entropy.mean().item()}
            if critic is not None and args.vf_iters > 0:
                targets = torch.as_tensor(vf_targets, dtype=torch.float32, device=device)
                for _ in range(args.vf_iters):
                    v_loss = value_loss(critic(obs_b), targets)
                    critic_optimizer.zero_grad()
                    v_loss.backward()
                    nn.utils.clip_grad_norm_(critic.parameters(), args.max_grad_norm)
                    critic_optimizer.step()
                metrics["losses/value_loss"] = v_loss.item()
            check_finite(metrics, global_step)
            if wandb:
                sps = (global_step - start_step) / (time.time() - start_time)
                with torch.no_grad():
                    sigma = actor.dist(obs_b[:1]).stddev.mean().item()
                metrics.update(
                    {"charts/SPS": sps, "charts/sigma": sigma, "charts/batch_episodes": len(batch.truncated)}
                )
                wandb.log(metrics, step=global_step)
            if bandit_tau is not None:  # one state: mu and sigma are the whole policy
                with torch.no_grad():
                    mu, sigma = actor(torch.ones(1, 1, device=device))
                tqdm.write(f"bandit: update {update}, global_step={global_step}, mu={mu.item():.4f}, "
                           f"sigma={sigma.item():.4f}, tau={bandit_tau}")  # fmt: skip
            # a batch is many steps: save once at the first batch boundary past each multiple of --checkpoint-every
            if args.checkpoint_every and global_step // args.checkpoint_every > batch_start // args.checkpoint_every:
                checkpoint()
    except FloatingPointError as e:
        envs.close()
        finish_wandb(wandb, run_name, counters["global_step"], exit_code=1)
        raise SystemExit(
            f"{SCRIPT}: non-finite loss, stopping: {e}. Try a lower --learning-rate or --max-grad-norm."
        ) from None
    progress.close()
    stop.release()
    global_step = counters["global_step"]
    print(f"SPS={(global_step - start_step) / (time.time() - start_time):.1f} (updates: {counters['update']})")
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
        # the first reset of the evaluation env uses args.seed itself, as the training envs' first reset does
        report_eval(evaluate(actor, args.env_id, args.eval_episodes, args.seed, device), wandb, global_step)
    envs.close()
    finish_wandb(wandb, run_name, global_step)


if __name__ == "__main__":
    main(parse_args())
