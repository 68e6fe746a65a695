"""The SVG charts are pure: data picked from a result, largest values first, the rest as "Other", text escaped."""

from machines.graph.charts import MAX_SLICES, bar_svg, chart_data, donut_svg


def test_chart_data_picks_a_label_and_a_number_and_groups_the_tail():
    columns = [("os", "string"), ("note", "string"), ("n", "long")]
    rows = [[f"os-{i}", "x", i] for i in range(1, 15)]
    data = chart_data(columns, rows)
    assert (data.label, data.measure) == ("os", "n")
    assert len(data.points) == MAX_SLICES and data.points[0] == ("os-14", 14.0)
    assert data.points[-1] == ("Other", float(sum(range(1, 6))))
    assert data.total == sum(range(1, 15))


def test_no_chart_without_a_number_column():
    assert chart_data([("name", "string")], [["a"]]) is None
    assert chart_data([("n", "long")], [[1]]) is None
    assert chart_data([("name", "string"), ("n", "long")], []) is None


def test_svgs_escape_labels_and_scale_to_the_largest_value():
    data = chart_data([("l", "string"), ("n", "real")], [["<b>&", 3.0], ["", 1.0]])
    bar = bar_svg(data)
    assert "<b>" not in bar and "&lt;b&gt;&amp;" in bar and "(empty)" in bar
    assert bar.count("<rect") == 2 and 'width="420.0"' in bar  # the largest bar spans the plot width
    donut = donut_svg(data)
    assert donut.count('class="slice"') == 2 and "75%" in donut and "25%" in donut
