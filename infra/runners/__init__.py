"""Runners: how an environment's agent turns a task into a transcript (docs/spec.md §6)."""
