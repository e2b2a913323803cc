"""Reports for cooperatives, computed from stored flight summaries (pure functions)."""
