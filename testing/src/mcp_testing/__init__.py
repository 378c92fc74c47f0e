"""Stand-ins for upstream identity providers and fixtures that run the real services in tests."""
