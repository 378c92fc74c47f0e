"""Protocol rules, one module per standard (named after the RFC it implements)."""
