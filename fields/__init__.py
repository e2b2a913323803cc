"""fields package."""
