"""Flights: cutting a drone's samples into flights and summarizing each (pure functions)."""
