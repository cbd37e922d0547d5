"""Integration tests on the real stack (tests/support brings it up)."""
