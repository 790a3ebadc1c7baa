"""Random play's game score under the scripts' Atari preprocessing (sac_discrete.py's make_env: noop resets, frame
skip 4, FIRE after a reset; `--episodic-life` as the third argument 1/0), as quoted in atari.md:

    python benchmark/notes/atari_random_play.py BreakoutNoFrameskip-v4 200 1
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
import sac_discrete  # noqa: E402

env_id, games, episodic_life = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
sac_discrete.register_env_family(env_id)
env = sac_discrete.make_env(env_id, 0, False, "", episodic_life, clip_rewards=False)()
env.reset(seed=0)
env.action_space.seed(0)
scores, steps = [], 0
while len(scores) < games:
    _, _, terminated, truncated, info = env.step(env.action_space.sample())
    steps += 1
    scores += [float(info["episode"]["r"])] if "episode" in info else []  # the game is over (all lives)
    env.reset() if terminated or truncated else None
scores = np.array(scores)
print(
    f"{env_id}, episodic life {episodic_life}: {games} games, mean score {scores.mean():.2f} "
    f"(standard error {scores.std() / np.sqrt(games):.2f}), {steps / games:.0f} agent steps a game"
)
