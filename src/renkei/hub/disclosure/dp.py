"""Differential privacy for published counts (差分プライバシー), through the OpenDP library.

The noise and its accuracy come from OpenDP and nothing else: :func:`mechanism` asks the library for the
smallest discrete Laplace (geometric) scale whose privacy map gives at most ``epsilon`` for the table's L1
sensitivity (``binary_search_param`` over ``make_laplace`` on a vector of integer counts), and
:func:`Mechanism.accuracy` is the library's ``discrete_laplacian_scale_to_accuracy``: with probability
``confidence`` a cell's noise is smaller than that figure. A count of people is an integer, so the noise is
integer too (pure ε-DP, δ = 0).

``opendp`` is imported where it is used: a command that never publishes never loads it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

LIBRARY = "opendp"
MECHANISM = "discrete_laplace"


@functools.cache
def library_version() -> str:
    return version(LIBRARY)


def _dp() -> Any:
    import opendp.prelude as dp  # noqa: PLC0415 (only when publishing)

    dp.enable_features("contrib")  # make_laplace on integers is a contributed (proven, unvetted) component
    return dp


def _make(dp: Any, scale: float) -> Any:
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    return dp.m.make_laplace(*space, scale=scale)


@dataclass(frozen=True, slots=True)
class Mechanism:
    """The discrete Laplace mechanism on a vector of counts, as OpenDP builds it for ``epsilon``."""

    epsilon: float
    sensitivity: int  # L1: how much one person's records can change the whole vector of counts
    scale: float
    privacy_loss: float  # the library's privacy map at ``sensitivity`` (≤ epsilon)

    delta: float = 0.0

    def accuracy(self, confidence: float) -> float:
        """The library's figure: |noise| < accuracy with probability ``confidence`` (per cell)."""
        return float(_dp().discrete_laplacian_scale_to_accuracy(self.scale, round(1.0 - confidence, 12)))

    def release(self, counts: Sequence[int]) -> list[int]:
        """One draw of the noisy counts (the library's own sampler). Spend the budget before calling this."""
        if not counts:
            return []
        measurement = _make(_dp(), self.scale)
        return [int(v) for v in measurement([int(c) for c in counts])]

    def record(self, confidence: float) -> dict[str, Any]:
        return {
            "mechanism": MECHANISM,
            "library": LIBRARY,
            "library_version": library_version(),
            "constructor": "opendp.measurements.make_laplace(vector_domain(atom_domain(T=i64)), l1_distance(T=i64))",
            "epsilon": self.epsilon,
            "delta": self.delta,
            "privacy_loss": self.privacy_loss,
            "l1_sensitivity": self.sensitivity,
            "scale": self.scale,
            "confidence": confidence,
            "error": self.accuracy(confidence),
            "accuracy_function": "opendp.accuracy.discrete_laplacian_scale_to_accuracy",
        }


def mechanism(epsilon: float, sensitivity: int) -> Mechanism:
    """The smallest scale the library proves ``epsilon``-DP for a change of ``sensitivity`` in L1."""
    if not epsilon > 0 or sensitivity < 1:
        raise ValueError("epsilon must be positive and sensitivity at least 1")
    dp = _dp()
    scale = float(dp.binary_search_param(lambda s: _make(dp, s), d_in=sensitivity, d_out=epsilon))
    loss = float(_make(dp, scale).map(sensitivity))
    if loss > epsilon:  # binary_search_param promises this; check rather than trust
        raise RuntimeError(f"OpenDP's map gives {loss} > {epsilon}")
    return Mechanism(epsilon, sensitivity, scale, loss)
