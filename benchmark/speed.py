"""Speed of the SAC family on this machine: gradient updates per second, SPS, FLOPs and the GEMM-bound ceiling.

For each of sac_continuous, sac_discrete and cql it times whole processes, pinned to one core with one torch thread
(`taskset -c CORE`, OMP_NUM_THREADS=1), one at a time, median of --repeats:
- a run of N env steps whose last K steps each make one gradient step, and the same run with no gradient step;
  updates/s = K / (difference of the two wall times), so start-up, env stepping and evaluation cancel out
  (cql is offline: K gradient steps against 1);
- the SPS the run prints itself.
It counts the FLOPs of one update with torch's FlopCounterMode (matmuls, forward and backward, from the layer shapes
actually run), measures the GEMM throughput of this core on the same shapes, and reports the fraction of the
GEMM-bound ceiling (FLOPs/update x updates/s / GEMM FLOP/s). With --baseline REV the scripts of that git revision are
timed in the same run, so the before/after ratio compares like with like.

    python benchmark/speed.py                          # writes benchmark/speed.md
    python benchmark/speed.py --baseline aab68b8 --repeats 5
"""

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SAC = ["--env-id", "Pendulum-v1", "--hidden-dim", "256", "--batch-size", "256", "--eval-episodes", "0"]
DISCRETE = ["--env-id", "CartPole-v1", "--hidden-dim", "256", "--batch-size", "256", "--eval-episodes", "0"]
CQL = ["--dataset-id", "speed/pendulum-v0", "--hidden-dim", "256", "--batch-size", "256", "--eval-freq", "0"]
CQL += ["--eval-episodes", "1", "--cql-n-actions", "10"]


def timed(cmd, cwd, env, core):
    """Wall seconds of one process pinned to `core`, and its output."""
    start = time.perf_counter()
    proc = subprocess.run(["taskset", "-c", str(core), *cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.stdout


def updates_per_second(script, flags, steps, updates, opts, env, cwd):
    """(updates/s, the run's own SPS): median over repeats of K / (T(K updates) - T(no update))."""
    offline = "cql" in script.name
    with_updates = ["--total-timesteps", str(updates if offline else steps)]
    without = ["--total-timesteps", "1"] if offline else ["--total-timesteps", str(steps)]
    if not offline:
        with_updates += ["--learning-starts", str(steps - updates)]
        without += ["--learning-starts", str(steps)]
    rates, sps = [], []
    for _ in range(opts.repeats):  # alternate the two runs, so slow phases of the machine hit both alike
        t1, out = timed([sys.executable, str(script), *flags, *with_updates], cwd, env, opts.core)
        t0, _ = timed([sys.executable, str(script), *flags, *without], cwd, env, opts.core)
        rates.append(updates / (t1 - t0))
        sps += [float(m) for m in re.findall(r"^SPS=([\d.]+)", out, re.M)]
    return statistics.median(rates), statistics.median(sps) if sps else float("nan")


def flops_per_update(name, flags):
    """FLOPs of one update, counted by torch while the current script makes 20 updates (minus the same without)."""
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, str(ROOT))
    module = __import__(name)
    counts = []
    for updates in (20, 0):
        steps = ["--total-timesteps", str(updates or 1)] if name == "cql" else ["--total-timesteps", "300"]
        if name != "cql":
            steps += ["--learning-starts", str(300 - updates)]
        args = module.parse_args([*flags, *steps, "--eval-episodes", "1" if name == "cql" else "0"])
        with FlopCounterMode(display=False) as counter:
            module.main(args)
        counts.append(counter.get_total_flops())
    return (counts[0] - counts[1]) / 20


def gemm_flops_per_second(hidden=256, batch=256, repeats=200):
    """FLOP/s of this core on the critics' main product: a batched [2, B, H] x [2, H, H] matmul (forward shape)."""
    a, b = torch.randn(2, batch, hidden), torch.randn(2, hidden, hidden)
    for _ in range(20):
        torch.bmm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.bmm(a, b)
    return 2 * 2 * batch * hidden * hidden * repeats / (time.perf_counter() - start)


def make_dataset(env, cwd):
    cmd = [sys.executable, str(ROOT / "sac_continuous.py"), "--env-id", "Pendulum-v1", "--total-timesteps", "2000"]
    cmd += ["--learning-starts", "2000", "--save-dataset", "speed/pendulum-v0", "--eval-episodes", "0"]
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--core", type=int, default=1, help="the CPU core every timed process is pinned to")
    p.add_argument("--steps", type=int, default=2000, help="env steps of a timed run")
    p.add_argument("--updates", type=int, default=1000, help="gradient steps of a timed run")
    p.add_argument("--baseline", default=None, help="a git revision whose scripts are timed too, for the ratio")
    p.add_argument("--out", default=str(ROOT / "benchmark" / "speed.md"))
    opts = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="speed-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "MINARI_DATASETS_PATH": str(tmp / "minari")}
    os.environ.update(MINARI_DATASETS_PATH=env["MINARI_DATASETS_PATH"], OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    os.sched_setaffinity(0, {opts.core})
    make_dataset(env, tmp)
    versions = {"now": ROOT}
    if opts.baseline:
        versions[opts.baseline] = tmp / "baseline"
        versions[opts.baseline].mkdir()
        for name in ("sac_continuous", "sac_discrete", "cql"):
            text = subprocess.run(
                ["git", "show", f"{opts.baseline}:{name}.py"], cwd=ROOT, capture_output=True, text=True
            )
            (versions[opts.baseline] / f"{name}.py").write_text(text.stdout)
    gemm = gemm_flops_per_second()
    rows = []
    for name, flags in (("sac_continuous", SAC), ("sac_discrete", DISCRETE), ("cql", CQL)):
        flops = flops_per_update(name, flags)
        for label, folder in versions.items():
            rate, sps = updates_per_second(folder / f"{name}.py", flags, opts.steps, opts.updates, opts, env, tmp)
            rows.append((name, label, rate, sps, flops, flops * rate / gemm))
            print(f"{name} ({label}): {rate:.1f} updates/s, SPS {sps:.1f}, {flops / 1e6:.0f} MFLOP/update", flush=True)
    lines = [
        "# Speed of the SAC family (one core, one thread)",
        "",
        f"Generated by `python benchmark/speed.py {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}; every process pinned to core "
        f"{opts.core} with one thread, one at a time, median of {opts.repeats} repeats. Batch 256, 256-256 networks. "
        f"Updates/s from the wall-time difference of a run with {opts.updates} gradient steps and one without; SPS is "
        f"the run's own figure ({opts.steps} env steps, the last {opts.updates} with an update; cql: gradient steps). "
        f"GEMM throughput measured in this run: {gemm / 1e9:.1f} GFLOP/s ([2, 256, 256] x [2, 256, 256] bmm). "
        "Ceiling fraction = FLOPs/update x updates/s / GEMM FLOP/s (FLOPs counted by torch's FlopCounterMode, forward "
        "and backward matmuls, the current code; the baseline runs the same networks).",
        "",
        "| script | code | updates/s | SPS | MFLOP/update | fraction of GEMM-bound ceiling |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {n} | {v} | {r:.1f} | {s:.1f} | {f / 1e6:.0f} | {c:.2f} |" for n, v, r, s, f, c in rows]
    Path(opts.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
