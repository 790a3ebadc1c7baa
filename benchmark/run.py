"""The project's one benchmark runner: each script on its reference cases, over seeds, as tables and learning curves.

Runs every (case, seed) as a subprocess (`OMP_NUM_THREADS=1`, `--jobs` at a time, default: one per core), keeps the
raw logs under benchmark/out/<case>/, and from the printed lines (`global_step=..., episodic_return=...`, the final
`eval/episodic_return=...`, `SPS=...`) writes benchmark/results.md (median and interquartile range of the final
evaluation over seeds, the step at which the 10-episode training average first reached the case's threshold, SPS,
wall time, the exact command) and one learning-curve PNG per case under benchmark/plots/.

    python benchmark/run.py                        # every case, each on its own seeds (3, or 5 where shown)
    python benchmark/run.py --quick                # short budgets: a check in minutes (writes benchmark/out/quick/)
    python benchmark/run.py --only sac_discrete --seeds 1 2 3 4 5
    python benchmark/run.py --from-logs            # rebuild results.md and the plots from benchmark/out/
"""

import argparse
import concurrent.futures
import gzip
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "benchmark" / "logs"  # the logs of finished runs, gzipped: results.md can be rebuilt on any clone
EPISODE = re.compile(r"^global_step=(\d+), (?:episodic_return|eval_return)=([-\d.e+naif]+)")  # cql: periodic evals
EVAL = re.compile(r"^eval/episodic_return=([-\d.e+naif]+)")
SCORE = re.compile(r"normalized_score=([-\d.e+naif]+)")
SPS = re.compile(r"^SPS=([\d.]+)")
RESUMED = re.compile(r"^resumed run \S+ at global_step=(\d+)")
PENDULUM_DATA = ["--env-id", "Pendulum-v1", "--total-timesteps", "15000", "--learning-starts", "1000"]
HOPPER_DATA = ["--env-id", "Hopper-v5", "--total-timesteps", "30000", "--learning-starts", "5000"]
CHEETAH_DATA = ["--env-id", "HalfCheetah-v5", "--total-timesteps", "30000", "--learning-starts", "5000", "--seed", "7"]
# cql at budgets of thousands of steps: the temperature learns at the actor's rate, as in CORL (at 3e-5 it stays near
# 1 for ~14k steps and holds the policy near uniform: benchmark/notes/cql_temperature.md)
CQL_SMALL = ["--hidden-dim", "64", "--policy-lr", "3e-4", "--alpha-lr", "3e-4", "--q-lr", "1e-3", "--cql-alpha", "5"]


@dataclass
class Case:
    """One script on one task: its flags, the training average that counts as solved, and its budgets."""

    name: str
    script: str
    args: list
    threshold: float
    steps: int
    quick_steps: int
    setup: list = field(default_factory=list)  # a command that writes what the case reads (a Minari dataset)
    window: int = 10
    checkpoint_every: int = 0  # long cases: periodic checkpoints, and a killed run continues where it was
    seeds: tuple = (1, 2, 3)
    headline: str = ""  # the README's headline cell for this script comes from this case: "eval" or "normalized"


PENDULUM_SET = ["sac_continuous", *PENDULUM_DATA, "--save-dataset", "bench/pendulum-sac-replay-v0"]
HOPPER_SET = ["sac_continuous", *HOPPER_DATA, "--save-dataset", "bench/hopper-sac-replay-v0"]
CHEETAH_SET = ["sac_continuous", *CHEETAH_DATA, "--save-dataset", "bench/halfcheetah-sac-replay-v0"]
EVAL_1K = ["--eval-freq", "1000"]  # cql-HalfCheetah: 1060: normalized 50 on its data (refs -275.5, 2393.6)
INVPEND, PENDULUM = ["--env-id", "InvertedPendulum-v5"], ["--env-id", "Pendulum-v1"]
LANDER_BOX = ["--env-id", "LunarLanderContinuous-v3"]
BANDIT = ["--env-id", "GaussianBandit-v0", "--batch-size", "64", "--num-envs", "16", "--baseline", "mean"]
# MinAtar (Young & Tian 2019): each game with its anchors read from the MinAtar repository's curves at 5M steps, the
# training return averaged over the last 100 episodes: (game, DQN, AC(lambda))
MINATAR = [("Breakout", 10, 17.5), ("SpaceInvaders", 43, 185), ("Freeway", 50, 47.5)]
SAC_MINATAR = [
    "--update-frequency",
    "4",
    "--batch-size",
    "64",
    "--buffer-size",
    "100000",
    "--learning-starts",
    "5000",
    "--policy-lr",
    "3e-4",
    "--q-lr",
    "3e-4",
    "--tau",
    "0.005",
]
A2C_MINATAR = "--num-envs 16 --num-steps 5 --ent-coef 0.01 --optimizer rmsprop --learning-rate 1.4e-3".split()

