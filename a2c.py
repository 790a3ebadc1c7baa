# /// script
# requires-python = ">=3.10"
# dependencies = ["torch>=2.4,<2.14", "gymnasium[classic-control,box2d,mujoco]>=1.1,<2", "tyro>=0.8", "wandb>=0.17",
#   "numpy>=1.24", "tqdm>=4.60", "moviepy>=1.0"]
# ///
"""Synchronous Advantage Actor-Critic (A2C) for Discrete or Box actions: N envs step together for `num_steps` steps,
advantages come from GAE(lambda), and one gradient step on policy loss + vf_coef * value loss - ent_coef * entropy
follows each rollout. Papers: Mnih et al. 2016, arXiv 1602.01783 (A3C); Schulman et al. 2015, arXiv 1506.02438 (GAE).

    python a2c.py --env-id CartPole-v1

Deviations from the paper:
- synchronous workers (A2C) rather than asynchronous ones;
- GAE(0.95) by default rather than n-step returns (`--gae-lambda 1` gives those);
- a time-limit truncation bootstraps the value of the real final observation;
- separate actor and critic networks by default (`--shared-torso` for the paper's shared body);
- Adam with a linearly decayed learning rate by default (`--optimizer rmsprop` for the paper's optimiser).
Docs: docs/a2c.md
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
from torch.distributions import Categorical, Normal
from tqdm import tqdm

SCRIPT = "a2c.py"
OBS_EPS = 1e-8  # the epsilon of gym.wrappers.NormalizeObservation, so that evaluation normalises as training did
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

    env_id: str = "CartPole-v1"
    """the id of the environment (Discrete or Box actions)"""
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
    """Adam, or RMSprop (alpha 0.99, eps 1e-5, as in the A2C paper and SB3)"""
    rmsprop_alpha: float = 0.99
    """RMSprop smoothing constant (used with --optimizer rmsprop)"""
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
    hidden_dim: int = 64
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
    main_pid = os.getpid()

    def thunk():
        if os.getpid() != main_pid:  # an AsyncVectorEnv worker: Ctrl-C or a pre-emption signal sent to the whole
            for sig in (signal.SIGINT, signal.SIGTERM):  # process group is for the main process, which stops
                signal.signal(sig, signal.SIG_IGN)  # between rollouts, saves, then closes the envs
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"runs/{run_name}/videos")
        else:
            env = gym.make(env_id)
        # statistics first, so that they see the raw rewards, not the normalised ones
        env = gym.wrappers.RecordEpisodeStatistics(env)
        if norm_obs:
            env = gym.wrappers.NormalizeObservation(env)
        if norm_reward:
            env = gym.wrappers.NormalizeReward(env, gamma=gamma)
        return env

    return thunk


def check_env(env_id):
    """Fail with one clear sentence if this script cannot handle env_id; return the env's spaces."""
    if env_id not in gym.registry:
        raise SystemExit(f"{SCRIPT}: unknown env id {env_id!r}; pick a registered Gymnasium env, e.g. CartPole-v1")
    quiet_third_party(env_id)
    env = gym.make(env_id)
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"{SCRIPT} needs a flat Box observation space; {env_id} has {obs_space}: flatten it")
    flat_box = isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1
    if not (isinstance(act_space, gym.spaces.Discrete) or flat_box):
        raise SystemExit(f"{SCRIPT} needs a Discrete or flat Box action space; {env_id} has {act_space}")
    return obs_space, act_space


