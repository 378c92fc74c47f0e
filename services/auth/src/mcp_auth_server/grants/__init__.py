"""Token endpoint grant types, one module each (RFC 6749 §4, RFC 8693)."""