# Atari: SAC-Discrete's Atari-100k settings as CleanRL's sac_atari.py runs them (an update every 4 steps, 20k random
# steps first) but the script's Polyak target (tau 0.02 every update) instead of a hard copy every 8000 steps (ten
# copies in 100k steps back up rewards ten steps: Breakout stayed at random play's level) and alpha from 0.1 (CleanRL's
# 1 kept Breakout's policy uniform to ~80k steps, 0.01 made it deterministic in 1k updates): notes/atari.md;
# A2C's as rl-baselines3-zoo's (16 envs, 5 steps)
SAC_ATARI = ("--learning-starts 20000 --update-frequency 4 --batch-size 64 --buffer-size 100000 --policy-lr 3e-4 "
             "--q-lr 3e-4 --alpha-init 0.1 --target-entropy-scale 0.89 --eval-episodes 3 "
             "--episodic-life").split()  # fmt: skip
# one flag set for a2c's Box-action cases: rl-baselines3-zoo's A2C for LunarLanderContinuous (4 envs x 8 steps, GAE
# 0.9, RMSprop 7e-4, gSDE, normalisation); --vf-coef 0.8 is its 0.4: SB3's value loss is the MSE, a2c.py's half of it;
# gamma 0.999 instead of its 0.99: half the LunarLanderContinuous seeds never landed with 0.99 (notes/a2c_box_noise.md)
A2C_BOX = ("--num-envs 4 --num-steps 8 --gae-lambda 0.9 --vf-coef 0.8 --optimizer rmsprop --learning-rate 7e-4 "
           "--norm-obs --norm-reward --gsde --log-std-init -2 --gamma 0.999").split()  # fmt: skip
# TensorFlow's RMSprop for Atari: PyTorch's left the encoder dead on Pong (notes/atari.md)
A2C_ATARI = ("--num-envs 16 --num-steps 5 --ent-coef 0.01 --optimizer rmsprop-tf --learning-rate 7e-4 "
             "--eval-episodes 3").split()  # fmt: skip


def minatar(game):
    return ["--env-id", f"MinAtar/{game}-v1"]


