"""Sticky A/B assignment: the hash, the bucket ranges, and what survives a weight change."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightbase.errors import ValidationError
from weightbase.serving.ab_assign import (
    BUCKETS,
    EXCLUDED,
    Allocation,
    BucketRange,
    allocate,
    assign,
    assign_many,
    bucket,
    buckets,
    reweight,
)

# GrowthBook's published test vectors for its hash version 2 (the SDKs' tests/cases.json,
# "hash" cases with version 2): seed, value, hash as a fraction of 10,000 buckets.
GROWTHBOOK_HASH_V2 = [
    ("seed", "a", 0.0505),
    ("seed", "b", 0.2696),
    ("foo", "ab", 0.2575),
    ("foo", "def", 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 0.124),
    ("90850943850283058242805", "123", 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 0.0128),
]


@pytest.mark.parametrize(("salt", "unit_id", "expected"), GROWTHBOOK_HASH_V2)
def test_the_bucket_is_growthbooks_hash_v2(salt: str, unit_id: str, expected: float) -> None:
    assert bucket(salt, unit_id) == round(expected * BUCKETS)
    assert buckets(salt, [unit_id]).tolist() == [round(expected * BUCKETS)]


unit_ids = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=40),
        st.integers(min_value=-(10**12), max_value=10**12),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(salt=st.text(max_size=20), ids=unit_ids)
def test_the_vectorised_buckets_are_the_scalar_ones(salt: str, ids: list[str | int]) -> None:
    assert buckets(salt, ids).tolist() == [bucket(salt, unit_id) for unit_id in ids]


def test_many_chunks_and_id_kinds_agree_with_the_scalar_hash() -> None:
    ids = [f"user-{i}" for i in range(20_000)] + ["", "é✓日本語", "0", "x" * 100]
    expected = [bucket("exp-7", unit_id) for unit_id in ids]
    assert buckets("exp-7", ids).tolist() == expected
    assert buckets("exp-7", np.asarray(ids)).tolist() == expected
    assert buckets("exp-7", iter(ids)).tolist() == expected
    numbers = np.arange(-50, 5_000)
    assert buckets("s", numbers).tolist() == [bucket("s", int(n)) for n in numbers]
    assert buckets("s", []).tolist() == []
    raw = ["é-user".encode(), b"plain", "text"]
    expected = [bucket("s", unit_id) for unit_id in raw]
    assert expected[:2] == [bucket("s", "é-user"), bucket("s", "plain")]
    assert buckets("s", raw).tolist() == expected
    assert buckets("s", raw[1:]).tolist() == expected[1:]
    assert buckets("s", np.asarray(raw[:2])).tolist() == expected[:2]


@settings(max_examples=25, deadline=None)
@given(
    salt=st.text(max_size=12),
    weights=st.lists(st.integers(min_value=0, max_value=20), min_size=2, max_size=5).filter(
        lambda w: sum(w) > 0
    ),
)
def test_any_salt_and_weights_share_units_as_the_weights_say(salt: str, weights: list[int]) -> None:
    from scipy import stats

    allocation = allocate(weights)
    expected = np.asarray(weights) / sum(weights)
    assert np.all(np.abs(np.asarray(allocation.bucket_counts()) - expected * BUCKETS) < 1)
    hashed = buckets(salt, [f"unit-{i}" for i in range(20_000)])
    assert stats.chisquare(np.bincount(hashed // 500, minlength=20)).pvalue > 1e-6
    shares = np.bincount(allocation.table[hashed], minlength=len(weights)) / hashed.size
    # Five binomial standard errors of 20,000 units, at most 0.018.
    assert np.all(np.abs(shares - expected) <= 5 * np.sqrt(expected * (1 - expected) / 20_000))


def test_buckets_are_the_same_in_another_process() -> None:
    ids = [f"session-{i}" for i in range(1_000)]
    code = (
        "from weightbase.serving.ab_assign import buckets;"
        "print(buckets('exp', [f'session-{i}' for i in range(1000)]).tolist())"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert other.stdout.strip() == str(buckets("exp", ids).tolist())


def test_buckets_are_uniform_and_salts_independent() -> None:
    from scipy import stats

    ids = np.asarray([f"u{i}" for i in range(200_000)])
    first = buckets("salt-a", ids)
    per_hundred = np.bincount(first // 100, minlength=100)
    assert stats.chisquare(per_hundred).pvalue > 1e-4
    second = buckets("salt-b", ids)
    # Two salts put units in unrelated buckets: halves cross about evenly.
    crossed = np.mean((first < 5_000) == (second < 5_000))
    assert abs(crossed - 0.5) < 0.01


def test_weights_set_the_share_of_buckets_and_of_units() -> None:
    allocation = allocate([0.2, 0.3, 0.5])
    assert allocation.bucket_counts() == (2_000, 3_000, 5_000)
    assert [(r.start, r.end, r.variant) for r in allocation.ranges] == [
        (0, 2_000, 0),
        (2_000, 5_000, 1),
        (5_000, 10_000, 2),
    ]
    variants = assign_many(allocation, "exp", np.arange(300_000))
    shares = np.bincount(variants, minlength=3) / variants.size
    assert np.allclose(shares, [0.2, 0.3, 0.5], atol=0.005)
    assert [assign(allocation, "exp", i) for i in range(500)] == variants[:500].tolist()


def test_coverage_leaves_units_out_of_the_test() -> None:
    allocation = allocate([1, 1], coverage=0.4)
    assert allocation.bucket_counts() == (2_000, 2_000)
    variants = assign_many(allocation, "exp", np.arange(100_000))
    assert abs(np.mean(variants == EXCLUDED) - 0.6) < 0.01
    widened = reweight(allocation, [1, 1], coverage=1.0)
    before, after = allocation.table, widened.table
    # Widening keeps every unit in the test where it was.
    assert np.array_equal(after[before != EXCLUDED], before[before != EXCLUDED])


@st.composite
def weight_changes(draw: st.DrawFn) -> tuple[list[float], float, list[float], float]:
    count = draw(st.integers(min_value=2, max_value=6))
    weight = st.floats(min_value=0, max_value=100, allow_nan=False)
    old = draw(st.lists(weight, min_size=count, max_size=count).filter(lambda w: sum(w) > 0))
    added = draw(st.integers(min_value=0, max_value=2))
    new = draw(
        st.lists(weight, min_size=count + added, max_size=count + added).filter(
            lambda w: sum(w) > 0
        )
    )
    coverage = st.floats(min_value=0, max_value=1)
    return old, draw(coverage), new, draw(coverage)


@settings(max_examples=150, deadline=None)
@given(change=weight_changes(), steps=st.integers(min_value=1, max_value=3))
def test_a_weight_change_moves_only_the_buckets_it_forces(
    change: tuple[list[float], float, list[float], float], steps: int
) -> None:
    old_weights, old_coverage, new_weights, new_coverage = change
    allocation = allocate(old_weights, old_coverage)
    for _ in range(steps):  # an allocation already reweighted (ranges split) reweights alike
        allocation = reweight(allocation, old_weights[::-1], old_coverage)
    changed = reweight(allocation, new_weights, new_coverage)
    slots = range(EXCLUDED, len(new_weights))
    before = {s: int(np.count_nonzero(allocation.table == s)) for s in slots}
    after = {s: int(np.count_nonzero(changed.table == s)) for s in slots}
    moved = allocation.table != changed.table
    forced = sum(max(0, before[s] - after[s]) for s in slots)
    assert int(moved.sum()) == forced
    # A bucket moves only out of a variant that shrank, and only into one that grew.
    for old_slot, new_slot in zip(allocation.table[moved], changed.table[moved], strict=True):
        assert before[int(old_slot)] > after[int(old_slot)]
        assert after[int(new_slot)] > before[int(new_slot)]
    assert sum(changed.bucket_counts()) == round(new_coverage * BUCKETS)
    assert Allocation.from_dict(changed.to_dict()) == changed


def test_units_keep_their_variant_through_a_weight_change() -> None:
    allocation = allocate([0.5, 0.25, 0.25])
    ids = np.arange(200_000)
    before = assign_many(allocation, "exp", ids)
    changed = reweight(allocation, [0.4, 0.3, 0.3])
    after = assign_many(changed, "exp", ids)
    # Only a tenth of the buckets, those variant 0 gives up, change hands.
    assert abs(np.mean(before != after) - 0.10) < 0.005
    assert set(before[before != after].tolist()) == {0}
    back = reweight(changed, [0.5, 0.25, 0.25])
    assert back.bucket_counts() == allocation.bucket_counts()
    with_new_variant = reweight(allocation, [0.5, 0.25, 0.25, 0.25])
    assert with_new_variant.bucket_counts() == (4_000, 2_000, 2_000, 2_000)
    assert np.mean(assign_many(with_new_variant, "exp", ids) != before) < 0.21


@pytest.mark.parametrize(
    ("weights", "coverage", "message"),
    [
        ([1.0], 1.0, "at least 2 variants"),
        ([1.0, -1.0], 1.0, ">= 0"),
        ([1.0, float("nan")], 1.0, ">= 0"),
        ([0.0, 0.0], 1.0, "more than 0"),
        ([1.0, 1.0], 1.5, "coverage"),
    ],
)
def test_bad_weights_are_refused(weights: list[float], coverage: float, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        allocate(weights, coverage)


def test_bad_allocations_are_refused() -> None:
    allocation = allocate([1, 1])
    with pytest.raises(ValidationError, match="cannot be removed"):
        reweight(allocate([1, 1, 1]), [1, 1])
    with pytest.raises(ValidationError, match="cover 0-9999"):
        Allocation((1.0, 1.0), 1.0, (BucketRange(0, 5_000, 0),))
    with pytest.raises(ValidationError, match="cover 0-9999"):
        Allocation((1.0, 1.0), 1.0, (BucketRange(1, 10_000, 0),))
    with pytest.raises(ValidationError, match="unknown variant"):
        Allocation((1.0, 1.0), 1.0, (BucketRange(0, 10_000, 2),))
    with pytest.raises(ValidationError, match="not an allocation"):
        Allocation.from_dict({"weights": [1, 1]})
    with pytest.raises(ValidationError, match="flat"):
        buckets("s", np.zeros((2, 2)))
    assert allocation.to_dict()["ranges"][0] == {"start": 0, "end": 5_000, "variant": 0}
