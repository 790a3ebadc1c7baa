"""Write a copy of sac_discrete.py with CleanRL sac_atari.py's algorithmic differences, each switched by an environment
variable (1: CleanRL's way, the default; 0: sac_discrete.py's), for the Breakout measurements in atari.md:

- FRESH: the actor and alpha losses use the critics after their step (a second optimizer step), not the pass before it;
- MEANS: the actor and alpha losses are means over the actions, not sums (with Adam: a |A| times larger eps for them);
- INIT: kaiming_normal_ weights and zero biases on every layer of the actor and the critics.

The entropy term in the critic target and Adam's eps are flags already (`--backup-entropy --adam-eps 1e-4`). The copy
prints the losses every 2000 updates (`LOSSES step {...}`).

    python benchmark/notes/sac_discrete_cleanrl_variant.py /tmp/sacd_var.py
    FRESH=1 MEANS=1 INIT=1 python /tmp/sacd_var.py --env-id BreakoutNoFrameskip-v4 <the case's flags> \
        --backup-entropy --adam-eps 1e-4 --seed 1
"""

import pathlib
import sys
import textwrap

SOURCE = pathlib.Path(__file__).resolve().parents[2] / "sac_discrete.py"

ONE_PASS = """    q = qf(obs)  # the actor loss reuses this pass, from before the critic step (the paper re-evaluates)
    losses = (
        critic_loss(q, actions, rewards, terminations, next_v, args.gamma),
        actor_loss(probs, log_pi, q, alpha),
        alpha_loss(log_alpha, probs, log_pi, target_entropy),
    )
    optimizer.zero_grad(set_to_none=True)
    sum(losses).backward()  # every cross term is detached: one backward pass equals three
    optimizer.step()
"""
FRESH_STEPS = """        closs = critic_loss(q, actions, rewards, terminations, next_v, args.gamma)
        optimizer.zero_grad(set_to_none=True)
        closs.backward()
        optimizer.step()
        with torch.no_grad():
            q = qf(obs)
        losses = (closs, actor_loss(probs, log_pi, q, alpha), alpha_loss(log_alpha, probs, log_pi, target_entropy))
        optimizer.zero_grad(set_to_none=True)
        (losses[1] + losses[2]).backward()
        optimizer.step()
"""
# sac_discrete.py's one-pass update stays as it is, one level deeper, under `if not FRESH:`; the else branch takes the
# critics' step first (Adam skips the groups without gradients), then the actor's on the new critics
first, rest = ONE_PASS.split("\n", 1)
TWO_STEPS = "    q = qf(obs)\n    if not FRESH:\n" + textwrap.indent(rest, "    ") + "    else:\n" + FRESH_STEPS
INIT_CODE = """    for module in (actor, qf) if INIT else ():  # CleanRL's initialisation
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, EnsembleLinear):  # weight [n, in, out]: each member's [out, in] view
                for k in range(m.weight.shape[0]):
                    nn.init.kaiming_normal_(m.weight.data[k].T)
                nn.init.zeros_(m.bias)
"""
SWITCHES = """SWITCHES = {k: os.environ.get(k, "1") == "1" for k in ("FRESH", "MEANS", "INIT")}
FRESH, MEANS, INIT = SWITCHES.values()
print("variant", SWITCHES, flush=True)
"""
TARGET_COPY = "    qf_target.load_state_dict(qf.state_dict())\n"
PRINT = """        if self.updates % 2000 == 0:
            print("LOSSES", self.step, {k.split("/")[-1]: round(v, 4) for k, v in metrics.items()}, flush=True)
"""

EDITS = [
    (ONE_PASS, TWO_STEPS),
    ("return (probs * (alpha * log_pi - q.min(0).values.detach())).sum(-1).mean()",
     "return (probs * (alpha * log_pi - q.min(0).values.detach())).sum(-1).mean() / (probs.shape[-1] if MEANS else 1)"),
    ("return (log_alpha.exp() * (entropy - target_entropy)).mean()",
     "return (log_alpha.exp() * (entropy - target_entropy)).mean() / (probs.shape[-1] if MEANS else 1)"),
    (TARGET_COPY, INIT_CODE + TARGET_COPY),
    ('SCRIPT = "sac_discrete.py"\n', 'SCRIPT = "sac_discrete.py"\n' + SWITCHES),
    ("        if self.wandb:\n            sps = ", PRINT + "        if self.wandb:\n            sps = "),
]  # fmt: skip

source = SOURCE.read_text()
for old, new in EDITS:
    if source.count(old) != 1:
        raise SystemExit(f"sac_discrete.py has changed: this edit no longer applies: {old[:60]!r}")
    source = source.replace(old, new)
pathlib.Path(sys.argv[1]).write_text(source)