FIVE = (1, 2, 3, 4, 5)
CASES = [
    Case("sac_continuous-Pendulum", "sac_continuous", [*PENDULUM, "--learning-starts", "1000"], -250, 15000, 3000),
    Case("sac_continuous-LunarLanderContinuous", "sac_continuous", LANDER_BOX, 200, 50000, 6000, seeds=FIVE),
    Case("sac_continuous-HalfCheetah", "sac_continuous", ["--env-id", "HalfCheetah-v5"], 1500, 50000, 6000,
         seeds=FIVE, headline="eval"),
    Case("sac_discrete-CartPole", "sac_discrete", ["--env-id", "CartPole-v1"], 475, 50000, 10000, seeds=FIVE),
    Case("sac_discrete-Acrobot", "sac_discrete", ["--env-id", "Acrobot-v1"], -100, 100000, 10000, seeds=FIVE),
    Case("sac_discrete-LunarLander", "sac_discrete", ["--env-id", "LunarLander-v3"], 200, 300000, 10000, seeds=FIVE,
         headline="eval"),
    *[Case(f"sac_discrete-MinAtar{game}", "sac_discrete", [*minatar(game), *SAC_MINATAR], dqn, 1_000_000, 20000,
           window=100, checkpoint_every=100_000, seeds=(1, 2)) for game, dqn, _ in MINATAR],
    *[Case(f"sac_discrete-Atari{game}", "sac_discrete", ["--env-id", f"{game}NoFrameskip-v4", *SAC_ATARI], paper,
           100_000, 21000, checkpoint_every=25_000, seeds=(1, 2)) for game, paper in [("Breakout", 0.7),
                                                                                       ("BeamRider", 432.1)]],
    Case("cql-Pendulum", "cql", ["--dataset-id", "bench/pendulum-sac-replay-v0", *CQL_SMALL, "--eval-freq", "500"],
         -250, 5000, 500, window=1, setup=PENDULUM_SET),
    Case("cql-Hopper", "cql", ["--dataset-id", "bench/hopper-sac-replay-v0", *CQL_SMALL, "--eval-freq", "1000"],
         1000, 5000, 500, window=1, setup=HOPPER_SET),
    Case("cql-HalfCheetah", "cql", ["--dataset-id", "bench/halfcheetah-sac-replay-v0", *CQL_SMALL, *EVAL_1K], 1060,
         15000, 500, window=1, setup=CHEETAH_SET, headline="normalized"),
    Case("a2c-CartPole", "a2c", ["--env-id", "CartPole-v1"], 475, 200000, 20000, headline="eval"),
    Case("a2c-InvertedPendulum", "a2c", [*INVPEND, *A2C_BOX], 950, 300000, 20000),
    Case("a2c-LunarLanderContinuous", "a2c", [*LANDER_BOX, *A2C_BOX], 200, 5_000_000, 50000, window=100,
         checkpoint_every=500_000),
    Case("a2c-AtariPong", "a2c", ["--env-id", "PongNoFrameskip-v4", *A2C_ATARI], 17.3, 2_500_000, 20000,
         checkpoint_every=250_000, seeds=(1, 2)),
    *[Case(f"a2c-MinAtar{game}", "a2c", [*minatar(game), *A2C_MINATAR], ac_lambda, 5_000_000, 50000, window=100,
           checkpoint_every=500_000) for game, _, ac_lambda in MINATAR],
    Case("reinforce_gaussian-InvertedPendulum", "reinforce_gaussian", INVPEND, 950, 150000, 20000, headline="eval"),
    Case("reinforce_gaussian-GaussianBandit", "reinforce_gaussian", BANDIT, 0.9, 51200, 3200, window=100),
]  # fmt: skip


def command(case, seed, steps):
    requeue = ["--resume", "auto", "--run-name", f"seed{seed}", "--checkpoint-every", str(case.checkpoint_every)]
    return [case.script + ".py", *case.args, "--total-timesteps", str(steps), "--seed", str(seed)] + (
        requeue if case.checkpoint_every else []
    )


def parse(log):
    """Training episodes (steps, returns), the final eval, its normalized score and the run's SPS, from a log."""
    steps, returns, final, score, sps = [], [], None, None, None
    for line in log.splitlines():
        if m := RESUMED.match(line):  # a killed run continued from its checkpoint: drop what came after that step
            keep = [i for i, s in enumerate(steps) if s <= int(m.group(1))]
            steps, returns = [steps[i] for i in keep], [returns[i] for i in keep]
        elif m := EPISODE.match(line):
            steps.append(int(m.group(1)))
            returns.append(float(m.group(2)))
        elif m := EVAL.match(line):
            final = float(m.group(1))
            score = float(s.group(1)) if (s := SCORE.search(line)) else None
        elif (m := SPS.match(line)) and float(m.group(1)) > 0:  # a run resumed at its last step trains no steps
            sps = float(m.group(1))
    return np.array(steps), np.array(returns), final, score, sps


def moving_average(values, window):
    return np.array([values[max(0, i - window + 1) : i + 1].mean() for i in range(len(values))])


def first_reached(steps, returns, window, threshold):
    """The first step at which the mean of the last `window` training returns is >= threshold, else None."""
    full = moving_average(returns, window)[window - 1 :]
    hits = np.flatnonzero(full >= threshold)
    return int(steps[window - 1 + hits[0]]) if len(hits) else None


