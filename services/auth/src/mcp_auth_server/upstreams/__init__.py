"""Upstream identity providers behind one small interface (in the spirit of Dex's connectors)."""
