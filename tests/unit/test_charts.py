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
    (bar,) = svg.findall("g/g[@class='error-bar']")
    # The label is above the bar, which starts at 0; the value column widens for the
    # interval: span = 420 - 110 = 310. The first bar is under one line of label (16).
    low, high = 310 * 0.48, 310 * 0.75
    whisker, low_cap, high_cap = bar.findall("line")
    assert [float(whisker.get(k) or "nan") for k in ("x1", "y1", "x2", "y2")] == [
        round(low, 1),
        25.0,
        round(high, 1),
        25.0,
    ]
    assert [float(low_cap.get(k) or "nan") for k in ("x1", "y1", "x2", "y2")] == [
        round(low, 1),
        19.0,
        round(low, 1),
        31.0,
    ]
    assert [float(high_cap.get(k) or "nan") for k in ("x1", "x2")] == [round(high, 1)] * 2
    values = [t.text for t in svg.findall("g/text[@class='value']")]
    assert values == ["62% [48–75%]", "30%"]
    titles = [t.text for t in svg.findall("g[@class='row']/title")]
    assert titles == ["Careful: 62% [48–75%]", "Hasty: 30%"]


def test_bars_without_intervals_keep_a_narrow_value_column() -> None:
    svg = parse(charts.bars([("A", 0.5)], "Score", percent=True, maximum=1.0))
    assert svg.findall(".//g[@class='error-bar']") == []
    (value,) = svg.findall("g/text[@class='value']")
    assert value.text == "50%" and value.get("x") == str(420 - 60 + 6)


def test_a_long_value_widens_its_column_so_it_is_not_cut() -> None:
    svg = parse(charts.bars([("A", 12453.2)], "Tokens", intervals=[[2811.0, 22096.0]]))
    (value,) = svg.findall("g/text[@class='value']")
    assert value.text == "12,453 [2,811–22,096]"
    assert 420 - float(value.get("x") or "nan") >= 8 * len(value.text)


def test_an_interval_past_the_largest_value_widens_the_scale_so_the_bar_fits() -> None:
    svg = parse(charts.bars([("A", 2.0)], "Tokens", intervals=[[1.0, 4.0]]))
    whisker = svg.findall("g/g[@class='error-bar']/line")[0]
    assert float(whisker.get("x2") or "nan") == 420 - 110  # the high end is the scale's top
    (bar,) = [r for r in svg.findall("g/rect") if r.get("fill")]
    assert float(bar.get("width") or "nan") == 155.0  # 2 of 4


def test_similar_long_names_are_written_whole_and_in_the_tooltip() -> None:
    names = ["Claude Sonnet 4.5 + docs v1", "Claude Sonnet 4.5 + docs v2"]
    long_name = "An environment whose name is far too long for a single line of the chart: v3"
    svg = parse(charts.bars([(n, 0.5) for n in [*names, long_name]], "Score", percent=True))
    rows = svg.findall("g[@class='row']")
    written = [" ".join(t.text or "" for t in row.findall("text[@class='label']")) for row in rows]
    assert written == [*names, long_name]
    assert len(rows[2].findall("text[@class='label']")) == 2  # wrapped, not cut
    assert [row.findtext("title") for row in rows] == [f"{n}: 50%" for n in [*names, long_name]]
    stacked = parse(charts.stacked([(n, {"pass": 1, "fail": 2}) for n in names], "Outcomes"))
    labels = [t.text for t in stacked.findall("g[@class='row']/text[@class='label']")]
    assert labels == names


def test_durations_and_costs_are_written_in_their_unit() -> None:
    (duration,) = charts.aggregate_chart(
        [("A", 0.207), ("B", 123.4)], "Time", "avg", unit="seconds"
    )
    assert "207 ms" in str(duration) and "2 min 3 s" in str(duration)
    (cost,) = charts.aggregate_chart([("A", 0.0), ("B", 0.0326)], "Cost", "median", unit="usd")
    assert "$0<" in str(cost) and "$0.0326" in str(cost)
    distribution = {
        "count": 2,
        "p50": 0.2,
        "p90": 61.0,
        "histogram": [{"lo": 0.2, "hi": 30.0, "count": 1}, {"lo": 30.0, "hi": 61.0, "count": 1}],
    }
    (histogram,) = charts.aggregate_chart(
        [("A", distribution)], "Time", "distribution", unit="seconds"
    )
    assert "A: 2 runs, median 200 ms, p90 1 min 1 s" in str(histogram)
    assert "200 ms–30 s: 1 run" in str(histogram)


def test_a_rate_aggregate_gets_its_intervals_and_a_distribution_interval_is_not_a_bar() -> None:
    (rate,) = charts.aggregate_chart(
        [("A", 0.5), ("B", None)], "Pass", "rate", [[0.2, 0.8], {"p50": [1, 2]}]
    )
    assert parse(rate).findall("g/g[@class='error-bar']")
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
