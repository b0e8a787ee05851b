"""The best expected return on MiniGrid Memory: the reference ("max") of its normalised score.

MiniGrid's Memory task (Chevalier-Boisvert et al., https://github.com/Farama-Foundation/Minigrid,
minigrid/envs/memory.py; envpool's "MiniGrid-MemoryS<size>[Random]-v0") pays
1 - 0.9 * steps / max_steps (max_steps = 5 size^2) for reaching the object that matches the
one in the start room, 0 for the other. Its layout, on a size x size grid with y = size // 2
the middle row: a start room x = 1..3 whose cue object sits at (1, y - 1), a hallway along
row y ending at x = h (h = size - 3, or uniform in 4 .. size - 3 for the "Random" variants),
and the two candidate objects at x = h + 1, above and below. The agent starts at (x0, y) with
x0 uniform in 1 .. h, facing right, with a 7 x 7 egocentric view that starts at its own cell.

A perfect agent must see the cue before choosing, so with n(x0) actions it scores
1 - 0.9 n / max_steps, where n = (h + 1 - x0) forward moves to the junction + 2 (turn, step
into the goal) + the look back:
  x0 = 1: 0 (the cue is beside the agent, in view);
  x0 = 2 .. 4: 2 (turn to face up: the cue is 3 or fewer cells to the side; turn back);
  x0 = 5 .. 7: 4 (turn around: the cue is 6 or fewer cells ahead; turn back);
  x0 >= 8: 4 + 2 (x0 - 7) (also walk back until the cue is 6 cells ahead, and return).
The expectation over x0 (and h) is the task's maximum expected return.
"""

import numpy as np


def look_back_actions(x0: int) -> int:
    """Extra actions a perfect agent starting at column x0 spends to see the cue."""
    if x0 == 1:
        return 0
    if x0 <= 4:
        return 2
    if x0 <= 7:
        return 4
    return 4 + 2 * (x0 - 7)


def optimal_return(size: int, random_length: bool = False) -> float:
    """The expected return of a perfect agent on MiniGrid-MemoryS<size>[Random].

    Args:
      size: the grid size (7, 9, 11, 13, 17, ...), odd and >= 7.
      random_length: the "Random" variants (hallway end uniform in 4 .. size - 3).

    Returns:
      E[1 - 0.9 n / (5 size^2)] over the start column (and the hallway length).
    """
    if size < 7 or size % 2 == 0:
        raise ValueError(f"MiniGrid Memory needs an odd size >= 7, got {size}")
    max_steps = 5 * size**2
    ends = range(4, size - 2) if random_length else (size - 3,)
    returns = [
        1.0 - 0.9 * ((h + 1 - x0) + 2 + look_back_actions(x0)) / max_steps
        for h in ends
        for x0 in range(1, h + 1)
    ]
    # Every (h, x0) pair is weighted by P(h) * P(x0 | h) = 1/len(ends) * 1/h.
    weights = [1.0 / h for h in ends for _ in range(1, h + 1)]
    return float(np.average(returns, weights=weights))
