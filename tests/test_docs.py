"""The docs say only what the code does: every `--flag` written in README.md, CONTRIBUTING.md, docs/ and sweeps/ is a
flag of the script it is written for, every command line parses, and every default the docs quote is the default in
`Args`. The checker is tested on a planted mismatch too, so that it cannot pass by finding nothing."""

import dataclasses
import re
import shlex

import pytest
import yaml

from conftest import ROOT, SCRIPTS

# flags of other programs that the docs show: benchmark/run.py, pytest, pip, uv, sbatch, wandb
OTHER_FLAGS = {"seeds", "jobs", "quick", "only", "from-logs", "note", "index", "index-strategy", "index-url", "count"}
OTHER_FLAGS |= {"requeue", "signal", "help", "name", "flag"}  # the last two: placeholders in `--name=value`
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
COMMAND = re.compile(r"python3? (\w+)\.py((?:[ \t]+[^\s`|;&#\\]+)*)")
MENTION = re.compile(r"(\w+)\.py((?: --?[\w-]+(?:[ =][^\s`-][^\s`]*)?)+)")  # `sac_continuous.py --save-dataset ID`
DEFAULT_CLAIMS = [
    re.compile(r"`--([a-z][\w-]*)(?:[ =]([^`\s]+))?` (?:\(the default\)|\(default\)|by default|is the default)"),
    re.compile(r"--([a-z][\w-]*)`?,? (?:default|defaults to) `?([^\s`,;)]+)"),
]


def doc_files():
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def flags_of(module):
    names = set()
    for f in dataclasses.fields(module.Args):
        names |= {f.name.replace("_", "-"), "no-" + f.name.replace("_", "-")}
    return names


def parses(module, argv):
    try:
        return module.parse_args(argv)
    except SystemExit:
        return None


def problems_in(name, text, modules):
    """What in one docs text is not true of the scripts: unknown flags, command lines that do not parse, defaults
    that are not the defaults."""
    found, own = [], name.removesuffix(".md") if name.removesuffix(".md") in modules else None
    known = set().union(*(flags_of(m) for m in modules.values())) | OTHER_FLAGS
    for script, flags in MENTION.findall(text):  # flags written after another script's name are that script's
        for flag in FLAG.findall(flags) if script in modules else []:
            if flag not in flags_of(modules[script]):
                found.append(f"{name}: --{flag} is not a flag of {script}.py")
    for flag in FLAG.findall(MENTION.sub("", text)):
        allowed = flags_of(modules[own]) | OTHER_FLAGS if own else known
        if flag not in allowed:
            found.append(f"{name}: --{flag} is not a flag of {own + '.py' if own else 'any script'}")
    for script, rest in COMMAND.findall(text):
        if script in modules and parses(modules[script], shlex.split(rest)) is None:
            found.append(f"{name}: `python {script}.py{rest}` does not parse")
    for pattern in DEFAULT_CLAIMS:
        for flag, value in pattern.findall(text):
            for module in [modules[own]] if own else modules.values():
                field = flag.replace("-", "_").removeprefix("no_")
                if field not in {f.name for f in dataclasses.fields(module.Args)}:
                    continue
                default = getattr(module.Args(), field)
                claimed = parses(module, [f"--{flag}", value] if value else [f"--{flag}"])
                if claimed is None or getattr(claimed, field) != default:
                    found.append(f"{name}: says --{flag} {value} is the default; it is {default!r}")
    return found


@pytest.fixture(scope="module")
def modules(load_script):
    return {s: load_script(s) for s in SCRIPTS}


def test_every_flag_command_and_default_in_the_docs_is_true(modules):
    problems = [p for path in doc_files() for p in problems_in(path.name, path.read_text(), modules)]
    assert not problems, "\n".join(problems)


def test_sweep_configs_name_flags_of_their_program(modules):
    for path in sorted((ROOT / "sweeps").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        module = modules[config["program"].removesuffix(".py")]
        for name in config["parameters"]:
            assert name in flags_of(module), f"{path.name}: {name} is not a flag of {config['program']}"


def test_the_checker_finds_a_planted_mismatch(modules):
    text = (ROOT / "docs" / "sac_discrete.md").read_text()
    assert "--target-entropy-scale" in text and not problems_in("sac_discrete.md", text, modules)
    renamed = text.replace("--target-entropy-scale", "--target-entropy-fraction", 1)
    assert any("--target-entropy-fraction is not a flag" in p for p in problems_in("sac_discrete.md", renamed, modules))
    wrong_default = text + "\nThe critics learn at `--q-lr 3e-4` by default.\n"
    assert any("--q-lr 3e-4 is the default" in p for p in problems_in("sac_discrete.md", wrong_default, modules))
    bad_command = text + "\n`python sac_discrete.py --env-id CartPole-v1 --buffer-size many`\n"
    assert any("does not parse" in p for p in problems_in("sac_discrete.md", bad_command, modules))
