"""Test doubles that ship with voxrelay (used by its tests and benchmarks)."""
