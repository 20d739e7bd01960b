"""Tasker's benchmark suite: ``python -m benchmarks`` (see benchmarks/README.md).

Scenarios live in :mod:`benchmarks.scenarios`; what they share (scratch databases,
templates, probes, statistics) in :mod:`benchmarks.harness`; child processes and CPU
accounting in :mod:`benchmarks.processes`; ratios, targets, the table and the JSON files
in :mod:`benchmarks.summary`.
"""
