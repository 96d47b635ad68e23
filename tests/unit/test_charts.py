"""The dashboard's inline SVG bars with intervals, and deltas marked by their verdict."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from api.web import charts
from api.web.significance import delta_markup


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def test_an_interval_is_drawn_as_an_error_bar_with_end_caps_from_low_to_high() -> None:
    svg = parse(
        charts.bars(
            [("Careful", 0.62), ("Hasty", 0.3)],
            "Score",
            percent=True,
            maximum=1.0,
            intervals=[[0.48, 0.75], None],
        )
    )
    (bar,) = svg.findall("g[@class='error-bar']")
    # The value column widens for the interval: span = 420 - 130 - 110 = 180.
    low, high = 130 + 180 * 0.48, 130 + 180 * 0.75
    whisker, low_cap, high_cap = bar.findall("line")
    assert [float(whisker.get(k) or "nan") for k in ("x1", "y1", "x2", "y2")] == [
        round(low, 1),
        13.0,
        round(high, 1),
        13.0,
    ]
    assert [float(low_cap.get(k) or "nan") for k in ("x1", "y1", "x2", "y2")] == [
        round(low, 1),
        7.0,
        round(low, 1),
        19.0,
    ]
    assert [float(high_cap.get(k) or "nan") for k in ("x1", "x2")] == [round(high, 1)] * 2
    values = [t.text for t in svg.findall("text[@class='value']")]
    assert values == ["62% [48–75%]", "30%"]
    titles = [t.text for t in svg.findall("rect/title")]
    assert titles == ["Careful: 62% [48–75%]", "Hasty: 30%"]


def test_bars_without_intervals_look_as_before() -> None:
    svg = parse(charts.bars([("A", 0.5)], "Score", percent=True, maximum=1.0))
    assert svg.findall("g[@class='error-bar']") == []
    (value,) = svg.findall("text[@class='value']")
    assert value.text == "50%" and value.get("x") == str(420 - 60 + 6)


def test_an_interval_past_the_largest_value_widens_the_scale_so_the_bar_fits() -> None:
    svg = parse(charts.bars([("A", 2.0)], "Tokens", intervals=[[1.0, 4.0]]))
    whisker = svg.findall("g[@class='error-bar']/line")[0]
    assert float(whisker.get("x2") or "nan") == 130 + 180  # the high end is the scale's top
    (bar,) = [r for r in svg.findall("rect") if r.get("fill")]
    assert float(bar.get("width") or "nan") == 90.0  # 2 of 4


def test_a_rate_aggregate_gets_its_intervals_and_a_distribution_interval_is_not_a_bar() -> None:
    (rate,) = charts.aggregate_chart(
        [("A", 0.5), ("B", None)], "Pass", "rate", [[0.2, 0.8], {"p50": [1, 2]}]
    )
    assert parse(rate).findall("g[@class='error-bar']")
    assert "50% [20–80%]" in str(rate)


def test_deltas_are_marked_by_their_verdict_with_the_adjusted_p_value_as_tooltip() -> None:
    significant = delta_markup(
        {
            "delta": -0.25,
            "ci": [-0.4, -0.1],
            "p_value": 0.004,
            "p_adjusted": 0.012,
            "verdict": "significant",
        },
        percent=True,
    )
    span = parse(significant)
    assert span.get("class") == "delta significant delta-down"
    assert span.text == "▼ −25% [−40 to −10%]"
    assert span.get("title") == "significant: p = 0.012 (Holm-adjusted; unadjusted 0.004)"

    quiet = parse(
        delta_markup(
            {
                "delta": 0.05,
                "ci": [-0.1, 0.2],
                "p_value": 0.4,
                "p_adjusted": 0.8,
                "verdict": "not significant",
            },
            percent=True,
        )
    )
    assert quiet.get("class") == "delta delta-ns"
    assert quiet.text == "· +5% [−10 to +20%]"
    assert "p = 0.8" in (quiet.get("title") or "")

    few = parse(delta_markup({"delta": 0.5, "ci": None, "verdict": "too few runs"}, True))
    assert few.get("class") == "delta delta-ns"
    assert [n.text for n in few] == ["(too few runs)"]

    untested = parse(delta_markup({"delta": 3.0, "ci": None, "verdict": None}))
    assert untested.get("class") == "delta delta-up" and untested.text == "+3"
