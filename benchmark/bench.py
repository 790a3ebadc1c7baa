"""Run one script over several seeds and print a results table.

Each run is a subprocess, one at a time (never two trainings side by side: they would slow each other and the SPS
would mean nothing). Per seed it reports the final evaluation, the first global step at which the moving average
of the training episodic returns reached a threshold, and SPS (env steps / wall seconds of the whole run,
evaluation included). Raw logs go to benchmark/out/, the table to benchmark/results/<name>.md.

    python benchmark/bench.py --name sac_continuous_pendulum --script sac_continuous.py --seeds 1 2 3 \
        --window 5 --threshold -250 -- --env-id Pendulum-v1 --total-timesteps 15000 --learning-starts 1000
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EPISODE = re.compile(r"^global_step=(\d+), episodic_return=(-?[\d.e+-]+|nan)")
EVAL = re.compile(r"^eval/episodic_return=(-?[\d.e+-]+|nan)")


def parse(log):
    """(global steps, episodic returns, final eval) from a run's stdout."""
    steps, returns, final = [], [], None
    for line in log.splitlines():
        if m := EPISODE.match(line):
            steps.append(int(m.group(1)))
            returns.append(float(m.group(2)))
        elif m := EVAL.match(line):
            final = float(m.group(1))
    return steps, returns, final


def first_step_reaching(steps, returns, window, threshold):
    """First global step at which the mean of the last `window` episodic returns is >= threshold, else None."""
    for i in range(window - 1, len(returns)):
        if np.mean(returns[i - window + 1 : i + 1]) >= threshold:
            return steps[i]
    return None


def write_results(name, lines):
    """Print a results table and write it to benchmark/results/<name>.md."""
    table = "\n".join(lines)
    print(table)
    (ROOT / "benchmark" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmark" / "results" / f"{name}.md").write_text(table + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="results file name (benchmark/results/NAME.md)")
    parser.add_argument("--script", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--window", type=int, default=10, help="moving-average window, in episodes")
    parser.add_argument("--threshold", type=float, required=True, help="moving-average return to reach")
    parser.add_argument("--min-eval", type=float, default=None, help="final eval each seed should reach (reported)")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments after -- go to the script")
    opts = parser.parse_args()
    script_args = [a for a in opts.script_args if a != "--"]
    out_dir = ROOT / "benchmark" / "out" / opts.name
    out_dir.mkdir(parents=True, exist_ok=True)

    rows = []
    for seed in opts.seeds:
        cmd = [sys.executable, str(ROOT / opts.script), "--seed", str(seed), *script_args]
        start = time.time()
        proc = subprocess.run(cmd, cwd=out_dir, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "offline"})
        wall = time.time() - start
        (out_dir / f"seed{seed}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
        steps, returns, final = parse(proc.stdout)
        total = steps[-1] if steps else 0
        sps = re.findall(r"^SPS=([\d.]+)", proc.stdout, re.M)
        reached = first_step_reaching(steps, returns, opts.window, opts.threshold)
        load = os.getloadavg()[1]  # 5-minute load average: above ~1 means other work shared the 2 cores
        rows.append((seed, final, reached, float(sps[-1]) if sps else total / wall, wall, proc.returncode, load))
        print(f"seed {seed}: final eval {final}, reached {opts.threshold} at {reached}, wall {wall:.0f}s, exit {proc.returncode}", flush=True)

    command = " ".join(["python", opts.script, *script_args])
    lines = [
        f"# {opts.name}",
        "",
        f"Command (per seed, `--seed S` added): `{command}`  ",
        f"Measured {time.strftime('%Y-%m-%d')} on a shared 2-core CPU machine, one run at a time.  ",
        f"'reached' = first global step at which the {opts.window}-episode moving average of training returns was >= {opts.threshold}.",
        "",
        f"| seed | final eval (mean) | reached {opts.threshold} at step | SPS | wall s | exit | load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for seed, final, reached, sps, wall, rc, load in rows:
        lines.append(f"| {seed} | {final if final is not None else 'n/a'} | {reached if reached is not None else 'never'} | {sps:.1f} | {wall:.0f} | {rc} | {load:.1f} |")
    finals = [r[1] for r in rows if r[1] is not None]
    reached = [r[2] for r in rows if r[2] is not None]
    lines.append("")
    lines.append(f"median final eval: {np.median(finals):.2f}; " if finals else "median final eval: n/a; ")
    lines[-1] += f"median step reached: {np.median(reached) if len(reached) == len(rows) else 'not all seeds reached it'}"
    if opts.min_eval is not None:
        ok = sum(f is not None and f >= opts.min_eval for f in [r[1] for r in rows])
        lines.append(f"seeds with final eval >= {opts.min_eval}: {ok}/{len(rows)}")
    write_results(opts.name, lines)


if __name__ == "__main__":
    main()
