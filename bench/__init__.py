"""Benchmarks of tungui on the real stack; each prints figures beside a reference run.

Run each from the repository root as a module, e.g. ``python -m bench.flood``
(bench/README.md): ``bench`` and ``tests`` then import as packages.
"""
