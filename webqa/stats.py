"""The two statistics an evaluation report needs: how sure an accuracy is, and whether two systems differ.

- `wilson(k, n)`: the 95% Wilson score interval of a proportion (Wilson 1927): it stays inside [0, 1]
  and keeps its coverage for small n and for accuracies near 0 or 1, where the normal interval fails.
- `sign_test(a_only, b_only)`: the exact two-sided sign test (McNemar's exact test) on paired results:
  of the questions where exactly one of two systems is right, is the split further from half than
  chance makes likely? Questions both get right or both get wrong say nothing about which is better.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal quantile for a two-sided 95% interval


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (low, high) for `successes` out of `trials`; (0, 1) for no trials."""
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in 0..{trials}, not {successes}")
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test(a_only: int, b_only: int) -> float:
    """Exact two-sided p-value that a split of `a_only` against `b_only` discordant pairs is chance.

    Under the null each discordant pair goes either way with probability 1/2; the p-value is the
    probability of a split at least as uneven, both tails, capped at 1 (1 when there are no pairs).
    """
    if a_only < 0 or b_only < 0:
        raise ValueError("counts of discordant pairs cannot be negative")
    n, low = a_only + b_only, min(a_only, b_only)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(low + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(first: dict[str, bool], second: dict[str, bool]) -> dict:
    """Paired comparison of two systems' correctness on the questions both answered (keyed by question):
    how many only the first got right, only the second, and the sign test's p-value."""
    shared = first.keys() & second.keys()
    first_only = sum(first[q] and not second[q] for q in shared)
    second_only = sum(second[q] and not first[q] for q in shared)
    return {"questions": len(shared), "first_only": first_only, "second_only": second_only,
            "p_value": sign_test(first_only, second_only)}
