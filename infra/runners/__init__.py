"""Runners: how an environment's agent turns a task into a transcript (SPEC §6)."""
