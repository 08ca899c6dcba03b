"""Reading Prometheus text the way a scraper does, for the metrics tests."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families


def sample_sum(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of every sample called `name` whose labels include `labels` (0 when none)."""
    wanted = dict(labels or {})
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and wanted.items() <= sample.labels.items():
                total += sample.value
    return total


def outcome_counts(text: str, provider: str) -> dict[str, float]:
    """`violation_calls_total` for one provider, by outcome, zeros left out."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            ours = sample.name == "violation_calls_total" and sample.labels["provider"] == provider
            if ours and sample.value:
                counts[sample.labels["outcome"]] = sample.value
    return counts
