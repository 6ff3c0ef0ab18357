"""Disclosure policy: which rules apply to a dataset, with which parameters (秘匿処理の方針).

One :class:`DisclosurePolicy` says how a table is protected; a :class:`PolicySet` holds the hub's default and
per-dataset overrides, read from the optional ``<home>/disclosure.toml`` over the hub's setting
``disclosure`` (``[disclosure]`` in hub.toml, renkei.hub.settings)::

    [default]
    method = "perturbation"        # perturbation | suppression | both
    threshold = 10

    [default.perturbation]
    max_noise = 5                  # D
    variance = 3.0                 # V
    small_cells = 5                # js: published positive counts are never below this

    [datasets.kaigo]               # only the keys given here change; the rest comes from [default]
    method = "both"
    threshold = 20

A table that reads several datasets gets the strictest combination of their policies
(:meth:`PolicySet.for_datasets`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from renkei.errors import Location, RenkeiError

POLICY_FILE = "disclosure.toml"

Method = Literal["perturbation", "suppression", "both"]
ZeroRule = Literal["show", "suppress"]


class DisclosurePolicyError(RenkeiError):
    """``disclosure.toml`` cannot be read or names an invalid setting."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Perturbation(_Frozen):
    """Parameters of the cell key method; they define the published perturbation table (ptable)."""

    max_noise: int = Field(default=5, ge=1, le=20)  # D: noise is an integer in [-D, D]
    variance: float = Field(default=3.0, gt=0, le=400)  # V: the noise variance of large counts
    small_cells: int = Field(default=5, ge=1, le=20)  # js: a published count is 0 or at least js
    magnitude_pct: float = Field(
        default=10.0, gt=0, lt=100
    )  # m: sums move by at most m% of their top contributions

    @model_validator(mode="after")
    def _feasible(self) -> Perturbation:
        if self.small_cells > self.max_noise:
            raise ValueError("small_cells must be at most max_noise (a count of js must be able to reach 0)")
        if self.variance >= self.max_noise**2:
            raise ValueError(
                "variance must be below max_noise**2 (the largest variance noise in [-D, D] has)"
            )
        return self

    @property
    def label(self) -> str:
        """The ptable's name, as published: ``D5-V3-js5``."""
        return f"D{self.max_noise}-V{self.variance:g}-js{self.small_cells}"


class DisclosurePolicy(_Frozen):
    """The rules for one table. ``method`` picks suppression, perturbation or both; magnitude tables (sum,
    mean, median) always get the threshold, dominance and p% rules, whatever the method."""

    method: Method = "perturbation"
    threshold: int = Field(default=10, ge=1, le=10_000)  # counts 0 < n < threshold are primary suppressed
    dominance_n: int = Field(default=2, ge=1, le=10)  # (n, k) rule: the n largest contributions ...
    dominance_k: float = Field(default=85.0, gt=0, le=100)  # ... reach k% of the cell total
    p_percent: float = Field(default=10.0, ge=0, le=100)  # p% rule: others estimate the largest within p%
    zeros: ZeroRule = "show"  # empty cells when suppressing: shown as 0, or suppressed (ACRO's default)
    perturbation: Perturbation = Perturbation()

    @property
    def suppresses(self) -> bool:
        return self.method in {"suppression", "both"}

    @property
    def perturbs(self) -> bool:
        return self.method in {"perturbation", "both"}

    def stricter(self, other: DisclosurePolicy) -> DisclosurePolicy:
        """A policy at least as strict as both: every rule of either, each parameter at its strict end."""
        suppress = self.suppresses or other.suppresses
        perturb = self.perturbs or other.perturbs
        method: Method = "both" if suppress and perturb else "suppression" if suppress else "perturbation"
        a, b = self.perturbation, other.perturbation
        return DisclosurePolicy(
            method=method,
            threshold=max(self.threshold, other.threshold),
            dominance_n=max(self.dominance_n, other.dominance_n),  # more contributors: larger share
            dominance_k=min(self.dominance_k, other.dominance_k),
            p_percent=max(self.p_percent, other.p_percent),
            zeros="suppress" if "suppress" in {self.zeros, other.zeros} else "show",
            perturbation=Perturbation(
                max_noise=max(a.max_noise, b.max_noise),
                variance=max(a.variance, b.variance),
                small_cells=max(a.small_cells, b.small_cells),
                magnitude_pct=max(a.magnitude_pct, b.magnitude_pct),
            ),
        )


