"""What every script does the same way, checked for all five: --help, bad input, W&B offline tracking, the
save -> --eval-checkpoint round trip, exact --resume after SIGTERM, the command lines of `wandb agent`, the parts
written word for word the same, and a CUDA smoke run."""

import dataclasses
import glob
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import tomllib
import torch
import yaml
from packaging.requirements import Requirement

from conftest import ROOT, SCRIPTS, gaussian_episodes, parse_metric, script_env, write_dataset

# A run of a few seconds per script, small networks; cql reads the dataset made by the `dataset` fixture.
QUICK = {
    "sac_continuous": ["--env-id", "Pendulum-v1", "--total-timesteps", 600, "--learning-starts", 200],
    "sac_discrete": ["--env-id", "CartPole-v1", "--total-timesteps", 600, "--learning-starts", 200],
    "cql": ["--dataset-id", "test/pendulum-v0", "--total-timesteps", 300, "--eval-freq", 100],
    "a2c": ["--env-id", "CartPole-v1", "--total-timesteps", 1600],
    "reinforce_gaussian": ["--env-id", "Pendulum-v1", "--total-timesteps", 2400, "--batch-size", 400],
}
COMMON = ["--hidden-dim", 32, "--eval-episodes", 2]
BATCH = {"sac_continuous": ["--batch-size", 32], "sac_discrete": ["--batch-size", 32], "cql": ["--batch-size", 32]}

BAD_INPUT = [
    ("sac_continuous", ["--env-id", "CartPole-v1"], "needs a Box action space; CartPole-v1 has Discrete(2)"),
    ("sac_discrete", ["--env-id", "Pendulum-v1"], "needs a Discrete action space; Pendulum-v1 has Box"),
    ("reinforce_gaussian", ["--env-id", "CartPole-v1"], "needs a Box action space; CartPole-v1 has Discrete(2)"),
    ("a2c", ["--env-id", "Blackjack-v1"], "needs a flat Box observation space; Blackjack-v1 has Tuple"),
    ("cql", ["--dataset-id", "nowhere/missing-v0"], "dataset 'nowhere/missing-v0' is not"),
    ("sac_continuous", ["--buffer-size", 100, "--batch-size", 256], "--buffer-size 100 is smaller than --batch-size"),
    ("sac_discrete", ["--tau", 0], "--tau must be in (0, 1]"),
    ("sac_discrete", ["--episodic-life"], "--episodic-life is for Atari ids, not CartPole-v1"),
    ("a2c", ["--num-steps", 0], "--num-steps must be >= 1"),
    ("reinforce_gaussian", ["--batch-size", 0], "--batch-size must be >= 1"),
    ("cql", ["--cql-n-actions", 0], "--cql-n-actions must be >= 1"),
] + [(s, ["--total-timesteps", 0], "--total-timesteps must be >= 1") for s in SCRIPTS]
BAD_INPUT += [(s, ["--env-id", "NoSuchEnv-v0"], "unknown env id 'NoSuchEnv-v0'") for s in SCRIPTS if s != "cql"]


@pytest.fixture
def dataset(minari_path):
    """A small Pendulum-v1 Minari dataset for cql.py, in this test's private MINARI_DATASETS_PATH (the scripts inherit
    the variable)."""
    write_dataset("test/pendulum-v0", "Pendulum-v1", gaussian_episodes("Pendulum-v1", 3, 1.0))
    return {"MINARI_DATASETS_PATH": str(minari_path)}


def quick(script, *extra):
    return [*QUICK[script], *COMMON, *BATCH.get(script, []), *extra]


def checkpoint_of(cwd, script, exp_name=None):
    (path,) = glob.glob(str(cwd / "runs" / "*" / f"{exp_name or script}.pt"))
    return path


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_every_flag(run_script, load_script, script):
    out = run_script(script, "--help").stdout
    for name in load_script(script).Args.__dataclass_fields__:
        assert "--" + name.replace("_", "-") in out, name


@pytest.mark.parametrize("script, args, message", BAD_INPUT, ids=lambda v: str(v)[:40])
def test_bad_input_gets_one_sentence_and_writes_nothing(run_script, dataset, script, args, message):
    proc = run_script(script, *args, check=False, env=dataset, timeout=60)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not os.listdir(run_script.cwd) or os.listdir(run_script.cwd) == ["minari"], "a rejected run wrote files"


