"""Probe a T-maze run's checkpoints: what the agent remembers of the cue, and how it reads it.

For each checkpoint of a run on "TMaze-L<N>" (GTrXL cores), plays one episode per cue
(left, right) greedily in one unroll and reports, per checkpoint:
  - p_correct: the probability of the correct turn at the junction (mean over both cues);
  - attn_cue[l]: layer l's attention weight from the junction onto the cue step (mean over heads);
  - cue_sep[l]: |x_l(left) - x_l(right)| / |x_l| at the cue step, x_l layer l's input (what the
    memory stores), so 0 means the memory no longer tells the cues apart;
  - junction_logit_gap: |logit(correct) - logit(wrong)| at the junction;
  - norm/<module>: parameter norms; adam_step: mean |update| / lr of Adam's next step (1.0 means
    every parameter moves by a full learning rate per update whatever its gradient).

    python experiments/diagnostics/tmaze_probe.py runs/tmaze_long [--out probe.jsonl]
"""

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from gtrxl_jax.agent import AgentInput
from gtrxl_jax.config import TrainConfig, from_dict
from gtrxl_jax.envs import make_env
from gtrxl_jax.train.builder import make_agent


def episode_inputs(corridor_length: int, actions: np.ndarray) -> AgentInput:
    """The inputs [L+2, 2] of one episode per cue (row 0 left, row 1 right) up to the junction."""
    T = corridor_length + 2
    obs = np.zeros((T, 2, 4), np.float32)
    obs[0, 0, 0] = obs[0, 1, 1] = 1.0
    obs[1:-1, :, 2] = 1.0
    obs[-1, :, 3] = 1.0
    first = np.zeros((T, 2), bool)
    first[0] = True
    prev_action = np.concatenate([np.zeros((1, 2), np.int32), actions[:-1]], 0)
    return AgentInput(observation=jnp.asarray(obs), first=jnp.asarray(first),
                      prev_action=jnp.asarray(prev_action),
                      prev_reward=jnp.zeros((T, 2), jnp.float32))


def probe(agent, params, corridor_length: int) -> dict:
    """The probe's figures for one parameter set (see the module docstring)."""
    T = corridor_length + 2
    actions = np.zeros((T, 2), np.int32)
    for _ in range(2):  # greedy actions feed back as prev_action: settle them
        inputs = episode_inputs(corridor_length, actions)
        outputs, _ = agent.unroll(params, inputs, agent.initial_state(2))
        actions = np.asarray(outputs.logits.argmax(-1), np.int32)
    x = agent.embedding.apply(params["embedding"], inputs)
    _, variables = agent.core.apply(params["core"], x, inputs.first, agent.initial_state(2),
                                    mutable="intermediates", capture_intermediates=True)
    inter = variables["intermediates"]
    M = agent.core_config.memory_len
    L = agent.core_config.num_layers
    logits = np.asarray(outputs.logits[-1])  # [2, A] at the junction
    probs = jax.nn.softmax(logits)
    p_correct = float((probs[0, 0] + probs[1, 1]) / 2)
    record = {"p_correct": p_correct,
              "greedy_success": (int(logits[0].argmax() == 0) + int(logits[1].argmax() == 1)) / 2,
              "junction_logit_gap": float(np.mean(np.abs(logits[:, 0] - logits[:, 1])))}
    # each layer's input at the cue step (what its memory stores): the embedding, then the
    # blocks' outputs
    stream = [np.asarray(x[0])]
    for l in range(L):
        block = inter[f"block_{l}"]
        weights = np.asarray(block["attention"]["weights"][0])  # [B, H, T, M + T]
        record[f"attn_cue/{l}"] = float(weights[:, :, T - 1, M + 0].mean())
        stream.append(np.asarray(block["__call__"][0][0][:, 0]))  # [B, D]
        # how much each sublayer's output at the junction still depends on the cue
        for name, out in (("attention", block["attention"]["__call__"][0][0]),
                          ("gate_attention", block.get("gate_attention", {}).get("__call__")),
                          ("block", block["__call__"][0][0])):
            if out is None:
                continue
            out = np.asarray(out[0] if name == "gate_attention" else out)[:, T - 1]  # [B, D]
            record[f"junction_sep/{l}/{name}"] = _separation(out)
    for l, s in enumerate(stream[:L]):
        record[f"cue_sep/{l}"] = _separation(s)
    return record


def _separation(rows: np.ndarray) -> float:
    """|rows[0] - rows[1]| relative to the rows' RMS norm: how far the two cues' vectors are."""
    return float(np.linalg.norm(rows[0] - rows[1]) /
                 max(np.linalg.norm(rows).item() / np.sqrt(2), 1e-9))


def norms(tree) -> dict:
    """Parameter norms of the embedding, each block and the head."""
    out = {"norm/embedding": float(optax.global_norm(tree["embedding"])),
           "norm/head": float(optax.global_norm(tree["head"]))}
    for name, sub in tree["core"]["params"].items():
        out[f"norm/{name}"] = float(optax.global_norm(sub))
    return out


def adam_step(opt_state, lr_eps: float = 1e-8) -> float:
    """Mean |m_hat / (sqrt(v_hat) + eps)| over all parameters: Adam's step in units of lr."""
    adam = opt_state[-1][0]  # clip_by_global_norm, then (adam's state, the schedule's count)
    count = float(np.asarray(adam["count"]))
    b1, b2 = 0.9, 0.999
    mu = jax.tree.leaves(adam["mu"])
    nu = jax.tree.leaves(adam["nu"])
    total, n = 0.0, 0
    for m, v in zip(mu, nu, strict=True):
        m_hat = np.asarray(m) / (1 - b1 ** count)
        v_hat = np.asarray(v) / (1 - b2 ** count)
        total += float(np.abs(m_hat / (np.sqrt(v_hat) + lr_eps)).sum())
        n += m_hat.size
    return total / n


def main() -> None:
    """Probe every checkpoint of a run folder; print and optionally save one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--out")
    args = parser.parse_args()
    run = Path(args.run_dir)
    config = from_dict(TrainConfig, json.loads((run / "config.json").read_text()))
    corridor_length = int(config.env.task.split("-L")[1])
    env = make_env(config.env.task, 1)
    agent = make_agent(config, env.spec, 1)
    steps_per_update = config.learner.trajectory_len * config.learner.batch_size
    checkpointer = ocp.PyTreeCheckpointer()
    lines = []
    for folder in sorted((run / "checkpoints").iterdir(), key=lambda p: int(p.name)):
        state = checkpointer.restore(folder / "state")
        record = {"update": int(folder.name), "env_steps": int(folder.name) * steps_per_update}
        record.update(probe(agent, state["params"], corridor_length))
        record.update(norms(state["params"]))
        record["adam_step"] = adam_step(state["opt_state"])
        lines.append(record)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                          for k, v in record.items()}), flush=True)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in lines))


if __name__ == "__main__":
    main()
