"""Integration tests on the real stack; a package so ``stack`` imports as ``integration.stack``."""
