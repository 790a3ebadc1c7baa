"""The training curve of an rl-baselines3-zoo run from its SB3 monitor files (DLR-RM/rl-trained-agents), as read in
atari.md and a2c_box_noise.md: every env's episodes ordered by wall time, agent steps summed over the envs, and the
average of the last 100 episodes' returns at every `--every` steps.

    python benchmark/notes/zoo_monitor_curve.py DIR/a2c/PongNoFrameskip-v4_1 --frame-skip 4
    python benchmark/notes/zoo_monitor_curve.py DIR/a2c/LunarLanderContinuous-v2_1
"""

import argparse
import glob
import os

parser = argparse.ArgumentParser()
parser.add_argument("run_dir", help="a run folder holding N.monitor.csv files")
parser.add_argument("--frame-skip", type=int, default=1, help="frames per agent step (Atari monitors count frames)")
parser.add_argument("--every", type=int, default=500_000)
args = parser.parse_args()

episodes = []  # (wall time, length, return)
for path in glob.glob(os.path.join(args.run_dir, "*.monitor.csv")):
    for line in open(path).read().splitlines()[2:]:  # a JSON header, then "r,l,t"
        ret, length, wall = line.split(",")
        episodes.append((float(wall), int(length), float(ret)))
episodes.sort()
steps, cut, points = 0, args.every, []
for i, (_, length, _) in enumerate(episodes):
    steps += length / args.frame_skip
    while steps >= cut:
        last = [ret for _, _, ret in episodes[max(0, i - 99) : i + 1]]
        points.append(f"{cut / 1e6:g}M: {sum(last) / len(last):.1f}")
        cut += args.every
print(" / ".join(points))
print(f"{len(episodes)} episodes, {steps:.0f} agent steps")
