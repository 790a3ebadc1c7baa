"""The Pendulum workflow of cql.py: SAC writes a replay dataset, CQL and plain offline SAC learn from it.

1. If the dataset is missing: `sac_continuous.py --env-id Pendulum-v1 --total-timesteps 15000 --learning-starts 1000
   --save-dataset pendulum/sac-replay-v0` (seed 1) writes it into MINARI_DATASETS_PATH.
2. For each seed: `cql.py --dataset-id pendulum/sac-replay-v0 --seed S` with its defaults, and the same with
   `--cql-alpha 0` (plain offline SAC). Runs go one at a time; extra arguments after `--` go to every cql.py run.
Raw logs go to benchmark/out/<name>/, the table to benchmark/results/<name>.md.

    MINARI_DATASETS_PATH=/work/minari_data python benchmark/cql_pendulum.py --seeds 1 2 3
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench import write_results  # benchmark/ is on sys.path when this file is run as a script

ROOT = Path(__file__).resolve().parents[1]
DATASET = "pendulum/sac-replay-v0"
SAC_CMD = ["sac_continuous.py", "--env-id", "Pendulum-v1", "--total-timesteps", "15000", "--learning-starts", "1000",
           "--save-dataset", DATASET]
VARIANTS = {"cql": [], "offline SAC (--cql-alpha 0)": ["--cql-alpha", "0"]}
PERIODIC = re.compile(r"^global_step=(\d+), eval_return=(-?[\d.]+|nan)", re.M)
FINAL = re.compile(r"^eval/episodic_return=(-?[\d.]+|nan)", re.M)


def run(cmd, log, env):
    """Run one script with its output streamed into `log` (readable while it runs); returns (exit code, output, wall s)."""
    start = time.time()
    with open(log, "w") as f:
        rc = subprocess.run([sys.executable, *cmd], cwd=log.parent, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    return rc, log.read_text(), time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="cql_pendulum", help="results file name (benchmark/results/NAME.md)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threshold", type=float, default=-250.0, help="final eval mean each seed should reach")
    parser.add_argument("cql_args", nargs=argparse.REMAINDER, help="arguments after -- go to every cql.py run")
    opts = parser.parse_args()
    cql_args = [a for a in opts.cql_args if a != "--"]
    out_dir = ROOT / "benchmark" / "out" / opts.name
    out_dir.mkdir(parents=True, exist_ok=True)
    minari_path = os.environ.get("MINARI_DATASETS_PATH", str(ROOT / "benchmark" / "out" / "minari"))
    env = {**os.environ, "MINARI_DATASETS_PATH": minari_path, "WANDB_MODE": "offline"}

    if not (Path(minari_path) / DATASET).exists():
        print(f"writing {DATASET} into {minari_path}: python {' '.join(SAC_CMD)}", flush=True)
        rc, _, wall = run([str(ROOT / SAC_CMD[0]), *SAC_CMD[1:]], out_dir / "sac_dataset.log", env)
        if rc != 0:
            raise SystemExit(f"sac_continuous.py failed (exit {rc}); see {out_dir / 'sac_dataset.log'}")
        print(f"dataset written in {wall:.0f}s", flush=True)

    rows = []
    for variant, variant_args in VARIANTS.items():
        for seed in opts.seeds:
            cmd = [str(ROOT / "cql.py"), "--dataset-id", DATASET, "--seed", str(seed), *variant_args, *cql_args]
            tag = "cql" if not variant_args else "alpha0"
            rc, output, wall = run(cmd, out_dir / f"{tag}_seed{seed}.log", env)
            periodic = [(int(s), float(r)) for s, r in PERIODIC.findall(output)]
            finals = [float(x) for x in FINAL.findall(output)]
            final = finals[-1] if finals else None
            reached = next((s for s, r in periodic if r >= opts.threshold), None)
            sps = re.findall(r"^SPS=([\d.]+)", output, re.M)
            rows.append((variant, seed, final, max((r for _, r in periodic), default=None), reached,
                         float(sps[-1]) if sps else float("nan"), wall, rc))
            print(f"{variant} seed {seed}: final eval {final}, exit {rc}, wall {wall:.0f}s", flush=True)

    extra = " ".join(cql_args)
    lines = [
        f"# {opts.name}", "",
        f"Dataset: `python {' '.join(SAC_CMD)}` (seed 1; MINARI_DATASETS_PATH set).  ",
        f"CQL: `python cql.py --dataset-id {DATASET} --seed S {extra}`; offline SAC: the same with `--cql-alpha 0`.  ",
        f"Measured {time.strftime('%Y-%m-%d')} on a shared 2-core CPU machine under varying load from other processes (OMP_NUM_THREADS=1), one run at a time; "
        f"SPS = gradient steps per second, evaluation excluded.  ",
        f"'first eval >= {opts.threshold}' = first gradient step whose periodic evaluation (10 episodes) reached it.", "",
        f"| variant | seed | final eval (mean of 10) | best periodic eval | first eval >= {opts.threshold} at step | SPS | wall s | exit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    fmt = lambda x: "n/a" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)  # noqa: E731
    for variant, seed, final, best, reached, sps, wall, rc in rows:
        lines.append(f"| {variant} | {seed} | {fmt(final)} | {fmt(best)} | {reached if reached is not None else 'never'} | {sps:.1f} | {wall:.0f} | {rc} |")
    lines.append("")
    for variant in VARIANTS:
        finals = [r[2] for r in rows if r[0] == variant and r[2] is not None]
        ok = sum(f >= opts.threshold for f in finals)
        lines.append(f"{variant}: median final eval {np.median(finals) if finals else float('nan'):.2f}; "
                     f"seeds with final eval >= {opts.threshold}: {ok}/{len(opts.seeds)}  ")
    write_results(opts.name, lines)


if __name__ == "__main__":
    main()
