"""The scanner that finds the metric names of a rule expression (`promql_names`)."""

from __future__ import annotations

import pytest

from tests.deploy.promql_names import metric_names


@pytest.mark.parametrize(("expr", "names"), [
    ("up", {"up"}),
    ('up{job="lcm-control-plane"} == 0', {"up"}),
    ('absent(up{job="lcm-control-plane"})', {"up"}),
    ("sum by (health) (max by (status, health) (lcm_workers{status=~\"running|draining\"}))", {"lcm_workers"}),
    ("sum(rate(http_total[5m])) without (instance) / sum(rate(runs_total[5m] offset 1h30m))",
     {"http_total", "runs_total"}),
    ("a == 0 unless on(service) b == 0", {"a", "b"}),
    ("a * on (service) group_left (identity) b", {"a", "b"}),
    ("a > bool 1 and b or c", {"a", "b", "c"}),
    ("count and sum without (x) (y)", {"count", "y"}),
    ("min(expiry_timestamp_seconds) - time() < 14 * 86400", {"expiry_timestamp_seconds"}),
    ("clamp_min(5 * max by (loop) (interval_seconds{loop=~\"a|b\"}), 900) > 1e3", {"interval_seconds"}),
    ('label_replace(x, "dst", "$1", "src", "(.*) by (y)")', {"x"}),
    ('{__name__="named_by_matcher", job="j"}', {"named_by_matcher"}),
    ("lcm:controller_leaders:max == 0 # a comment naming not_a_metric", {"lcm:controller_leaders:max"}),
    ("max_over_time(deriv(x[10m:1m])[1h:]) > Inf", {"x"}),
    ("histogram_quantile(0.9, sum by (le) (rate(latency_bucket[5m])))", {"latency_bucket"}),
    ("(absent(a{service=\"w\"}) or absent(a{service=\"l\"})) and on() max(up{job=\"j\"}) == 1", {"a", "up"}),
])
def test_metric_names_are_found_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_an_unbalanced_expression_is_refused() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        metric_names("sum(rate(x[5m])")
