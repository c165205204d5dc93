"""Benchmarks against loopback stand-ins of the registries; run as ``python -m bench.<name>``."""
