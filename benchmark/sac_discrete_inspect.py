"""Look inside a sac_discrete.py LunarLander-v3 checkpoint: how its greedy and sampled episodes end, which actions it
takes in the air and on the ground (both legs down), and, at a few ground states, pi(.|s) next to min_k Q_k(s, .).

    python benchmark/sac_discrete_inspect.py runs/<run>/sac_discrete.pt --episodes 3

Used for the diagnosis in sac_discrete.py's docstring (failed runs: an actor locked onto one action that its critic
ranks far below another; a main engine fired forever on the ground). Actions: 0 no-op, 1 left, 2 main, 3 right.
"""

import argparse
import collections
import importlib.util
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=10_001, help="first episode's reset seed")
    a = p.parse_args()
    spec = importlib.util.spec_from_file_location("sac_discrete", ROOT / "sac_discrete.py")
    sd = importlib.util.module_from_spec(spec)
    sys.modules["sac_discrete"] = sd
    spec.loader.exec_module(sd)
    ckpt = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    env = gym.make(ckpt["args"]["env_id"])
    obs_dim, n_actions, hidden = env.observation_space.shape[0], int(env.action_space.n), ckpt["args"]["hidden_dim"]
    actor, qf = sd.Actor(obs_dim, n_actions, hidden), sd.TwinQ(obs_dim, n_actions, hidden)
    actor.load_state_dict(ckpt["actor"])
    qf.load_state_dict(ckpt["qf"])
    for mode in ("greedy", "sampled"):
        rng = torch.Generator().manual_seed(0)
        for ep in range(a.episodes):
            obs, _ = env.reset(seed=a.seed + ep)
            done, total, steps, probes = False, 0.0, 0, []
            counts = {"air": collections.Counter(), "ground": collections.Counter()}
            while not done:
                x = torch.as_tensor(obs, dtype=torch.float32)[None]
                with torch.no_grad():
                    probs, _ = actor(x)
                    action = int(probs.argmax()) if mode == "greedy" else int(torch.multinomial(probs, 1, generator=rng))
                    on_ground = bool(obs[6] and obs[7])
                    if on_ground and len(probes) < 2 and steps % 50 == 0:
                        probes.append(f"pi {np.round(probs[0].double().numpy(), 2).tolist()} Q {np.round(qf(x).min(0).values[0].double().numpy(), 1).tolist()}")
                counts["ground" if on_ground else "air"][action] += 1
                obs, reward, terminated, truncated, _ = env.step(action)
                total, steps, done = total + float(reward), steps + 1, terminated or truncated
            print(f"{mode} episode {ep}: return {total:.1f}, {steps} steps, {'terminated' if terminated else 'truncated'}, "
                  f"final y {obs[1]:.2f}, actions in the air {dict(counts['air'])}, on the ground {dict(counts['ground'])}")
            for line in probes:
                print("   on the ground:", line)


if __name__ == "__main__":
    main()
