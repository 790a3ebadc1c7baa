"""Shared test helpers: run a script as a user would, or import it to test its functions."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "learning: short fixed-seed learning runs (slowest tests)")
    config.addinivalue_line("markers", "cuda: needs a CUDA device")


@pytest.fixture(scope="session")
def load_script():
    """Import one of the top-level scripts as a module (its main() does not run)."""
    cache = {}

    def _load(name):
        if name not in cache:
            spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses need the module registered
            spec.loader.exec_module(module)
            cache[name] = module
        return cache[name]

    return _load


@pytest.fixture
def run_script(tmp_path):
    """Run `python <script>.py <args>` in a fresh working directory; returns the CompletedProcess."""

    def _run(name, *args, timeout=600, env=None, check=True):
        full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, str(ROOT / f"{name}.py"), *map(str, args)],
            cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{name}.py exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
        return proc

    _run.cwd = tmp_path
    return _run


def parse_metric(stdout, key):
    """All float values printed as `key=value` in a run's output, in order."""
    values = []
    for line in stdout.splitlines():
        for part in line.replace(",", " ").split():
            if part.startswith(key + "="):
                values.append(float(part.split("=", 1)[1]))
    return values