class PolicySet(_Frozen):
    """The hub's default policy and per-dataset overrides."""

    default: DisclosurePolicy = DisclosurePolicy()
    datasets: dict[str, DisclosurePolicy] = Field(default_factory=dict)

    def for_datasets(self, names: Iterable[str]) -> DisclosurePolicy:
        """The strictest combination of the policies of ``names`` (the default for a dataset without one)."""
        policies = [self.datasets.get(name, self.default) for name in sorted(set(names))]
        if not policies:
            return self.default
        combined = policies[0]
        for policy in policies[1:]:
            combined = combined.stricter(policy)
        return combined


def load_policy(home: Path, default: DisclosurePolicy | None = None) -> PolicySet:
    """The policies of ``<home>/disclosure.toml`` over ``default`` (the hub's setting ``disclosure``; None:
    the built-in defaults): its ``[default]`` refines ``default``, its ``[datasets.x]`` that in turn."""
    default = default or DisclosurePolicy()
    path = home / POLICY_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return PolicySet(default=default)
    except UnicodeDecodeError:
        raise DisclosurePolicyError(
            "秘匿処理の設定ファイルは UTF-8 で保存してください",
            "disclosure.toml is not UTF-8",
            Location(path),
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise DisclosurePolicyError(
            "秘匿処理の設定ファイルの TOML 書式に誤りがあります", f"invalid TOML: {exc}", Location(path)
        ) from None
    return _validate(data, path, default.model_dump())


def _validate(data: Mapping[str, Any], path: Path, base: Mapping[str, Any]) -> PolicySet:
    unknown = sorted(set(data) - {"default", "datasets"})
    if unknown:
        raise _key_error(path, unknown[0], "不明なキーです", "unknown key (expected default or datasets)")
    default_raw = _merge(base, _table(data.get("default", {}), path, "default"))
    default = _policy(default_raw, path, "default")
    overrides: dict[str, DisclosurePolicy] = {}
    for name, raw in _table(data.get("datasets", {}), path, "datasets").items():
        merged = _merge(default_raw, _table(raw, path, f"datasets.{name}"))
        overrides[name] = _policy(merged, path, f"datasets.{name}")
    return PolicySet(default=default, datasets=overrides)


def _policy(raw: Mapping[str, Any], path: Path, prefix: str) -> DisclosurePolicy:
    try:
        return DisclosurePolicy.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join([prefix, *(str(p) for p in err["loc"])])
        raise _key_error(path, key, _ja_reason(err["type"]), err["msg"]) from None


def _table(value: Any, path: Path, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _key_error(path, key, "表（[...]）である必要があります", "must be a table")
    return value


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _ja_reason(kind: str) -> str:
    return {
        "extra_forbidden": "不明なキーです",
        "literal_error": "使えない値です",
        "greater_than_equal": "値が小さすぎます",
        "greater_than": "値が小さすぎます",
        "less_than_equal": "値が大きすぎます",
        "less_than": "値が大きすぎます",
        "int_type": "整数で指定してください",
        "int_parsing": "整数で指定してください",
        "int_from_float": "整数で指定してください",
        "float_type": "数値で指定してください",
        "float_parsing": "数値で指定してください",
        "value_error": "値の組み合わせが正しくありません",
    }.get(kind, "値が正しくありません")


def _key_error(path: Path, key: str, ja: str, en: str) -> DisclosurePolicyError:
    return DisclosurePolicyError(
        f"秘匿処理の設定の誤り: {ja}", f"invalid disclosure policy: {en}", Location(path, key=key)
    )
