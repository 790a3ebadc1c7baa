"""Runs the "Done when" measurements of a2c.py (issue 5), one training process at a time, OMP_NUM_THREADS=1.

    python benchmark/a2c_benchmark.py cartpole                 # seeds 1-5, defaults, 200k steps, threshold 475
    python benchmark/a2c_benchmark.py pendulum                 # InvertedPendulum-v5, seeds 1-3, 300k steps
    python benchmark/a2c_benchmark.py sps                      # 8 sync vs 8 async envs, CartPole-v1
    python benchmark/a2c_benchmark.py cartpole --name try -- --num-steps 8   # extra a2c.py flags after --

Raw output goes to benchmark/out/, the table to benchmark/results/a2c_<name>.md.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PENDULUM_FLAGS = ["--norm-obs", "--norm-reward", "--num-steps", "16"]
SUITES = {  # name: (env flags, seeds, threshold on the 10-episode moving average)
    "cartpole": (["--env-id", "CartPole-v1", "--total-timesteps", "200000"], [1, 2, 3, 4, 5], 475.0),
    "pendulum": (["--env-id", "InvertedPendulum-v5", "--total-timesteps", "300000", *PENDULUM_FLAGS], [1, 2, 3], 900.0),
}
EPISODE = re.compile(r"^global_step=(\d+), episodic_return=([-\d.e+]+)")
EVAL = re.compile(r"^eval/episodic_return=([-\d.e+naninf]+)")


def run(flags, tag):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    start = time.time()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "a2c.py"), "--no-cuda", *flags],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - start
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", f"a2c_{tag}.txt"), "w") as f:
        f.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"a2c.py {' '.join(flags)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout, wall


def parse(stdout, threshold, window=10):
    """(step at which the 10-episode moving average first reached threshold or None, final eval, best average)."""
    returns, reached, best = [], None, float("-inf")
    for line in stdout.splitlines():
        m = EPISODE.match(line)
        if m:
            returns.append(float(m.group(2)))
            if len(returns) >= window:
                avg = sum(returns[-window:]) / window
                best = max(best, avg)
                if reached is None and avg >= threshold:
                    reached = int(m.group(1))
    evals = [float(m.group(1)) for m in map(EVAL.match, stdout.splitlines()) if m]
    return reached, evals[-1], best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("suite", choices=[*SUITES, "sps"])
    p.add_argument("--seeds", type=int, nargs="*")
    p.add_argument("--name", help="results file name (default: the suite)")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # extra a2c.py flags, after --
    a = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    a.extra = extra
    name = a.name or a.suite
    lines = []
    if a.suite == "sps":
        lines += ["| vector env | num envs | steps | wall s | SPS (steps / wall s) | training-loop SPS |",
                  "|---|---|---|---|---|---|"]
        for mode in ("sync", "async"):
            flags = ["--total-timesteps", "100000", "--num-envs", "8", "--eval-episodes", "1", *a.extra]
            flags += ["--async-envs"] if mode == "async" else []
            stdout, wall = run(flags, f"{name}_{mode}")
            loop_sps = re.findall(r"\| SPS (\d+) \|", stdout)[-1]  # the script's own, last progress line
            lines.append(f"| {mode} | 8 | 100000 | {wall:.1f} | {100000 / wall:.0f} | {loop_sps} |")
            print(lines[-1], flush=True)
        cmd = f"python benchmark/a2c_benchmark.py sps {' '.join(a.extra)}".strip()
        lines.append("\nCartPole-v1, script defaults otherwise. Wall seconds include interpreter start-up, env creation"
                     " and the final evaluation; the training-loop SPS is the script's own (steps / seconds since the"
                     " loop began).")
    else:
        flags, seeds, threshold = SUITES[a.suite]
        flags = flags + a.extra
        seeds = a.seeds or seeds
        lines += [f"| seed | steps | final eval | step where 10-ep moving avg >= {threshold:g} | best moving avg | SPS |",
                  "|---|---|---|---|---|---|"]
        evals = []
        for seed in seeds:
            stdout, wall = run(flags + ["--seed", str(seed)], f"{name}_seed{seed}")
            reached, final, best = parse(stdout, threshold)
            steps = int(flags[flags.index("--total-timesteps") + 1])
            evals.append(final)
            lines.append(f"| {seed} | {steps} | {final:.2f} | {reached if reached is not None else 'not reached'} | "
                         f"{best:.1f} | {steps / wall:.0f} |")
            print(lines[-1], flush=True)
        lines.append(f"\nmedian final eval: {statistics.median(evals):.2f}")
        cmd = f"python benchmark/a2c_benchmark.py {a.suite}" + (f" --seeds {' '.join(map(str, seeds))}" if a.seeds else "")
        cmd += f" -- {' '.join(a.extra)}" if a.extra else ""
        lines.append(f"\na2c.py flags: `{' '.join(flags)} --seed S --no-cuda`")
    text = f"# a2c.py: {name}\n\n`{cmd}` (OMP_NUM_THREADS=1, one run at a time, CPU)\n\n" + "\n".join(lines) + "\n"
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"a2c_{name}.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
