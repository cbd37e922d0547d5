"""The tungui project's tests, and the harness (``support``) the benchmarks and scripts share."""