def validate(args):
    """Reject nonsensical hyperparameters before anything is written."""
    rollout, at_least_1 = args.num_envs * args.num_steps, ("total_timesteps", "num_envs", "num_steps", "hidden_dim")
    problems = [
        (args.threads < 0, f"--threads must be >= 0 (got {args.threads})"),
        *[(getattr(args, k) < 1, f"--{k.replace('_', '-')} must be >= 1 (got {getattr(args, k)})") for k in at_least_1],
        (args.total_timesteps < rollout, f"--total-timesteps {args.total_timesteps} < one rollout of {rollout} steps"),
        (not args.learning_rate > 0, f"--learning-rate must be > 0 (got {args.learning_rate})"),
        (not 0.0 <= args.gamma <= 1.0, f"--gamma must be in [0, 1] (got {args.gamma})"),
        (not 0.0 <= args.gae_lambda <= 1.0, f"--gae-lambda must be in [0, 1] (got {args.gae_lambda})"),
        (not args.max_grad_norm > 0, f"--max-grad-norm must be > 0 (got {args.max_grad_norm})"),
        (min(args.eval_episodes, args.checkpoint_every) < 0, "--eval-episodes and --checkpoint-every must be >= 0"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"{SCRIPT}: {message}")


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


def mlp(in_dim, hidden_dim, out_dim=None, out_std=1.0):
    layers = [
        layer_init(nn.Linear(in_dim, hidden_dim)),
        nn.Tanh(),
        layer_init(nn.Linear(hidden_dim, hidden_dim)),
        nn.Tanh(),
    ]
    if out_dim is not None:
        layers.append(layer_init(nn.Linear(hidden_dim, out_dim), std=out_std))
    return nn.Sequential(*layers)


class Agent(nn.Module):
    """Categorical or diagonal-Gaussian policy and a state-value critic, on observations the training envs already
    normalised; `act` takes raw observations and normalises them with the statistics held in obs_mean / obs_var."""

    def __init__(self, obs_space, action_space, hidden_dim=64, shared_torso=False, log_std_init=0.0):
        super().__init__()
        obs_dim = int(np.prod(obs_space.shape))
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        act_dim = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        if shared_torso:
            self.torso = mlp(obs_dim, hidden_dim)
            self.actor = layer_init(nn.Linear(hidden_dim, act_dim), std=0.01)
            self.critic = layer_init(nn.Linear(hidden_dim, 1), std=1.0)
        else:
            self.torso = nn.Identity()
            self.actor = mlp(obs_dim, hidden_dim, act_dim, out_std=0.01)
            self.critic = mlp(obs_dim, hidden_dim, 1, out_std=1.0)
        if not self.discrete:
            # state-independent log-std, as in the A3C paper's continuous experiments and SB3
            self.actor_logstd = nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        # the merged running statistics of the training envs (set by set_obs_stats); with these defaults the
        # normalisation in `act` is exactly the identity in float32, so --no-norm-obs needs no special case
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_var", torch.ones(obs_dim))

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

    def act(self, raw_obs):
        """The deterministic action (argmax / Gaussian mean) for a raw observation; it draws no random numbers."""
        out = self.actor(self.torso((raw_obs - self.obs_mean) / torch.sqrt(self.obs_var + OBS_EPS)))
        return out.argmax(-1) if self.discrete else out

    def set_obs_stats(self, stats):
        with torch.no_grad():
            self.obs_mean.copy_(torch.as_tensor(stats["mean"]))
            self.obs_var.copy_(torch.as_tensor(stats["var"]))


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
                 terminated=terminated, dones=dones)  # fmt: skip
    return batch, next_obs, episodes


