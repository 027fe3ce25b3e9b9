"""The kernel: what every part shares (samples, selectors, durations, YAML reading, errors,
the metric catalog, thresholds, tiers and the storage port). It imports no service."""
