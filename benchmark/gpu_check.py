"""The checks that need a CUDA GPU, in one command, for a machine that has one:

    python benchmark/gpu_check.py

1. The CUDA tests of the suite (a short run of every script on the GPU, then `--eval-checkpoint`).
2. sac_continuous's `--compile --cudagraphs` path against eager: the same 2,000 updates on the same fixed batches
   (drawn once, no env in the loop, so the two runs see identical data); alpha and the last losses must agree within
   a relative tolerance (compiled kernels round differently, so not bit for bit), and alpha must equal
   exp(log_alpha) after every update (a stale temperature is what the persistent `alpha` tensor prevents).
Exits non-zero on the first failure.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
UPDATES, BATCH, RTOL = 2000, 256, 0.05


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def train(sac, compiled, batches):
    """UPDATES gradient steps of sac_continuous's update() on the given batches; returns alpha, log_alpha, losses."""
    torch.manual_seed(0)
    device, args = torch.device("cuda"), sac.Args(env_id="Pendulum-v1")
    act_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    actor = sac.Actor(3, act_space, args.hidden_dim).to(device)
    qf = sac.TwinQ(3, 1, args.hidden_dim).to(device)
    qf_target = sac.TwinQ(3, 1, args.hidden_dim).to(device).requires_grad_(False)
    qf_target.load_state_dict(qf.state_dict())
    log_alpha = torch.zeros((), device=device, requires_grad=True)
    optimizers = (
        torch.optim.Adam(qf.parameters(), lr=args.q_lr, fused=True),
        torch.optim.Adam(actor.parameters(), lr=args.policy_lr, fused=True),
        torch.optim.Adam([log_alpha], lr=args.q_lr, fused=True),
    )
    steps = sac.critic_step, sac.actor_step
    if compiled:
        steps = tuple(torch.compile(step, mode="reduce-overhead") for step in steps)
    alpha = log_alpha.detach().exp()
    for i, batch in enumerate(batches, start=1):
        losses = sac.update(batch, actor, qf, qf_target, log_alpha, alpha, optimizers, steps, args, i)
        if not torch.allclose(alpha, log_alpha.detach().exp()):
            raise SystemExit(f"gpu_check: alpha is stale after update {i} ({'compiled' if compiled else 'eager'})")
    torch.cuda.synchronize()
    return float(alpha), [float(loss) for loss in losses if loss is not None]


def main():
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device: run this on a machine with an NVIDIA GPU")
    tests = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests"), "-q", "-k", "cuda"], cwd=ROOT)
    if tests.returncode != 0:
        raise SystemExit("gpu_check: the CUDA tests failed")
    sac = load("sac_continuous")
    generator = torch.Generator(device="cuda").manual_seed(1)
    batches = [
        (
            torch.randn(BATCH, 3, device="cuda", generator=generator),
            torch.rand(BATCH, 1, device="cuda", generator=generator) * 4 - 2,
            torch.randn(BATCH, device="cuda", generator=generator),
            torch.randn(BATCH, 3, device="cuda", generator=generator),
            (torch.rand(BATCH, device="cuda", generator=generator) < 0.01).float(),
        )
        for _ in range(UPDATES)
    ]
    eager, compiled = train(sac, False, batches), train(sac, True, batches)
    print(f"eager: alpha {eager[0]:.6f}, losses {eager[1]}")
    print(f"compiled + CUDA graphs: alpha {compiled[0]:.6f}, losses {compiled[1]}")
    for a, b in zip([eager[0], *eager[1]], [compiled[0], *compiled[1]]):
        if not np.isclose(a, b, rtol=RTOL, atol=1e-3):
            raise SystemExit(f"gpu_check: compiled {b} differs from eager {a} by more than {RTOL:.0%}")
    print("gpu_check: all passed")


if __name__ == "__main__":
    main()
