"""RFM scoring, the segment map and the one-call segmentation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crmlens.errors import InputError
from crmlens.segment.jenks import jenks_breaks
from crmlens.segment.rfm import (
    RFMScorer, assign_segments, fm_score, load_segment_map, rfm_cell, rfm_segment,
    segment_name, segment_summary,
)
from crmlens.segment.rfm import _quantile_edges, _spread_scores

BUILTIN = load_segment_map()


def _features(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    freq = np.where(rng.random(n) < 0.6, 1, rng.integers(2, 20, n))  # 60 % one-time buyers
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "recency_days": rng.integers(0, 400, n),
        "frequency": freq,
        "monetary": np.round(rng.lognormal(4, 1, n) - 8, 2),  # a few at or below zero
    })


def _scores(r, f, m):
    return pd.DataFrame({"r_score": [r], "f_score": [f], "m_score": [m]})


# ----------------------------------------------------------------------------- scoring

def test_quantile_scores_on_distinct_values_are_quintiles():
    X = pd.DataFrame({"recency_days": np.arange(100), "frequency": np.arange(1, 101),
                      "monetary": np.arange(1.0, 101.0)})
    scores = RFMScorer().fit_transform(X)
    assert scores["f_score"].value_counts().sort_index().tolist() == [20] * 5
    assert scores["f_score"].tolist() == scores["m_score"].tolist()
    # Recency reversed: the most recent 20 score 5.
    assert (scores["r_score"] == 6 - scores["f_score"]).all()
    assert scores.loc[X["recency_days"] < 20, "r_score"].eq(5).all()


def test_ties_always_share_a_score():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"recency_days": rng.integers(0, 12, 500),
                      "frequency": rng.integers(1, 8, 500),
                      "monetary": np.round(rng.integers(1, 40, 500) * 2.5, 2)})
    scores = RFMScorer().fit_transform(X)
    for col, score in [("recency_days", "r_score"), ("frequency", "f_score"),
                       ("monetary", "m_score")]:
        per_value = pd.DataFrame({"v": X[col], "s": scores[score]}).groupby("v")["s"].nunique()
        assert (per_value == 1).all(), col
        # Monotone: a larger value never gets a worse score (recency: never a better one).
        order = pd.DataFrame({"v": X[col], "s": scores[score]}).groupby("v")["s"].first()
        diffs = np.diff(order.to_numpy())
        assert (diffs <= 0).all() if col == "recency_days" else (diffs >= 0).all()


def test_few_distinct_values_policy():
    X = _features()
    scorer = RFMScorer().fit(X)
    scores = scorer.transform(X)
    # All one-time buyers score F = 1, and the other four scores split the repeat buyers.
    assert scores.loc[X["frequency"] == 1, "f_score"].eq(1).all()
    repeat = scores.loc[X["frequency"] > 1, "f_score"]
    assert sorted(repeat.unique()) == [2, 3, 4, 5]
    shares = repeat.value_counts(normalize=True)
    assert shares.min() > 0.15 and shares.max() < 0.35
    # Deterministic: refitting on shuffled rows gives the same edges and scores.
    shuffled = X.sample(frac=1, random_state=3)
    again = RFMScorer().fit(shuffled)
    for dim in scorer.edges_:
        assert np.array_equal(scorer.edges_[dim], again.edges_[dim])
    assert again.transform(X).equals(scores)


def test_fewer_distinct_values_than_bins_spread_over_the_scale():
    assert _spread_scores(5, 5).tolist() == [1, 2, 3, 4, 5]
    assert _spread_scores(2, 5).tolist() == [1, 5]
    assert _spread_scores(3, 5).tolist() == [1, 3, 5]
    assert _spread_scores(1, 5).tolist() == [3]
    X = pd.DataFrame({"recency_days": [10, 10, 200, 200, 200], "frequency": [1, 2, 3, 1, 1],
                      "monetary": [5.0] * 5})
    scores = RFMScorer().fit_transform(X)
    assert scores["r_score"].tolist() == [5, 5, 1, 1, 1]
    assert scores["f_score"].tolist() == [1, 3, 5, 1, 1]
    assert scores["m_score"].tolist() == [3] * 5  # one value: no ranking, the middle score


def test_quantile_edges_fill_remaining_bins_after_a_heavy_value():
    x = np.array([1] * 60 + [2] * 15 + [3] * 8 + [4] * 5 + [5] * 4 + [6] * 4 + [9] * 4)
    assert _quantile_edges(x, 5).tolist() == [1, 2, 3, 5]


def test_non_positive_monetary_scores_one():
    X = _features()
    scores = RFMScorer().fit_transform(X)
    non_positive = X["monetary"] <= 0
    assert non_positive.any()
    assert scores.loc[non_positive, "m_score"].eq(1).all()
    # The bins are learned on paying customers only: their lowest fifth also scores 1.
    positive = scores.loc[~non_positive, "m_score"]
    assert abs(positive.eq(1).mean() - 0.2) < 0.03
    everyone_refunded = X.assign(monetary=-1.0)
    assert RFMScorer().fit_transform(everyone_refunded)["m_score"].eq(1).all()


def test_fixed_cut_points():
    cuts = {"recency": [30, 90, 180, 365], "frequency": [1, 2, 3, 5],
            "monetary": [50, 100, 500, 1000]}
    X = pd.DataFrame({"recency_days": [0, 30, 31, 365, 366], "frequency": [1, 2, 4, 5, 6],
                      "monetary": [50.0, 50.01, 600, 1000, -3]})
    scores = RFMScorer(method="fixed", cut_points=cuts).fit_transform(X)
    assert scores["r_score"].tolist() == [5, 5, 4, 2, 1]
    assert scores["f_score"].tolist() == [1, 2, 4, 4, 5]
    assert scores["m_score"].tolist() == [1, 2, 4, 4, 1]


def test_cut_points_override_one_dimension():
    X = _features()
    scorer = RFMScorer(cut_points={"frequency": [1, 2, 3, 5]}).fit(X)
    assert scorer.edges_["frequency"].tolist() == [1, 2, 3, 5]
    assert len(scorer.edges_["monetary"]) == 4  # still quantiles


@pytest.mark.parametrize("kwargs, key", [
    ({"method": "fixed"}, "error.rfm_cut_points_missing"),
    ({"method": "fixed", "cut_points": {"recency": [1, 2, 3, 4], "frequency": [1, 2, 3, 4],
                                         "monetary": [1, 2, 2, 4]}}, "error.rfm_cut_points_invalid"),
    ({"cut_points": {"frequency": [1, 2, 3]}}, "error.rfm_cut_points_invalid"),
    ({"cut_points": {"tenure": [1, 2, 3, 4]}}, "error.rfm_cut_points_unknown"),
    ({"method": "median"}, "error.rfm_method"),
    ({"n_bins": 1}, "error.rfm_n_bins"),
    ({"n_bins": 10}, "error.rfm_n_bins"),
])
def test_bad_parameters(kwargs, key):
    with pytest.raises(InputError) as err:
        RFMScorer(**kwargs).fit(_features(50))
    assert err.value.key == key
    assert "{" not in err.value.message("zh")


def test_bad_features():
    with pytest.raises(InputError) as err:
        RFMScorer().fit(pd.DataFrame({"recency_days": [1], "frequency": [1]}))
    assert err.value.key == "error.rfm_missing_columns" and "monetary" in str(err.value)
    bad = _features(20)
    bad.loc[3, "monetary"] = np.nan
    with pytest.raises(InputError) as err:
        RFMScorer().fit(bad)
    assert err.value.params == {"column": "monetary", "count": 1}
    with pytest.raises(InputError) as err:
        RFMScorer().fit(_features(5).iloc[:0])
    assert err.value.key == "error.rfm_no_rows"


def test_jenks_method_uses_natural_breaks():
    X = _features(800, seed=4)
    scorer = RFMScorer(method="jenks").fit(X)
    assert scorer.edges_["recency"].tolist() == jenks_breaks(X["recency_days"], 5)[1:-1]
    paying = X.loc[X["monetary"] > 0, "monetary"]
    assert scorer.edges_["monetary"].tolist() == jenks_breaks(paying, 5)[1:-1]
    scores = scorer.transform(X)
    assert scores.isin(range(1, 6)).all().all()
    assert scores.loc[X["frequency"] == 1, "f_score"].eq(1).all()


def test_estimator_contract():
    scorer = RFMScorer(method="jenks", n_bins=4, cut_points={"frequency": [1, 2, 4]})
    params = scorer.get_params()
    assert params["method"] == "jenks" and params["n_bins"] == 4
    assert params["cut_points"] == {"frequency": [1, 2, 4]}
    copy = clone(scorer)
    assert copy.get_params()["cut_points"] == params["cut_points"]
    with pytest.raises(NotFittedError):
        scorer.transform(_features(10))
    with pytest.raises(TypeError):
        RFMScorer("quantile")  # keyword-only
    X = _features(100)
    assert scorer.fit(X) is scorer
    assert scorer.transform(X).max().max() <= 4
    # fit does not change the parameters it was given.
    assert scorer.get_params()["cut_points"] == {"frequency": [1, 2, 4]}


def test_rfm_cell_and_fm_score():
    scores = pd.DataFrame({"r_score": [5, 1], "f_score": [4, 1], "m_score": [5, 2]})
    assert rfm_cell(scores).tolist() == ["545", "112"]
    assert fm_score(4, 5) == 5 and fm_score(1, 2) == 2 and fm_score(3, 3) == 3
    assert fm_score(1, 1) == 1 and fm_score(2, 1) == 2


# ----------------------------------------------------------------------------- the map

def test_builtin_map_has_the_eleven_segments_in_both_languages():
    assert BUILTIN.ids == ["champions", "loyal", "potential_loyalist", "new", "promising",
                           "need_attention", "about_to_sleep", "at_risk", "cant_lose",
                           "hibernating", "lost"]
    zh = [BUILTIN.name(s, "zh") for s in BUILTIN.ids]
    assert zh == ["冠军客户", "忠诚客户", "潜力忠诚客户", "新客户", "有潜力客户", "需要关注",
                  "即将沉睡", "有流失风险", "不能失去", "休眠客户", "已流失"]
    for sid in BUILTIN.ids:
        for lang in ("en", "zh"):
            assert BUILTIN.name(sid, lang) and BUILTIN.action(sid, lang)
            assert BUILTIN.description(sid, lang)
    assert segment_name("cant_lose", lang="en") == "Can't Lose Them"
    assert segment_name("new", lang="zh-CN") == "新客户"


def test_every_cell_of_the_builtin_map_has_exactly_one_segment():
    seen = {}
    for r, f, m in itertools.product(range(1, 6), repeat=3):
        owners = [seg.id for seg in BUILTIN.segments
                  if any(all(lo <= {"r": r, "f": f, "m": m, "fm": fm_score(f, m)}[d] <= hi
                             for d, (lo, hi) in rule.items()) for rule in seg.rules)]
        assert len(owners) == 1, (r, f, m, owners)
        seen[(r, f, m)] = owners[0]
    cells = pd.DataFrame(list(seen), columns=["r_score", "f_score", "m_score"])
    assert assign_segments(cells, BUILTIN).tolist() == list(seen.values())
    assert set(seen.values()) == set(BUILTIN.ids)  # no segment is unreachable


@pytest.mark.parametrize("r, f, m, expected", [
    (5, 5, 5, "champions"), (5, 4, 4, "champions"), (1, 1, 1, "lost"), (1, 2, 1, "lost"),
    (4, 5, 5, "loyal"), (3, 4, 4, "loyal"), (5, 1, 1, "new"), (4, 1, 1, "promising"),
    (5, 2, 3, "potential_loyalist"), (3, 3, 3, "need_attention"), (3, 1, 2, "about_to_sleep"),
    (2, 3, 4, "at_risk"), (1, 5, 5, "cant_lose"), (2, 5, 4, "cant_lose"),
    (2, 1, 2, "hibernating"),
])
def test_golden_cells(r, f, m, expected):
    assert assign_segments(_scores(r, f, m), BUILTIN).iloc[0] == expected


def _write_map(tmp_path, rules_by_id, n_bins=5):
    lines = [f"n_bins = {n_bins}"]
    for sid, rules in rules_by_id.items():
        rule_text = ", ".join(
            "{ " + ", ".join(f"{d} = [{lo}, {hi}]" for d, (lo, hi) in rule.items()) + " }"
            for rule in rules)
        lines += ["[[segment]]", f'id = "{sid}"',
                  f'name = {{ en = "{sid}", zh = "{sid}中文" }}',
                  f'action = {{ en = "act", zh = "行动" }}', f"rules = [{rule_text}]"]
    path = tmp_path / "map.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_custom_map(tmp_path):
    path = _write_map(tmp_path, {"recent": [{"r": (2, 3)}], "old": [{"r": (1, 1)}]}, n_bins=3)
    custom = load_segment_map(path)
    assert custom.n_bins == 3 and custom.ids == ["recent", "old"]
    result = rfm_segment(_features(300), n_bins=3, segment_map=path)
    assert set(result["segment"]) == {"recent", "old"}
    assert (result.loc[result["r_score"] == 1, "segment"] == "old").all()
    summary = segment_summary(result, custom, lang="zh")
    assert summary["name"].tolist() == ["recent中文", "old中文"]
    # Several rules per segment are a union.
    union = _write_map(tmp_path, {"edge": [{"r": (1, 1)}, {"r": (3, 3)}], "mid": [{"r": (2, 2)}]},
                       n_bins=3)
    assert assign_segments(_scores(3, 1, 1), load_segment_map(union)).iloc[0] == "edge"


@pytest.mark.parametrize("rules, key, fragment", [
    ({"a": [{"r": (1, 4)}]}, "error.rfm_map_gap", "R=5 F=1 M=1"),
    ({"a": [{"r": (1, 3)}], "b": [{"r": (3, 5)}]}, "error.rfm_map_overlap", "R=3 F=1 M=1"),
    ({"a": [{"r": (1, 6)}]}, "error.rfm_map_range", "1..6"),
    ({"a": [{"r": (3, 2)}]}, "error.rfm_map_range", "3..2"),
    ({"a": [{"q": (1, 5)}]}, "error.rfm_map_dimension", "q"),
])
def test_invalid_maps_are_named(tmp_path, rules, key, fragment):
    path = _write_map(tmp_path, rules)
    with pytest.raises(InputError) as err:
        load_segment_map(path)
    assert err.value.key == key
    for lang in ("en", "zh"):
        text = err.value.message(lang)
        assert str(path) in text and fragment in text and "{" not in text
    if key == "error.rfm_map_overlap":
        assert err.value.params["first"] == "a" and err.value.params["second"] == "b"


def test_broken_map_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("n_bins = [", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_segment_map(bad)
    assert err.value.key == "error.rfm_map_unreadable"
    with pytest.raises(InputError) as err:
        load_segment_map(tmp_path / "missing.toml")
    assert err.value.key == "error.rfm_map_unreadable"
    no_zh = tmp_path / "nozh.toml"
    no_zh.write_text('[[segment]]\nid = "a"\nname = { en = "A" }\naction = { en = "x", zh = "y" }\n'
                     'rules = [{ r = [1, 5] }]\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_segment_map(no_zh)
    assert err.value.params["field"] == "name.zh" and err.value.params["segment"] == "a"
    dup = _write_map(tmp_path, {"a": [{"r": (1, 5)}]})
    dup.write_text(dup.read_text() + "\n" + dup.read_text().split("\n", 1)[1], encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_segment_map(dup)
    assert err.value.key == "error.rfm_map_duplicate_id"


# ----------------------------------------------------------------------------- one call

def test_rfm_segment_one_call():
    X = _features(2000, seed=7)
    result = rfm_segment(X)
    assert result.columns.tolist() == ["customer_id", "r_score", "f_score", "m_score",
                                       "fm_score", "rfm_cell", "segment"]
    assert result["customer_id"].tolist() == X["customer_id"].tolist()
    assert set(result["segment"]) <= set(BUILTIN.ids)
    best = result[(result[["r_score", "f_score", "m_score"]] == 5).all(axis=1)]
    assert len(best) and (best["segment"] == "champions").all()
    summary = segment_summary(result, lang="en")
    assert summary["segment"].tolist() == BUILTIN.ids
    assert summary["count"].sum() == len(X)
    assert summary["share"].sum() == pytest.approx(1.0)
    assert summary.loc[summary["segment"] == "champions", "name"].item() == "Champions"


@pytest.mark.parametrize("method", ["quantile", "jenks"])
def test_rfm_segment_methods(method):
    result = rfm_segment(_features(600, seed=2), method=method)
    assert result[["r_score", "f_score", "m_score"]].isin(range(1, 6)).all().all()
    assert result["segment"].notna().all()


def test_rfm_segment_bins_must_match_the_map():
    with pytest.raises(InputError) as err:
        rfm_segment(_features(50), n_bins=4)
    assert err.value.key == "error.rfm_map_bins_mismatch"
    with pytest.raises(InputError) as err:
        rfm_segment(_features(50).drop(columns="customer_id"))
    assert err.value.key == "error.rfm_missing_columns"
    with pytest.raises(InputError) as err:
        assign_segments(_scores(6, 1, 1), BUILTIN)
    assert err.value.key == "error.rfm_scores_range"
