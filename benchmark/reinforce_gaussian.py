"""Done-when runs of reinforce_gaussian.py (issue 6), one training process at a time, OMP_NUM_THREADS=1.

  invpend:  InvertedPendulum-v5 with the defaults, seeds 1-3: step at which the 10-episode moving average of the
            training returns first reaches 1000 (must be within 200k env steps), and the final eval.
  pendulum: Pendulum-v1, --baseline value against --baseline none, seeds 1-3: final eval, median over seeds.

Run from the repository root:  python benchmark/reinforce_gaussian.py [--only invpend|pendulum] [--seeds 1 2 3]
Raw output goes to benchmark/out/, the table to benchmark/results/reinforce_gaussian.md (overwritten: the tables of
the experiments that ran).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PENDULUM_STEPS = 300_000
EXPERIMENTS = {
    "invpend": [("defaults", ["--env-id", "InvertedPendulum-v5"], 1000.0)],
    "pendulum": [
        ("--baseline value", ["--env-id", "Pendulum-v1", "--total-timesteps", str(PENDULUM_STEPS), "--baseline", "value"], None),
        ("--baseline none", ["--env-id", "Pendulum-v1", "--total-timesteps", str(PENDULUM_STEPS), "--baseline", "none"], None),
    ],
}


def run(args, seed, threshold, out_path):
    cmd = [sys.executable, "reinforce_gaussian.py", *args, "--seed", str(seed)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - start
    out_path.write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}; see {out_path}")
    window, hit, steps = deque(maxlen=10), None, 0
    for step, ret in re.findall(r"^global_step=(\d+), episodic_return=(\S+),", proc.stdout, re.M):
        window.append(float(ret))
        steps = int(step)
        if hit is None and threshold is not None and len(window) == 10 and sum(window) / 10 >= threshold:
            hit = steps
    final_eval = float(re.findall(r"^eval/episodic_return=(\S+)", proc.stdout, re.M)[-1])
    return {"seed": seed, "hit": hit, "ma10": sum(window) / len(window), "eval": final_eval, "steps": steps,
            "wall": wall, "sps": steps / wall, "cmd": "python " + " ".join(cmd[1:])}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=sorted(EXPERIMENTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    opts = parser.parse_args()
    (ROOT / "benchmark" / "out").mkdir(parents=True, exist_ok=True)
    lines = ["# reinforce_gaussian.py benchmark", "",
             f"OMP_NUM_THREADS=1, one run at a time, CPU (2 cores, shared with other jobs: SPS is a lower bound); "
             f"{time.strftime('%Y-%m-%d')}. SPS = env steps / wall seconds of the whole process (including "
             "start-up and final eval).", ""]
    for name in [opts.only] if opts.only else sorted(EXPERIMENTS):
        for label, args, threshold in EXPERIMENTS[name]:
            rows = [run(args, s, threshold, ROOT / "benchmark" / "out" / f"reinforce_{name}_{label.strip('-').replace(' ', '_')}_{s}.txt")
                    for s in opts.seeds]
            lines += [f"## {name}: {label}", "", f"`{rows[0]['cmd'].rsplit(' --seed', 1)[0]} --seed S`", "",
                      "| seed | step MA10 >= " + (f"{threshold:g}" if threshold else "-") +
                      " | final MA10 | final eval | env steps | wall s | SPS |", "|---|---|---|---|---|---|---|"]
            for r in rows:
                hit = "-" if threshold is None else (str(r["hit"]) if r["hit"] is not None else "not reached")
                lines.append(f"| {r['seed']} | {hit} | {r['ma10']:.1f} | {r['eval']:.2f} | {r['steps']} | "
                             f"{r['wall']:.0f} | {r['sps']:.0f} |")
            lines += ["", f"median final eval: {statistics.median(r['eval'] for r in rows):.2f}"]
            if threshold is not None:
                hits = [r["hit"] for r in rows]
                lines.append(f"seeds reaching {threshold:g}: {sum(h is not None for h in hits)}/{len(hits)}")
            lines.append("")
            print("\n".join(lines[-(len(rows) + 8):]), flush=True)
    (ROOT / "benchmark" / "results").mkdir(parents=True, exist_ok=True)
    suffix = f"_{opts.only}" if opts.only else ""
    (ROOT / "benchmark" / "results" / f"reinforce_gaussian{suffix}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
