"""Tasker's soak and chaos suite: ``python -m soak`` (see docs/reliability.md).

Given / When / Then, one module each: :mod:`soak.plan` (the workload, the chaos and the
human, decided from the seed; :mod:`soak.shapes` the DAG templates, :mod:`soak.handlers`
the steps' code), :mod:`soak.run` (workers, chaos, feed, drain; processes in
:mod:`soak.workers`, the operator in :mod:`soak.human`) and :mod:`soak.checks` (the
invariants, on :mod:`soak.facts` read from the database and the :mod:`soak.ledger`).
"""
