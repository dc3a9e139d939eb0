"""Segments explained as rules of a shallow tree."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crmlens.errors import InputError
from crmlens.segment.explain import explain_segments

LABELS = {"recency_days": ("Recency", "days"),
          "frequency": {"label": {"en": "Orders", "zh": "订单数"}},
          "monetary": ("Spend", "currency")}


def _separated(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three segments told apart by recency and orders; spend and channel are noise."""
    rng = np.random.default_rng(seed)
    segment = rng.integers(0, 3, n)
    recency = np.where(segment == 0, rng.integers(1, 31, n), rng.integers(60, 365, n))
    orders = np.where(segment == 2, rng.integers(6, 20, n), rng.integers(1, 4, n))
    recency = np.where(segment == 2, rng.integers(1, 365, n), recency)
    X = pd.DataFrame({"recency_days": recency, "frequency": orders,
                      "monetary": orders * rng.uniform(10, 60, n),
                      "channel": rng.choice(["web", "store"], n)})
    return X, segment


@pytest.mark.parametrize("method", ["cart", "c45", "id3"])
def test_well_separated_segments_get_precise_rules(method):
    X, segment = _separated(3000)
    result = explain_segments(X, segment, method=method, feature_labels=LABELS)
    assert result.fidelity >= 0.95
    assert [s.segment for s in result.segments] == [0, 1, 2]
    for seg in result.segments:
        assert 1 <= len(seg.rules) <= 3
        assert seg.rules[0].precision >= 0.9
        assert seg.rules[0].coverage >= 0.9
        assert seg.rules[0].text.endswith("precision 100 %") or "precision 9" in seg.rules[0].text
    best = result.segments[2].rules[0]
    assert best.text.startswith("Orders ≥ ")
    assert "Segment 2, covers" in best.text


def test_readable_text_in_both_languages():
    X, segment = _separated(2000)
    en = explain_segments(X, segment, feature_labels=LABELS)
    zh = explain_segments(X, segment, feature_labels=LABELS, lang="zh")
    # thresholds are midpoints (4.5 between 3 and 6 orders, 45 between 30 and 60 days) and
    # integer features read without decimals: "≤ 4.5" is "≤ 4"
    assert en.segments[0].rules[0].text == \
        "Orders ≤ 4 and Recency ≤ 45 days → Segment 0, covers 100 %, precision 100 %"
    assert zh.segments[0].rules[0].text == \
        "订单数 ≤ 4 且 Recency ≤ 45 天 → 细分 0，覆盖 100%，精确率 100%"
    assert "100 %" in en.to_text().splitlines()[0]
    assert zh.to_text().splitlines()[0].startswith("该决策树复现了")


def test_metrics_are_measured_on_all_rows_when_the_tree_sees_a_sample():
    X, segment = _separated(6000, seed=1)
    result = explain_segments(X, segment, sample_size=1000)
    assert result.n_rows == 6000 and 1000 <= result.n_fit < 1200
    assert sum(r.support for r in result.rules) == 6000  # the leaves partition all rows
    for seg in result.segments:
        for explained in seg.rules:
            rule = explained.rule
            mask = rule.matches(X)
            assert explained.support == mask.sum()
            assert explained.precision == pytest.approx(np.mean(segment[mask] == rule.prediction))
            assert explained.coverage == pytest.approx(
                np.sum(mask & (segment == rule.prediction)) / np.sum(segment == rule.prediction))
    assert result.fidelity == pytest.approx(np.mean(result.tree.predict(
        _one_hot_like(X)) == segment))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["sampled"] is True and len(data["segments"]) == 3


def _one_hot_like(X: pd.DataFrame) -> pd.DataFrame:
    out = X.drop(columns="channel").astype(float)
    for value in pd.unique(X["channel"]):
        out[f"channel={value}"] = (X["channel"] == value).astype(float)
    return out


def test_categorical_features_read_as_categories_with_cart():
    rng = np.random.default_rng(2)
    channel = rng.choice(["web", "store", "app", "phone"], 2000)
    X = pd.DataFrame({"channel": channel, "orders": rng.integers(1, 10, 2000)})
    segment = np.where(np.isin(channel, ["web", "app"]), "online", "offline")
    result = explain_segments(X, segment, feature_labels={"channel": "Channel"})
    texts = {s.segment: s.rules[0].text for s in result.segments}
    assert result.fidelity == 1.0
    assert all(s.rules[0].precision == 1.0 for s in result.segments)
    # one-hot tests are mapped back to the column: "= value" or "is one of ..."
    assert "Channel" in texts["online"] and "channel=" not in texts["online"]
    assert texts["online"].startswith("Channel ")
    assert any(" is one of " in s.rules[0].text or " = " in s.rules[0].text
               for s in result.segments)


def test_money_features_show_two_decimals_and_names_can_be_given():
    rng = np.random.default_rng(3)
    spend = rng.uniform(0, 1000, 1000).round(2)
    segment = np.where(spend > 500, 1, 0)
    result = explain_segments(pd.DataFrame({"monetary": spend}), segment,
                              feature_labels=LABELS, segment_names={1: "Big spenders"})
    text = result.segments[1].rules[0].text
    assert text.startswith("Spend > 5") and "." in text.split(" → ")[0]
    assert len(text.split(" → ")[0].split(".")[-1]) == 2
    assert "→ Big spenders," in text


def test_bad_input_raises_input_errors():
    X, segment = _separated(100)
    with pytest.raises(InputError) as err:
        explain_segments(X, segment[:-1])
    assert err.value.key == "error.trees.labels_length"
    with pytest.raises(InputError) as err:
        explain_segments(X, segment, method="chaid")
    assert err.value.key == "error.trees.method"
    with pytest.raises(InputError):
        explain_segments(pd.DataFrame({"d": pd.to_datetime(["2024-01-01"] * 100)}), segment)


def test_tiny_segment_without_a_leaf_is_reported_and_callable_labels_work():
    X, segment = _separated(2000, seed=4)
    segment = segment.copy()
    segment[:5] = 9  # five rows: below the smallest leaf

    class Definition:  # the shape of a feature-catalogue entry
        unit = "days"

        def label(self, lang):
            return {"en": "Recency", "zh": "最近购买间隔"}[lang]

    result = explain_segments(X, segment, lang="zh",
                              feature_labels=lambda name: Definition()
                              if name == "recency_days" else None)
    tiny = next(s for s in result.segments if s.segment == 9)
    assert tiny.rules == () and tiny.size == 5
    assert "细分 9：决策树中没有预测该细分的叶节点。" in result.to_text()
    assert any("最近购买间隔" in r.text for s in result.segments for r in s.rules)