def run_one(case, seed, steps, out_dir, env):
    """One training run, its output streamed to out_dir/seed<S>.log (skipped when an earlier run finished, here or
    in the archive); a finished run's log is archived, gzipped, under benchmark/logs/ (part of the repository)."""
    if finished_log(out_dir, case, seed):
        return
    run_dir = out_dir / f"seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / case.script) + ".py", *command(case, seed, steps)[1:]]
    start = time.time()
    resuming = case.checkpoint_every and (run_dir / "runs" / f"seed{seed}").exists()
    with open(out_dir / f"seed{seed}.log", "a" if resuming else "w") as log:
        rc = subprocess.run(cmd, cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    (out_dir / f"seed{seed}.wall").write_text(f"{time.time() - start:.1f} {rc}\n")
    print(f"{case.name} seed {seed}: exit {rc}, {time.time() - start:.0f} s", flush=True)
    if rc == 0 and out_dir.parent.name == "full":
        archive(out_dir, case, seed)


def archive(out_dir, case, seed):
    folder = ARCHIVE / case.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed{seed}.wall").write_text((out_dir / f"seed{seed}.wall").read_text())
    with gzip.GzipFile(folder / f"seed{seed}.log.gz", "wb", mtime=0) as f:  # the same bytes when archived again
        f.write((out_dir / f"seed{seed}.log").read_bytes())


def finished_log(out_dir, case, seed):
    """(log text, wall seconds) of a run that finished (exit 0), from this machine's output or the archive."""
    kept = ARCHIVE / case.name
    for log, wall in [
        (out_dir / f"seed{seed}.log", out_dir / f"seed{seed}.wall"),
        (kept / f"seed{seed}.log.gz", kept / f"seed{seed}.wall"),
    ]:
        if log.exists() and wall.exists() and wall.read_text().split()[1] == "0":
            text = gzip.open(log, "rt").read() if log.suffix == ".gz" else log.read_text()
            return text, float(wall.read_text().split()[0])
    return None


def setup(case, out_dir, env, quick):
    """Write the case's dataset once (skipped when it exists), with the same seed for every run that reads it."""
    import minari

    dataset_id = case.setup[case.setup.index("--save-dataset") + 1]
    if dataset_id in minari.list_local_datasets():
        return
    log = out_dir / "setup.log"
    cmd = [sys.executable, str(ROOT / case.setup[0]) + ".py", *case.setup[1:], "--eval-episodes", "0"]
    cmd += ["--total-timesteps", "3000", "--learning-starts", "1000"] if quick else []  # the last flag counts
    with open(log, "w") as f:
        subprocess.run(cmd, cwd=out_dir, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)


def summarise(case, out_dir, seeds, steps):
    """The runs of a case, from their logs; none until every seed has finished (a case enters results.md whole)."""
    logs = [finished_log(out_dir, case, seed) for seed in seeds]
    if not all(logs):
        return []
    return [(seed, *parse(text), wall, "0") for seed, (text, wall) in zip(seeds, logs)]


def table_seeds(case, seeds):
    """The seeds of a case's row: --seeds when they include the case's own (more seeds), else the case's own, so that
    a run of some seeds (--seeds 2) never turns a row into a partial one."""
    return seeds if seeds and set(case.seeds) <= set(seeds) else case.seeds


def quartiles(values):
    values = [v for v in values if v is not None]
    return np.percentile(values, [25, 50, 75]) if values else (np.nan, np.nan, np.nan)


def draw(ax, case, runs, steps, legend=True):
    """The median training curve over seeds with its interquartile band, the threshold, the final evals."""
    grid = np.linspace(0, steps, 200)
    curves = [np.interp(grid, s, moving_average(r, case.window), left=np.nan) for _, s, r, *_ in runs if len(s)]
    if curves:
        q25, q50, q75 = np.nanpercentile(np.array(curves), [25, 50, 75], axis=0)
        what = "evaluation return" if case.script == "cql" else f"training return ({case.window}-episode average)"
        ax.plot(grid, q50, label=f"{what}, median of {len(curves)} seeds")
        ax.fill_between(grid, q25, q75, alpha=0.3, label="interquartile range")
    finals = [f for _, _, _, f, *_ in runs if f is not None]
    ax.scatter([steps] * len(finals), finals, marker="x", color="k", zorder=3, label="final evaluation (per seed)")
    ax.axhline(case.threshold, color="gray", linestyle=":", label=f"threshold {case.threshold:g}")
    ax.set_title(f"{case.script}.py on {case.name.split('-', 1)[1]}", fontsize=9)
    ax.set(xlabel="gradient steps" if case.script == "cql" else "environment steps", ylabel="return")
    ax.locator_params(axis="x", nbins=5)  # long step counts: fewer ticks, so that their labels do not run together
    if legend:
        ax.legend(fontsize=7, loc="lower right")


def plot(rows, plots, unfinished=()):
    """One PNG per case, and all of them in one grid (grid.png) for the README; a case still running (some seeds
    finished) is left out of both, as out of results.md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for case, runs, steps in rows:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        draw(ax, case, runs, steps)
        fig.tight_layout()
        fig.savefig(plots / f"{case.name}.png")
        plt.close(fig)
    if len(rows) + len(unfinished) < len(CASES):  # a case without any logs here: the grid.png there stays
        return
    cols = 4
    fig, axes = plt.subplots(-(-len(rows) // cols), cols, figsize=(4 * cols, 3 * -(-len(rows) // cols)), dpi=80)
    for ax in axes.flat[len(rows) :]:
        ax.axis("off")
    for ax, (case, runs, steps) in zip(axes.flat, rows):
        draw(ax, case, runs, steps, legend=False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, ["median over seeds", "interquartile range", "final evaluations", "threshold"], loc="lower right"
    )
    fig.tight_layout()
    fig.savefig(plots / "grid.png")
    plt.close(fig)


def write_results(rows, opts, path, unfinished=()):
    """benchmark/results.md: one row per case; the date, machine, commit and command line once at the top."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--note" and sys.argv[i] != "--note"]  # the note follows
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python benchmark/run.py {' '.join(shown)}` on {time.strftime('%Y-%m-%d')}, "
        f"commit {commit}, "
        f"{platform.machine()} with {os.cpu_count()} cores, "
        f"{'rebuilt from the logs' if opts.from_logs else f'{opts.jobs} runs at a time'}, one torch thread each; "
        "each case on its own seeds (one per entry of the per-seed column). Final eval: the deterministic policy over "
        "10 episodes after training "
        "(cql: over the last evaluation; its curve shows the periodic evaluations). 'Reached' is the first step at "
        "which the average of the last training returns (10 episodes; 100 for MinAtar, a2c-LunarLanderContinuous and "
        "the bandit) hit the "
        "threshold (median over the seeds that did; n/N "
        "seeds did). SPS from the run's own line (env steps, or gradient steps for cql, per second; shared cores, so "
        "a lower bound). Curves: benchmark/plots/. Logs: benchmark/logs/ (every run since it was added); a case "
        "without logs there or on the machine that ran this keeps its row from the previous results.md."
        + (f" {opts.note}" if opts.note else ""),
        "",
        "| case | steps | final eval median [IQR] | per seed: final eval @step reaching the threshold "
        "(training average over the same window) | reached threshold (n/N) | SPS median | wall s median "
        "| command |",
        "|---|---:|---|---|---|---:|---:|---|",
    ]  # fmt: skip
    computed = {}
    for case, runs, steps in rows:
        finals = [r[3] for r in runs]
        q25, q50, q75 = quartiles(finals)
        scores = [r[4] for r in runs if r[4] is not None]
        score = f" (normalized {np.median(scores):.1f})" if scores else ""
        reached = [first_reached(r[1], r[2], case.window, case.threshold) if len(r[1]) else None for r in runs]
        if case.script == "cql":  # offline: the periodic evaluations are the curve; 'reached' is not defined
            reached_text = "-"
        else:
            hit = [x for x in reached if x is not None]
            median = f"{np.median(hit):.0f}" if hit else "never"
            reached_text = f"{median} ({len(hit)}/{len(runs)}) >= {case.threshold:g}"
        tail = max(case.window, 10)  # the last 10 episodes, or the case's window (MinAtar's anchors: 100)
        last10 = [r[2][-tail:].mean() if len(r[2]) else np.nan for r in runs]  # sampled training returns
        per_seed = " / ".join(
            f"{'n/a' if f is None else f'{f:.1f}'} @{x or 'never'} ({t:.1f})"
            for f, x, t in zip(finals, reached, last10)
        )
        sps = np.median([r[5] for r in runs if r[5] is not None] or [np.nan])
        wall = np.nanmedian([r[6] for r in runs])  # a log without its .wall file has no timing
        cmd = " ".join(["python", *command(case, "S", steps)])
        final = f"{q50:.1f} [{q25:.1f}, {q75:.1f}]{score}"
        computed[case.name] = (
            f"| {case.name} | {steps} | {final} | {per_seed} | {reached_text} | {sps:.0f} | {wall:.0f} | `{cmd}` |"
        )
    # a case without logs here keeps its row from the previous results.md (the logs are not part of the repository)
    earlier = (
        {r.split("|")[1].strip(): r for r in path.read_text().splitlines() if r.startswith("| ")}
        if path.exists()
        else {}
    )
    carried = {name: row for name, row in earlier.items() if name not in unfinished}  # a case half run: no row yet
    table = [computed.get(c.name) or carried[c.name] for c in CASES if c.name in computed or c.name in carried]
    path.write_text("\n".join(lines + table) + "\n")
    print("\n".join(lines + table))
    write_readme(table)


def write_readme(table):
    """The README's results table and its headline cells, from the rows of results.md (never written by hand)."""
    readme, rows = ROOT / "README.md", {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[1:-1]] for r in table}
    compact = ["| case | steps | final eval, median [IQR] | seeds reaching the threshold |", "|---|---:|---|---|"]
    for name, (_, steps, final, _, reached, *_) in rows.items():
        steps = f"{int(steps) / 1e6:g}M" if int(steps) >= 10**6 else f"{int(steps) / 1e3:g}k"
        count = re.search(r"\((\d+/\d+)\) (>= \S+)", reached)
        compact.append(f"| {name} | {steps} | {final} | {f'{count[1]} ({count[2]})' if count else '-'} |")
    text = readme.read_text()
    start, end = (
        text.index("<!-- results-table -->\n") + len("<!-- results-table -->\n"),
        text.index("<!-- /results-table -->"),
    )
    text = text[:start] + "\n".join(compact) + "\n" + text[end:]
    for case in (c for c in CASES if c.headline and c.name in rows):
        _, steps, final, per_seed, *_, cmd = rows[case.name]
        target = re.search(r"--(?:env|dataset)-id (\S+)", cmd)[1]
        n, steps = len(per_seed.split(" / ")), f"{int(steps) / 1e3:g}k steps"
        normalized = re.search(r"normalized (\S+)\)", final)
        what = f"normalized {normalized[1]}" if case.headline == "normalized" else f"eval {final.split()[0]}"
        cell = f"{target}, {steps}: {what} (median of {n} seeds)".replace("\\", "\\\\")
        text = re.sub(rf"^(\| `{case.script}\.py` \|.*\| )[^|]*( \|)$", rf"\g<1>{cell}\g<2>", text, flags=re.M)
    readme.write_text(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="instead of each case's own seeds")
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="runs at a time (default: one per core)")
    p.add_argument("--quick", action="store_true", help="short budgets, results under benchmark/out/quick/")
    p.add_argument("--only", nargs="+", default=None, help="scripts (or case names) to run, e.g. sac_discrete")
    p.add_argument("--from-logs", action="store_true", help="only rebuild results.md and the plots from the logs")
    p.add_argument("--note", default="", help="a sentence for the top of results.md (how the logs were made)")
    opts = p.parse_args()
    cases = [c for c in CASES if opts.only is None or c.script in opts.only or c.name in opts.only]
    base = ROOT / "benchmark" / "out" / ("quick" if opts.quick else "full")
    results, plots = (base, base / "plots") if opts.quick else (ROOT / "benchmark", ROOT / "benchmark" / "plots")
    plots.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    env["MINARI_DATASETS_PATH"] = os.environ["MINARI_DATASETS_PATH"] = str(base / "minari")  # here and in the runs
    budget = {c.name: c.quick_steps if opts.quick else c.steps for c in CASES}
    if not opts.from_logs:
        for case in cases:
            (base / case.name).mkdir(parents=True, exist_ok=True)
            if case.setup:
                setup(case, base / case.name, env, opts.quick)
        jobs = [(c, s) for c in cases for s in opts.seeds or c.seeds]
        with concurrent.futures.ThreadPoolExecutor(opts.jobs) as pool:
            list(pool.map(lambda job: run_one(job[0], job[1], budget[job[0].name], base / job[0].name, env), jobs))
    rows, unfinished = [], set()
    for case in CASES:  # --only limits what runs; the table and the plots keep every case that has logs
        seeds = table_seeds(case, opts.seeds)
        runs = summarise(case, base / case.name, seeds, budget[case.name])
        if runs:
            rows.append((case, runs, budget[case.name]))
        elif any(finished_log(base / case.name, case, seed) for seed in seeds):
            unfinished.add(case.name)
    plot(rows, plots, unfinished)
    write_results(rows, opts, results / "results.md", unfinished)


if __name__ == "__main__":
    main()
