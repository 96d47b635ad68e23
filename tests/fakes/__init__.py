"""Loopback stand-ins for the services tpc talks to (model providers), for tests and benchmarks."""
