"""Secrets at rest: hashing what we issue, encrypting what we must read back, signing keys."""