@pytest.mark.parametrize("script", SCRIPTS)
def test_track_offline_logs_the_shared_metrics(run_script, dataset, script):
    run_script(script, *quick(script, "--track"), env=dataset)
    (run_dir,) = glob.glob(str(run_script.cwd / "wandb" / "offline-run-*"))
    (log,) = glob.glob(os.path.join(run_dir, "run-*.wandb"))
    data = open(log, "rb").read()
    metrics = [b"charts/SPS", b"losses/", b"eval/episodic_return"]
    metrics += [b"charts/episodic_return", b"charts/episodic_length"] if script != "cql" else []
    for metric in metrics:
        assert metric in data, metric


@pytest.mark.parametrize("script", SCRIPTS)
def test_save_then_eval_checkpoint(run_script, dataset, script):
    proc = run_script(script, *quick(script, "--save-model"), env=dataset)
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1
    assert sorted(os.listdir(run_script.cwd)) in (["runs"], ["minari", "runs"]), "no other files than the checkpoint"
    again = run_script(script, "--eval-checkpoint", checkpoint_of(run_script.cwd, script), "--eval-episodes", 3)
    assert len(parse_metric(again.stdout, "eval/episodic_return")) == 1
    wrong = next(s for s in SCRIPTS if s != script)
    proc = run_script(wrong, "--eval-checkpoint", checkpoint_of(run_script.cwd, script), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and f"not a checkpoint of {wrong}.py" in proc.stderr


def tensors_equal(a, b):
    """Checkpoint contents compared exactly: tensors bit for bit, containers element by element."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(tensors_equal(x, y) for x, y in zip(a, b))
    return True  # numbers and strings (counters, run names) are compared by the caller where they matter


@pytest.mark.parametrize("script", SCRIPTS)
def test_sigterm_then_resume_equals_an_uninterrupted_run(tmp_path, dataset, script):
    """Stop a run with SIGTERM in the middle (as a cluster does), resume it, and compare it with a straight run: the
    final evaluation and every network and optimizer state are bit for bit the same."""
    args = [sys.executable, str(ROOT / f"{script}.py"), *map(str, quick(script, "--save-model", "--exp-name", "run"))]
    env = script_env(dataset)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    straight.mkdir(), stopped.mkdir()
    full = subprocess.run(args, cwd=straight, env=env, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]

    proc = subprocess.Popen(args, cwd=stopped, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    total, lines = QUICK[script][QUICK[script].index("--total-timesteps") + 1], []
    for line in proc.stdout:  # stop once a line from inside the loop says a third of the run is done
        lines.append(line)
        if (m := re.match(r"global_step=(\d+)", line)) and int(m.group(1)) >= total / 3:
            proc.send_signal(signal.SIGTERM)
            break
    out = "".join(lines) + proc.stdout.read()
    assert proc.wait(timeout=600) == 128 + signal.SIGTERM, proc.stderr.read()[-2000:]
    (message,) = [line for line in out.splitlines() if line.startswith("stopped by SIGTERM")]
    path = checkpoint_of(stopped, script, "run")
    assert f"--resume {os.path.relpath(path, stopped)}" in message
    resumed = subprocess.run([*args, "--resume", path], cwd=stopped, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    assert parse_metric(resumed.stdout, "eval/episodic_return") == parse_metric(full.stdout, "eval/episodic_return")
    a = torch.load(checkpoint_of(straight, script, "run"), weights_only=False)
    b = torch.load(path, weights_only=False)
    assert a["counters"]["global_step"] == b["counters"]["global_step"]
    nets = [k for k, v in a.items() if isinstance(v, dict) and k not in ("args", "counters", "rng")]
    assert nets and all(tensors_equal(a[k], b[k]) for k in nets), [k for k in nets if not tensors_equal(a[k], b[k])]


@pytest.mark.parametrize("script", SCRIPTS)
def test_resume_refuses_other_flags_and_other_scripts(run_script, dataset, script):
    run_script(script, *quick(script, "--save-model", "--exp-name", "run"), env=dataset)
    path = checkpoint_of(run_script.cwd, script, "run")
    proc = run_script(
        script, *quick(script, "--exp-name", "run", "--seed", 7), "--resume", path, check=False, env=dataset
    )
    assert proc.returncode != 0 and "--seed 1 (now 7)" in proc.stderr and "Traceback" not in proc.stderr
    wrong = next(s for s in SCRIPTS if s != script)
    proc = run_script(wrong, "--resume", path, check=False, env=dataset)
    assert proc.returncode != 0 and f"is not a checkpoint of {wrong}.py" in proc.stderr


def sweep_command_line(args_dict):
    """The flags `wandb agent` passes for a run with these parameters, built by wandb's own code."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    return create_sweep_command_args({"args": {k: {"value": v} for k, v in args_dict.items()}})["args"]


def flipped(field):
    """A value different from the default, of the field's type."""
    value = field.default
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value + 1
    return {"dataset_kind": "policy", "target_q": "mean", "optimizer": "rmsprop", "baseline": "mean"}.get(
        field.name, "x" if value is None or isinstance(value, str) else value
    )


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("style", ["hyphens", "underscores"])
def test_every_flag_parses_from_a_wandb_agent_command_line(load_script, script, style):
    module = load_script(script)
    fields = dataclasses.fields(module.Args)
    name = (lambda f: f.name.replace("_", "-")) if style == "hyphens" else (lambda f: f.name)
    for field in fields:  # one flag at a time, to the value that is not the default
        args = module.parse_args(sweep_command_line({name(field): flipped(field)}))
        assert getattr(args, field.name) == flipped(field), field.name
    for value in (True, False):  # booleans both ways, all at once, as `--flag=True` / `--flag=False`
        bools = {name(f): value for f in fields if f.type is bool}
        args = module.parse_args(sweep_command_line(bools))
        assert all(getattr(args, f.name) is value for f in fields if f.type is bool)
    assert module.parse_args(["--track"]).track is True  # CleanRL's form keeps working


def sweep_config(script):
    (path,) = (ROOT / "sweeps").glob(f"{script}_*.yaml")
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_sweep_config_runs_its_script_for_a_few_hundred_steps(run_script, dataset, script):
    """The first point of the script's sweep, with the flags `wandb agent` builds, then a short budget."""
    config = sweep_config(script)
    assert config["program"] == f"{script}.py" and "${args}" in config["command"]
    point = {
        k: v["value"] if "value" in v else v.get("values", [v.get("min")])[0] for k, v in config["parameters"].items()
    }
    point.pop("dataset-id", None)  # cql reads the test's small dataset instead
    flags = [
        *sweep_command_line(point),
        *QUICK[script],
        *BATCH.get(script, []),
        "--hidden-dim",
        32,
        "--eval-episodes",
        1,
    ]
    proc = run_script(script, *flags, env=dataset)
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1
    assert glob.glob(str(run_script.cwd / "wandb" / "offline-run-*")), "the sweep tracks the run"


def shared_block(script):
    text = (ROOT / f"{script}.py").read_text()
    return re.search(r"^# ---- Run management: word for word.*?(?=^if __name__)", text, re.S | re.M).group(0)


@pytest.mark.parametrize("script", SCRIPTS[1:])
def test_the_shared_parts_are_word_for_word_the_same(script):
    assert shared_block(script) == shared_block(SCRIPTS[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("script", SCRIPTS)
def test_cuda_smoke(run_script, dataset, script):
    proc = run_script(script, *quick(script, "--cuda", "--save-model"), env=dataset)
    assert " on cuda" in proc.stdout.splitlines()[0]
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1
    again = run_script(script, "--eval-checkpoint", checkpoint_of(run_script.cwd, script), "--eval-episodes", 1)
    assert len(parse_metric(again.stdout, "eval/episodic_return")) == 1


@pytest.mark.parametrize("script", SCRIPTS)
def test_pep723_metadata_agrees_with_requirements(script):
    """`uv run` on a copied script must resolve what `pip install -r requirements.txt` does: same bounds."""
    text = (ROOT / f"{script}.py").read_text()
    block = re.search(r"^# /// script\n(.*?)^# ///$", text, re.S | re.M).group(1)
    metadata = tomllib.loads("".join(line[2:] + "\n" for line in block.splitlines()))
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = {r.name: r for r in (Requirement(line) for line in lines if line and not line.startswith("#"))}
    for dep in map(Requirement, metadata["dependencies"]):
        assert dep.name in pinned, f"{dep.name} is missing from requirements.txt"
        assert dep.specifier == pinned[dep.name].specifier and dep.extras <= pinned[dep.name].extras, dep


def test_resume_with_track_continues_the_same_wandb_run(tmp_path, dataset):
    """The W&B run id is saved in the checkpoint: the resumed process logs to the same run."""
    args = [sys.executable, str(ROOT / "sac_discrete.py"), *map(str, quick("sac_discrete", "--save-model", "--track"))]
    env = script_env(dataset)
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if line.startswith("global_step="):
            proc.send_signal(signal.SIGTERM)
            break
    proc.stdout.read()
    assert proc.wait(timeout=600) == 128 + signal.SIGTERM
    path = checkpoint_of(tmp_path, "sac_discrete")
    resumed = subprocess.run([*args, "--resume", path], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    runs = sorted(glob.glob(str(tmp_path / "wandb" / "offline-run-*")))
    assert len(runs) == 2 and runs[0].rsplit("-", 1)[1] == runs[1].rsplit("-", 1)[1], runs


def final_state(path):
    """Every network and optimizer state of a checkpoint (the entries that are dicts, less the run bookkeeping)."""
    ckpt = torch.load(path, weights_only=False)
    return ckpt, {k: v for k, v in ckpt.items() if isinstance(v, dict) and k not in ("args", "counters", "rng")}


@pytest.mark.parametrize("script", SCRIPTS)
def test_requeue_after_kill_9_equals_an_uninterrupted_run(tmp_path, dataset, script):
    """A cluster's requeue: the identical command line (--resume auto, a fixed --run-name, periodic checkpoints) is
    killed with SIGKILL after its first checkpoint and started again; it must continue from that checkpoint and end
    bit for bit like a run that was never interrupted."""
    total = QUICK[script][QUICK[script].index("--total-timesteps") + 1]
    every = {"a2c": 320, "reinforce_gaussian": 800}.get(script, total // 4)
    flags = quick(script, "--resume", "auto", "--run-name", "req", "--checkpoint-every", every)
    args = [sys.executable, str(ROOT / f"{script}.py"), *map(str, flags)]
    env = script_env(dataset)
    straight, requeued = tmp_path / "straight", tmp_path / "requeued"
    straight.mkdir(), requeued.mkdir()
    full = subprocess.run(args, cwd=straight, env=env, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]

    path = requeued / "runs" / "req" / f"{script}.pt"
    proc = subprocess.Popen(args, cwd=requeued, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not path.exists() and proc.poll() is None:
        time.sleep(0.005)
    proc.kill()
    proc.wait(timeout=60)
    killed_at = torch.load(path, weights_only=False)["counters"]["global_step"]
    assert 0 < killed_at < total, f"the kill came too late to test anything (step {killed_at} of {total})"
    again = subprocess.run(args, cwd=requeued, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed run req at global_step={killed_at}" in again.stdout
    episodes = [int(m) for m in re.findall(r"^global_step=(\d+)", again.stdout, re.M)]
    assert script == "cql" or episodes[0] > killed_at

    assert parse_metric(again.stdout, "eval/episodic_return") == parse_metric(full.stdout, "eval/episodic_return")
    (a, nets_a), (b, nets_b) = final_state(straight / "runs" / "req" / f"{script}.pt"), final_state(path)
    assert a["counters"]["global_step"] == b["counters"]["global_step"] == total or script == "a2c"
    assert nets_a and all(tensors_equal(nets_a[k], nets_b[k]) for k in nets_a)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_burst_of_sigterms_during_the_final_save_still_leaves_a_checkpoint(tmp_path, dataset, script):
    """Schedulers send SIGTERM more than once: after the first, keep sending one every few milliseconds through the
    final save and beyond; the run must still exit 143, without a traceback, with a readable checkpoint."""
    args = [sys.executable, str(ROOT / f"{script}.py"), *map(str, quick(script, "--save-model", "--exp-name", "run"))]
    proc = subprocess.Popen(args, cwd=tmp_path, env=script_env(dataset), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in proc.stdout:
        if line.startswith(b"global_step=") or script == "cql" and line.startswith(b"cql.py:"):
            break
    try:
        while proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.003)
    except ProcessLookupError:
        pass
    out, err = proc.communicate(timeout=600)
    # 143; or killed by SIGTERM itself (what a shell also reports as 143) once Python's shutdown, after the save and
    # the W&B finish, has given the signal back its default action
    assert proc.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), err.decode()[-2000:]
    assert b"stopped by SIGTERM" in out
    assert b"Traceback" not in err
    ckpt = torch.load(checkpoint_of(tmp_path, script, "run"), weights_only=False)
    assert ckpt["script"] == f"{script}.py" and not glob.glob(str(tmp_path / "runs" / "*" / "*.tmp"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unwritable_runs_folder_is_refused_before_training(run_script, dataset, script):
    """Found at start, in one sentence, rather than after the whole run. (The test user may be root, whom a read-only
    mode does not stop, so `runs` is made a plain file: a folder cannot be created under it. A read-only working
    directory gives the same sentence for a user who is not root.)"""
    (run_script.cwd / "runs").write_text("not a folder")
    proc = run_script(script, *quick(script, "--save-model"), check=False, env=dataset, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "cannot write checkpoints to runs/" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == "", "refused before the header: no training started"


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_older_checkpoint_resumes_with_defaults_and_a_missing_part_is_refused(run_script, dataset, script):
    run_script(
        script,
        *quick(
            script,
            "--save-model",
            "--exp-name",
            "run",
            "--total-timesteps",
            QUICK[script][QUICK[script].index("--total-timesteps") + 1] // 2,
        ),
        env=dataset,
    )
    path = checkpoint_of(run_script.cwd, script, "run")
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["args"]["torch_deterministic"] is True
    del ckpt["args"]["torch_deterministic"]  # as if the flag had been added after this checkpoint was written
    torch.save(ckpt, path)
    proc = run_script(script, *quick(script, "--exp-name", "run", "--save-model"), "--resume", path, env=dataset)
    assert len(parse_metric(proc.stdout, "eval/episodic_return")) == 1
    proc = run_script(
        script,
        *quick(script, "--exp-name", "run", "--no-torch-deterministic"),
        "--resume",
        path,
        check=False,
        env=dataset,
    )
    assert proc.returncode != 0 and "--torch-deterministic True (now False)" in proc.stderr

    ckpt = torch.load(path, weights_only=False)
    network = next(k for k in ("qf_target", "agent", "actor") if k in ckpt)
    del ckpt[network]
    torch.save(ckpt, path)
    proc = run_script(script, *quick(script, "--exp-name", "run"), "--resume", path, check=False, env=dataset)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"has no {network}" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_algorithm_comes_first_within_its_line_budget(script):
    """A reader meets the algorithm and its loop first: at most 420 lines to the end of main, main at most 80, then
    the support code, then the shared run management, at most 200 lines; the whole file at most 700 (counted as ruff
    formats the file)."""
    lines = (ROOT / f"{script}.py").read_text().splitlines()
    main_start = lines.index("def main(args):")
    main_end = next(i for i in range(main_start + 1, len(lines)) if lines[i].startswith(("def ", "class ")))
    main_end = max(i for i in range(main_start, main_end) if lines[i].strip()) + 1
    shared = shared_block(script).rstrip("\n").splitlines()
    assert main_end <= 420 and main_end - main_start <= 80, (main_end, main_end - main_start)
    assert len(shared) <= 200, len(shared)
    assert len(lines) <= 700, len(lines)
    assert lines.index(shared[0]) > main_end  # the harness after the algorithm


def test_a_failed_periodic_save_warns_and_a_failed_final_save_ends_the_run(load_script, tmp_path, monkeypatch, capsys):
    """A full disk during a periodic checkpoint costs that checkpoint only; during the final one, the run ends with
    one sentence and a non-zero exit. (In-process; the shared block is the same in every script.)"""
    sd = load_script("sac_discrete")
    monkeypatch.chdir(tmp_path)
    replace, calls = os.replace, []

    def full_disk_at_first(src, dst):  # the first two writes fail as on a full disk, later ones succeed
        calls.append(dst)
        if len(calls) <= 2:
            raise OSError(28, "No space left on device")
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk_at_first)
    args = ["--total-timesteps", 400, "--learning-starts", 100, "--batch-size", 16, "--hidden-dim", 8]
    sd.main(sd.parse_args([*map(str, args), "--checkpoint-every", "100", "--eval-episodes", "0", "--exp-name", "a"]))
    err = capsys.readouterr().err
    assert err.count("warning: no checkpoint at global_step=") == 2 and "No space left on device" in err
    assert len(calls) == 5 and glob.glob(str(tmp_path / "runs" / "*" / "a.pt"))  # at 300, 400 and the end
    assert not glob.glob(str(tmp_path / "runs" / "*" / "*.tmp"))

    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(SystemExit, match="the checkpoint could not be written to runs/.*No space left on device"):
        sd.main(sd.parse_args([*map(str, args), "--save-model", "--eval-episodes", "0", "--exp-name", "b"]))


def test_resume_auto_names_each_setting_apart_and_the_same_at_every_requeue(load_script, tmp_path, monkeypatch):
    """Without --run-name, --resume auto names the run after the flags that set it up (those not at their defaults,
    run management aside): the same command line finds its folder again, the points of a sweep never share one."""
    sd = load_script("sac_discrete")
    monkeypatch.chdir(tmp_path)
    name = lambda *flags: sd.Run(sd.parse_args(["--resume", "auto", *flags]), "CartPole-v1").name  # noqa: E731
    assert name("--q-lr", "3e-4") == name("--q-lr", "3e-4", "--total-timesteps", "999", "--threads", "2")
    assert name("--q-lr", "3e-4") != name("--q-lr", "1e-4") != name()
    assert name("--q-lr", "1e-3") == name()  # 1e-3 is the default: a flag added later at its default keeps the name
    assert name().startswith("CartPole-v1__sac_discrete__1__")
