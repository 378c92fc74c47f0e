"""Reads and writes of the auth service's state, one module per kind of record."""
