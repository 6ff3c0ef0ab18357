"""Disclosure policies: defaults, strictest combination across datasets, disclosure.toml with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from renkei.hub.disclosure.policy import (
    POLICY_FILE,
    DisclosurePolicy,
    DisclosurePolicyError,
    Perturbation,
    PolicySet,
    load_policy,
)


def test_defaults_are_the_documented_ones() -> None:
    policy = DisclosurePolicy()
    assert (policy.method, policy.threshold, policy.dominance_n, policy.dominance_k, policy.p_percent) == (
        "perturbation",
        10,
        2,
        85.0,
        10.0,
    )
    assert policy.perturbs and not policy.suppresses
    assert policy.perturbation.label == "D5-V3-js5"


def test_a_table_over_several_datasets_gets_the_strictest_of_each_parameter() -> None:
    policies = PolicySet(
        datasets={
            "kaigo": DisclosurePolicy(method="suppression", threshold=20, dominance_k=80, zeros="suppress"),
            "zei": DisclosurePolicy(dominance_n=3, p_percent=15, perturbation=Perturbation(max_noise=7)),
        }
    )
    combined = policies.for_datasets(["zei", "kaigo", "juki"])
    assert combined.method == "both"
    assert (combined.threshold, combined.dominance_n, combined.dominance_k, combined.p_percent) == (
        20,
        3,
        80,
        15,
    )
    assert combined.zeros == "suppress" and combined.perturbation.max_noise == 7
    assert policies.for_datasets(["juki"]) == policies.default
    assert policies.for_datasets([]) == policies.default


def test_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_policy(tmp_path) == PolicySet()


def test_dataset_overrides_change_only_their_keys(tmp_path: Path) -> None:
    (tmp_path / POLICY_FILE).write_text(
        "[default]\nthreshold = 15\n[default.perturbation]\nmax_noise = 6\n"
        '[datasets.kaigo]\nmethod = "both"\n[datasets.kaigo.perturbation]\nvariance = 4.0\n',
        encoding="utf-8",
    )
    policies = load_policy(tmp_path)
    assert policies.default.threshold == 15 and policies.default.perturbation.max_noise == 6
    kaigo = policies.datasets["kaigo"]
    assert kaigo.method == "both" and kaigo.threshold == 15
    assert (kaigo.perturbation.max_noise, kaigo.perturbation.variance) == (6, 4.0)


@pytest.mark.parametrize(
    ("text", "key", "ja"),
    [
        ("[default]\nthreshhold = 5\n", "default.threshhold", "不明なキー"),
        ('[datasets.kaigo]\nmethod = "rounding"\n', "datasets.kaigo.method", "使えない値"),
        ("[default]\nthreshold = 0\n", "default.threshold", "小さすぎ"),
        ("[default.perturbation]\nmax_noise = 2\nvariance = 9.0\n", "default.perturbation", "組み合わせ"),
        ("[policy]\nthreshold = 5\n", "policy", "不明なキー"),
        ("datasets = 3\n", "datasets", "表"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, key: str, ja: str) -> None:
    (tmp_path / POLICY_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(DisclosurePolicyError) as caught:
        load_policy(tmp_path)
    assert caught.value.where is not None and caught.value.where.key == key
    assert ja in caught.value.ja and "invalid disclosure policy" in caught.value.en


def test_broken_toml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / POLICY_FILE).write_text("[default\n", encoding="utf-8")
    with pytest.raises(DisclosurePolicyError, match="TOML"):
        load_policy(tmp_path)


def test_policies_are_frozen_and_closed() -> None:
    with pytest.raises(ValidationError):
        DisclosurePolicy(threshold=10, rounding=5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Perturbation(max_noise=3, small_cells=4)