def evaluate(agent, env_id, episodes, seed, device):
    """Deterministic policy (argmax / Gaussian mean) on an env of its own, observations normalised with the agent's
    frozen statistics; returns the list of episodic returns."""
    env = gym.make(env_id)
    box = isinstance(env.action_space, gym.spaces.Box)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                action = agent.act(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0].cpu().numpy()
            action = np.clip(action, env.action_space.low, env.action_space.high) if box else int(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def merge_rms(stats):
    """Merge per-env running statistics [(mean, var, count)] into one (parallel-variance formula)."""
    mean, var, count = stats[0]
    for m, v, c in stats[1:]:
        delta, total = m - mean, count + c
        var = (var * count + v * c + delta**2 * count * c / total) / total
        mean, count = mean + delta * c / total, total
    return {"mean": np.asarray(mean), "var": np.asarray(var), "count": float(count)}


def wrapper_stats(envs, args):
    """The per-env state of the NormalizeObservation / NormalizeReward wrappers: {attribute: [value of each env]}.
    discounted_reward is NormalizeReward's running discounted return, which feeds return_rms across episodes."""
    names = ["obs_rms"] * args.norm_obs + ["return_rms", "discounted_reward"] * args.norm_reward
    return {name: list(envs.get_attr(name)) for name in names}


def sync_obs_stats(agent, envs, args):
    """Give the agent the merged observation statistics of the training envs, for evaluation and checkpoints."""
    if args.norm_obs:
        agent.set_obs_stats(merge_rms([(r.mean, r.var, r.count) for r in envs.get_attr("obs_rms")]))


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
    agent = Agent(obs_space, act_space, saved["hidden_dim"], saved["shared_torso"], saved["log_std_init"]).to(device)
    agent.load_state_dict(ckpt["agent"])  # with the observation statistics of training
    report_eval(evaluate(agent, saved["env_id"], args.eval_episodes, args.seed, device), None, 0)


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

    # SAME_STEP autoreset (see collect_rollout): the rollout holds only real transitions.
    vector_env = gym.vector.AsyncVectorEnv if args.async_envs else gym.vector.SyncVectorEnv
    envs = vector_env(
        [make_env(args.env_id, i, args.capture_video, run_name, args.gamma, args.norm_obs, args.norm_reward)
         for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )  # fmt: skip
    box = isinstance(act_space, gym.spaces.Box)
    low, high = (act_space.low, act_space.high) if box else (None, None)
    agent = Agent(obs_space, act_space, args.hidden_dim, args.shared_torso, args.log_std_init).to(device)
    if args.optimizer == "rmsprop":
        optimizer = torch.optim.RMSprop(
            agent.parameters(), lr=args.learning_rate, alpha=args.rmsprop_alpha, eps=args.optim_eps
        )
    else:
        optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=args.optim_eps)
    parts = {"agent": agent, "optimizer": optimizer}  # everything with a state_dict that a checkpoint keeps
    batch_size = args.num_envs * args.num_steps
    num_updates = args.total_timesteps // batch_size
    counters = {"global_step": 0, "updates": 0, "wandb_id": None}  # updates: the position in the lr schedule
    next_obs = torch.as_tensor(envs.reset(seed=args.seed)[0], dtype=torch.float32, device=device)
    envs.action_space.seed(args.seed)
    if ckpt:
        for k, part in parts.items():
            part.load_state_dict(ckpt[k])
        counters = ckpt["counters"]
        for name, values in ckpt["wrapper_stats"].items():  # envs that restart their episodes keep the statistics
            envs.set_attr(name, values)
        next_obs = torch.as_tensor(restore_run(ckpt, envs, args.seed), dtype=torch.float32, device=device)
    wandb = init_wandb(args, run_name, counters["wandb_id"]) if args.track else None
    counters["wandb_id"] = wandb.run.id if wandb else None
    path = f"runs/{run_name}/{args.exp_name}.pt"

    def checkpoint():
        sync_obs_stats(agent, envs, args)
        state = {k: v.state_dict() for k, v in parts.items()}
        run = {"script": SCRIPT, "args": vars(args), "run_name": run_name, "counters": counters}
        run.update(obs=next_obs.cpu().numpy(), rng=rng_state(envs), envs=env_state(envs))
        save_checkpoint(path, {**run, **state, "wrapper_stats": wrapper_stats(envs, args)})

    more = {"optimizer": args.optimizer, "lr": args.learning_rate}
    print_header(args.env_id, device, run_name, args.total_timesteps, envs=args.num_envs, steps=args.num_steps, **more)
    start_step, start_time, stop = counters["global_step"], time.time(), StopSignal()
    progress = Progress(num_updates * batch_size, start_step)
    try:
        while counters["updates"] < num_updates and stop.signum is None:
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = (1.0 - counters["updates"] / num_updates) * args.learning_rate
            b, next_obs, episodes = collect_rollout(envs, agent, next_obs, args.num_steps, device, low, high)
            for t, _, ret, length in episodes:
                step = counters["global_step"] + (t + 1) * args.num_envs
                progress.episode(step, ret, length)
                if wandb:
                    wandb.log({"charts/episodic_return": ret, "charts/episodic_length": length}, step=step)
            global_step = counters["global_step"] = counters["global_step"] + batch_size
            counters["updates"] += 1

            advantages, returns = compute_gae(
                b["rewards"], b["values"], b["next_values"], b["terminated"], b["dones"], args.gamma, args.gae_lambda
            )
            # one batched forward pass over the whole rollout, with gradients
            actions = b["actions"].reshape((batch_size,) + act_space.shape)
            _, logprob, entropy, value = agent.get_action_and_value(
                b["obs"].reshape((batch_size,) + obs_space.shape), actions if box else actions.long()
            )
            losses = a2c_loss(
                logprob, entropy, value, advantages.reshape(-1), returns.reshape(-1), args.vf_coef, args.ent_coef,
                args.norm_adv,
            )  # fmt: skip
            optimizer.zero_grad()
            losses[0].backward()
            nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            optimizer.step()

            # read every update: the rollout syncs with the device at each env step anyway, so this costs nothing
            names = ("losses/loss", "losses/policy_loss", "losses/value_loss", "losses/entropy")
            metrics = dict(zip(names, torch.stack(losses).tolist()))
            check_finite(metrics, global_step)
            if wandb:
                sps = (global_step - start_step) / (time.time() - start_time)
                metrics.update({"charts/SPS": sps, "charts/learning_rate": optimizer.param_groups[0]["lr"]})
                wandb.log(metrics, step=global_step)
            if args.checkpoint_every and global_step % args.checkpoint_every < batch_size:
                checkpoint()
            progress.update(global_step)
    except FloatingPointError as e:
        envs.close()
        finish_wandb(wandb, run_name, counters["global_step"], exit_code=1)
        raise SystemExit(
            f"{SCRIPT}: non-finite loss, stopping: {e}. Try a lower --learning-rate or --max-grad-norm, "
            "or --norm-obs / --norm-reward."
        ) from None
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
        sync_obs_stats(agent, envs, args)  # evaluation normalises raw observations with the training statistics
        report_eval(evaluate(agent, args.env_id, args.eval_episodes, args.seed + 10_000, device), wandb, global_step)
    envs.close()
    finish_wandb(wandb, run_name, global_step)


if __name__ == "__main__":
    main(parse_args())
