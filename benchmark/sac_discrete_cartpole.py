"""Multi-seed benchmark of sac_discrete.py on CartPole-v1 (issue 3's "Done when").

Runs `python sac_discrete.py --env-id CartPole-v1 --seed S [extra flags]` for each seed, one process at a time
(--jobs N: N at once) with OMP_NUM_THREADS=1, keeps the raw output under benchmark/out/, and prints and writes a
markdown table (final greedy eval, the step at which the 10-episode training moving average first reached the
threshold, SPS) to benchmark/results/<name>.md.

    python benchmark/sac_discrete_cartpole.py                        # the default budget, seeds 1-5
    python benchmark/sac_discrete_cartpole.py --name sac_discrete_ent0.3 --seeds 1 2 3 -- --target-entropy-scale 0.3
"""

import argparse
import concurrent.futures
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPISODE = re.compile(r"^global_step=(\d+), episodic_return=([-\d.e+]+)")
EVAL = re.compile(r"^eval/episodic_return=([-\d.e+naif]+)")


def parse(stdout, threshold, window=10):
    """(final eval, first step at which the moving average of the last `window` returns reached threshold,
    moving average at the end of training)."""
    returns, reached, final = [], None, float("nan")
    for line in stdout.splitlines():
        if m := EPISODE.match(line):
            returns.append(float(m.group(2)))
            if reached is None and len(returns) >= window and sum(returns[-window:]) / window >= threshold:
                reached = int(m.group(1))
        elif m := EVAL.match(line):
            final = float(m.group(1))
    return final, reached, sum(returns[-window:]) / max(len(returns[-window:]), 1)


def row_from_log(seed, log, threshold, wall=None, rc=0):
    """One table row from a run's log. SPS = the run's total env steps / wall seconds (start-up and eval included);
    with no wall time (--from-logs) it falls back to the SPS the run printed itself (training loop only)."""
    stdout = log.read_text()
    final, reached, last_ma = parse(stdout, threshold)
    total = re.search(r"^progress: step \d+/(\d+)", stdout, re.M)  # the run's total env steps
    own_sps = re.search(r"^SPS=([\d.]+)", stdout, re.M)
    if wall is not None and total:
        sps = int(total.group(1)) / wall
    else:
        sps = float(own_sps.group(1)) if own_sps else float("nan")
    return seed, final, reached, last_ma, sps, wall, rc


def write_table(a, rows, res_dir):
    reached = [r[2] for r in rows]
    median_reach = statistics.median([r if r is not None else float("inf") for r in reached])
    lines = [f"# sac_discrete.py on {a.env_id}", "",
             f"Command: `{' '.join(['python sac_discrete.py --env-id', a.env_id, '--seed S', *a.extra])}`",
             f"(OMP_NUM_THREADS=1, {'the seeds one after another' if a.jobs == 1 else f'{a.jobs} seeds at a time'}, shared 2-core CPU; SPS = env steps / wall seconds incl. start-up "
             "and eval, or with --from-logs the training loop's own SPS line; \"MA10\" = moving average of the last 10 "
             "training episodes, stochastic policy)", *([a.note] if a.note else []), "",
             f"| seed | final greedy eval | step MA10 >= {a.threshold:g} | MA10 at the end | SPS | wall s |", "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {f:.1f} | {r if r is not None else 'never'} | {m:.1f} | {sps:.0f} | {'-' if w is None else f'{w:.0f}'} |"
              + ("" if rc == 0 else f" exit {rc}") for s, f, r, m, sps, w, rc in rows]
    finals = [r[1] for r in rows]
    lines += ["", f"seeds run: {len(rows)}; min final eval {min(finals):.1f}; median final eval {statistics.median(finals):.1f}; "
              f"median step to MA10 >= {a.threshold:g}: {median_reach}; seeds with final eval >= {a.threshold:g}: "
              f"{sum(f >= a.threshold for f in finals)}/{len(finals)}"]
    text = "\n".join(lines) + "\n"
    (res_dir / f"{a.name}.md").write_text(text)
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--env-id", default="CartPole-v1")
    p.add_argument("--threshold", type=float, default=475.0)
    p.add_argument("--name", default="sac_discrete_cartpole", help="results file: benchmark/results/<name>.md")
    p.add_argument("--from-logs", action="store_true", help="only rebuild the table from benchmark/out/<name>/seed*.log")
    p.add_argument("--jobs", type=int, default=1, help="seeds run at once (each SPS is then a lower bound)")
    p.add_argument("--note", default="", help="a line added under the table's caption (e.g. how the runs were made)")
    p.add_argument("extra", nargs="*", help="flags passed to sac_discrete.py (after --)")
    a = p.parse_args()
    out_dir, res_dir = ROOT / "benchmark" / "out" / a.name, ROOT / "benchmark" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    res_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if a.from_logs:
        rows = [row_from_log(seed, out_dir / f"seed{seed}.log", a.threshold) for seed in a.seeds
                if (out_dir / f"seed{seed}.log").exists()]
        print(write_table(a, rows, res_dir))
        return
    rows, lock = [], threading.Lock()

    def run_seed(seed):
        log = out_dir / f"seed{seed}.log"
        cmd = [sys.executable, str(ROOT / "sac_discrete.py"), "--env-id", a.env_id, "--seed", str(seed), *a.extra]
        print("$", " ".join(cmd[1:]), flush=True)
        t0 = time.time()
        with open(log, "w") as f:  # streamed, so a long run can be followed with tail -f
            rc = subprocess.run(cmd, cwd=out_dir, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
        row = row_from_log(seed, log, a.threshold, time.time() - t0, rc)
        with lock:
            rows.append(row)
            rows.sort()
            print("seed {}: final eval {:.1f}, step to threshold {}, last MA10 {:.1f}, SPS {:.0f}, wall {:.0f}s, rc {}".format(*row), flush=True)
            write_table(a, rows, res_dir)  # after every seed, so an interrupted benchmark keeps its table

    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        list(pool.map(run_seed, a.seeds))
    print(write_table(a, rows, res_dir))


if __name__ == "__main__":
    main()
