"""benchmark/run.py's bookkeeping, without running anything: a resumed log, the rows it writes, the README it fills."""

import importlib.util

from conftest import ROOT


def load_runner():
    spec = importlib.util.spec_from_file_location("benchmark_run", ROOT / "benchmark" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_resumed_log_drops_what_the_killed_run_printed_after_its_checkpoint():
    run = load_runner()
    log = "\n".join(
        [
            "global_step=100, episodic_return=1.00, episodic_length=10",
            "global_step=200, episodic_return=2.00, episodic_length=10",
            "global_step=300, episodic_return=3.00, episodic_length=10",  # after the checkpoint at 250: printed again
            "sac_discrete.py: MinAtar/Breakout-v1 on cpu, run seed1, 400 steps",
            "resumed run seed1 at global_step=250",
            "global_step=300, episodic_return=4.00, episodic_length=10",
            "global_step=400, episodic_return=5.00, episodic_length=10",
            "SPS=50.0 (updates: 10)",
            "eval/episodic_return=5.00 (std 0.00 over 10 episodes)",
            "resumed run seed1 at global_step=400",  # rerun after it finished: no steps, the same evaluation
            "SPS=0.0 (updates: 10)",
            "eval/episodic_return=6.00 (std 0.00 over 10 episodes)",
        ]
    )
    steps, returns, final, score, sps = run.parse(log)
    assert steps.tolist() == [100, 200, 300, 400] and returns.tolist() == [1.0, 2.0, 4.0, 5.0]
    assert (final, score, sps) == (6.0, None, 50.0)


def test_long_cases_requeue_and_every_case_has_seeds_and_a_unique_name():
    run = load_runner()
    names = [case.name for case in run.CASES]
    assert len(names) == len(set(names))
    for case in run.CASES:
        command = run.command(case, 1, case.steps)
        assert case.seeds and command[0] == f"{case.script}.py"
        if case.checkpoint_every:
            assert command[-6:] == ["--resume", "auto", "--run-name", "seed1", "--checkpoint-every",
                                    str(case.checkpoint_every)]  # fmt: skip


def test_the_readme_table_is_written_from_the_rows_of_results_md(tmp_path, monkeypatch):
    run = load_runner()
    readme = tmp_path / "README.md"
    readme.write_text(
        "| `a2c.py` | A2C | x | y | z | old headline |\n\n<!-- results-table -->\nold table\n<!-- /results-table -->\n"
    )
    monkeypatch.setattr(run, "ROOT", tmp_path)
    cmd = "`python a2c.py --env-id CartPole-v1 --total-timesteps 200000 --seed S`"
    seeds = "500.0 @1 (500.0) / 500.0 @2 (500.0)"
    row = f"| a2c-CartPole | 200000 | 500.0 [500.0, 500.0] | {seeds} | 2 (2/2) >= 475 | 1 | 2 | {cmd} |"
    run.write_readme([row])
    text = readme.read_text()
    assert "| a2c-CartPole | 200k | 500.0 [500.0, 500.0] | 2/2 (>= 475) |" in text and "old table" not in text
    assert "| CartPole-v1, 200k steps: eval 500.0 (median of 2 seeds) |" in text


def test_a_run_of_some_seeds_leaves_each_row_on_the_case_s_own_seeds():
    run = load_runner()
    case = next(c for c in run.CASES if c.seeds == (1, 2, 3))
    assert run.table_seeds(case, None) == (1, 2, 3)
    assert run.table_seeds(case, [2]) == (1, 2, 3)  # one seed rerun: the row still waits for all three
    assert run.table_seeds(case, [1, 2, 3, 4, 5]) == [1, 2, 3, 4, 5]  # more seeds: the row shows them all
