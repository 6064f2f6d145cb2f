"""Penalised logistic regression by damped Newton steps, shared by temperature scaling and combiners.

Written with numpy: a logistic regression on a handful of features does not justify scikit-learn.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_logistic", "sigmoid"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, safe for large ``|z|``."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def fit_logistic(features: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 100) -> np.ndarray:
    """Coefficients minimising the log-loss of ``sigmoid(features @ theta)`` plus ``l2/2 * |theta|^2``.

    The last column of ``features`` is taken to be the constant (bias) column and is not penalised.
    Each Newton step is halved until the loss decreases, so the fit converges on (nearly)
    separable data too, where plain Newton steps diverge.
    """
    theta = np.zeros(features.shape[1])
    penalty = l2 * np.eye(features.shape[1])
    penalty[-1, -1] = 0.0

    def loss(t: np.ndarray) -> float:
        z = features @ t
        return float((np.logaddexp(0.0, z) - y * z).sum() + 0.5 * t @ penalty @ t)

    current = loss(theta)
    for _ in range(iterations):
        p = sigmoid(features @ theta)
        gradient = features.T @ (p - y) + penalty @ theta
        hessian = (features * (p * (1 - p))[:, None]).T @ features + penalty + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6 and loss(theta - scale * step) > current:
            scale /= 2
        if scale <= 1e-6:
            break
        theta = theta - scale * step
        previous, current = current, loss(theta)
        if previous - current < 1e-10:
            break
    return theta
