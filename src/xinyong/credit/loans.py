"""What the lender's two sides (adults, companies) share: who applies on a day."""

from __future__ import annotations

import numpy as np


def applicants(rng: np.random.Generator, rate: float, loan_app: np.ndarray) -> np.ndarray:
    """The rows that apply today: each row without an active loan (`loan_app` < 0) with
    probability `rate`, as a binomial count of rows drawn without replacement, those with an
    active loan dropped (cost grows with applications, not rows). Ascending."""
    n = len(loan_app)
    k = int(rng.binomial(n, rate))
    if not k:
        return np.empty(0, dtype=np.int64)
    drawn = np.sort(rng.choice(n, size=k, replace=False))
    return drawn[loan_app[drawn] < 0]
