"""The shared words and numbers: plurals, float noise, did-you-mean."""

from __future__ import annotations

import pytest

from xinyong.words import count_of, did_you_mean, label, listing, number, percent, plural


@pytest.mark.parametrize(
    ("count", "noun", "text"),
    [
        (1, "person", "1 person"),
        (2, "person", "2 people"),
        (0, "person", "0 people"),
        (1, "city", "1 city"),
        (3, "city", "3 cities"),
        (1, "more problem", "1 more problem"),
        (2, "more problem", "2 more problems"),
        (2011, "day", "2,011 days"),
        (2, "child", "2 children"),
        (2, "match", "2 matches"),
        (1.0, "seed", "1 seed"),
    ],
)
def test_plural(count, noun, text):
    assert plural(count, noun) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.084e-19, "0"),  # 0 of 2,011, summed in floats
        (-2.961e-16, "0"),  # B - A of two equal means
        (0.0, "0"),
        (1e-8, "0.00000001"),  # one person in 100 million is a value, not noise
        (0.000123456, "0.000123"),
        (0.5, "0.5"),
        (0.12345, "0.123"),
        (12.345, "12.3"),
        (-12.345, "-12.3"),
        (123.6, "124"),
        (2.0, "2"),
        (1234567.8, "1,234,568"),
        (1234567, "1,234,567"),
        (12345.6, "12,346"),
        (None, "n/a"),
        (float("nan"), "n/a"),
        (True, "yes"),
    ],
)
def test_number_never_shows_noise_or_exponents(value, text):
    assert number(value) == text


def test_more_digits_keep_separators():
    assert number(12345.6, 6) == "12,345.6"
    assert number(0.005, 6) == "0.005"


def test_percent_and_counts():
    assert percent(0.1234) == "12.3%"
    assert percent(0.00042) == "0.042%"
    assert percent(3e-18) == "0%"
    assert percent(None) == "n/a"
    assert count_of(3, 2011) == "3 of 2,011"


def test_labels_and_lists():
    assert label("transport_ban") == "transport ban"
    assert listing(["a"]) == "a"
    assert listing(["a", "b", "c"]) == "a, b and c"


def test_did_you_mean():
    assert did_you_mean("misattrib", ["misattribute", "detect", "victims"]) == (
        " (did you mean 'misattribute'?)"
    )
    assert did_you_mean("r2", ["c1", "national", "r1", "s1"]) == " (did you mean 'r1'?)"
    assert did_you_mean("zzz", ["c1", "national"]) == ""
