"""Are sac_discrete.py's image encoders alive? For each checkpoint of an Atari run (or "init": a fresh network, seed
0), on 1000 frames of random play (fixed seeds, the script's own preprocessing), as quoted in atari.md:
- the actor's and the first critic's 512 features: their std over the frames (averaged over the features) and the
  fraction that are 0 on every frame (dead);
- Q of the first critic: its mean, its std over the frames, and the std over the frames of Q minus its mean over the
  actions (does the critic tell states apart at all?) and that difference's mean size;
- alpha, and the policy's entropy (mean and min over the frames) and greedy action on those frames.

    python benchmark/notes/sac_discrete_encoder_probe.py BreakoutNoFrameskip-v4 init RUN_DIR/runs/seed1/sac_discrete.pt
"""

import pathlib
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
import sac_discrete as sd  # noqa: E402

env_id, checkpoints = sys.argv[1], sys.argv[2:]
torch.set_num_threads(1)
sd.register_env_family(env_id)
env = sd.make_env(env_id, 0, False, "", episodic_life=True)()
obs, _ = env.reset(seed=123)
rng, frames = np.random.default_rng(0), []
for _ in range(1000):
    frames.append(np.asarray(obs))
    obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
    obs = env.reset()[0] if terminated or truncated else obs
x, n_actions = torch.as_tensor(np.stack(frames)), int(env.action_space.n)

for path in checkpoints:
    torch.manual_seed(0)
    actor, qf = sd.Actor(x.shape[1:], n_actions, 256), sd.TwinQ(x.shape[1:], n_actions, 256)
    label, alpha = "init", float("nan")
    if path != "init":  # mmap: the replay buffer in the file is not read
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        actor.load_state_dict(ckpt["actor"]), qf.load_state_dict(ckpt["qf"])
        label, alpha = f"step {ckpt['counters']['global_step']}", float(ckpt["log_alpha"].exp())
    with torch.no_grad():
        features = {"actor": actor.net[0](x), "critic": qf.encoders[0](x)}
        q, (probs, log_pi) = qf(x)[0], actor(x)
    entropy, advantage = -(probs * log_pi).sum(-1), q - q.mean(-1, keepdim=True)
    greedy = np.bincount(probs.argmax(-1).numpy(), minlength=n_actions) / len(x)
    print(f"{path} ({label}), alpha {alpha:.4g}")
    for name, f in features.items():
        dead = (f.max(0).values <= 0).float().mean()
        print(f"  {name} features: std over frames {f.std(0).mean():.2e}, dead {dead:.2f}")
    print(
        f"  Q: mean {q.mean():.3f}, std over frames {q.std(0).mean():.2e}, "
        f"of Q - mean_a Q {advantage.std(0).mean():.2e} (its mean |.| {advantage.abs().mean():.2e})"
    )
    print(f"  policy: entropy mean {entropy.mean():.3f} min {entropy.min():.3f}, greedy actions {greedy.round(2)}")
