"""Customer lifetime value: BTYD models fitted on per-customer summaries."""
