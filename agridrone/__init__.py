"""agridrone: telemetry ingest, field coverage and reports for agricultural spraying drones."""

__version__ = "0.1.0"
