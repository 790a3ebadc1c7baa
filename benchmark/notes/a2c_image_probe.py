"""Probes of a trained a2c.py image policy, as quoted in minatar.md: it plays 16 envs with its sampled actions
(5-step rollouts, as the benchmark's case) and reports, over the rollouts after a 100-rollout warm-up,
- the median gradient norm of each loss term (policy, 0.5 x value, 0.01 x entropy) and of their sum, against the 0.5
  clip; the mean |return target| and the policy's entropy;
- the fraction of the encoder's conv channels and hidden units that never fire (output <= 0 on every observation).

    python benchmark/notes/a2c_image_probe.py MinAtar/Breakout-v1 RUN_DIR/runs/seed3/a2c.pt [more checkpoints]
"""

import pathlib
import sys

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
import a2c  # noqa: E402

env_id, checkpoints = sys.argv[1], sys.argv[2:]
torch.set_num_threads(1)
a2c.register_env_family(env_id)
fns = [a2c.make_env(env_id, i, False, "probe") for i in range(16)]
envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)

for path in checkpoints:
    agent = a2c.Agent(envs.single_observation_space, envs.single_action_space)
    agent.load_state_dict(torch.load(path, weights_only=False)["agent"])
    obs, _ = envs.reset(seed=0)
    torch.manual_seed(0)  # the sampled actions: the same rollouts on every call

    def grad_norm(loss, agent=agent):
        agent.zero_grad()
        loss.backward(retain_graph=True)
        return torch.sqrt(sum((p.grad**2).sum() for p in agent.parameters() if p.grad is not None)).item()

    norms, seen = [], []
    for i in range(200):
        rollout, obs, _ = a2c.collect_rollout(envs, agent, obs, 5, "cpu")
        if i < 100:
            continue
        keys = ("rewards", "values", "next_values", "terminated", "dones")
        adv, ret = a2c.compute_gae(*[rollout[k] for k in keys], 0.99, 0.95)
        seen.append(rollout["obs"].flatten(0, 1))
        logprob, entropy, value = agent.evaluate_actions(seen[-1], rollout["actions"].flatten(0, 1).long())
        total, pg, v, ent = a2c.a2c_loss(logprob, entropy, value, adv.flatten(), ret.flatten(), 0.5, 0.01)
        terms = [grad_norm(t) for t in (pg, 0.5 * v, -0.01 * ent, total)]
        norms.append([*terms, ret.abs().mean().item(), entropy.mean().item()])
    pg, vf, en, tot, ret, ent = np.median(norms, axis=0)
    clipped = np.mean([n[3] > 0.5 for n in norms])
    with torch.no_grad():
        x = torch.cat(seen)
        enc = agent.torso
        conv = enc.convs[:2](x.float().permute(0, 3, 1, 2) if enc.channels_last else x.float())
        dead_conv = (conv.amax(dim=(0, 2, 3)) <= 0).float().mean().item()
        dead_fc = (enc(x).amax(0) <= 0).float().mean().item()
    print(
        f"{path}: gradient norms policy {pg:.3f}, value {vf:.3f}, entropy {en:.4f}, total {tot:.3f} (> 0.5 in "
        f"{clipped:.0%}); |return| {ret:.2f}, entropy {ent:.3f}; never firing over {len(x)} observations: "
        f"conv channels {dead_conv:.0%}, hidden units {dead_fc:.0%}"
    )
