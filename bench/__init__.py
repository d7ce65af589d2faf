"""Benchmarks of the accelerator: refresh throughput, append scaling, memory, endpoint latency.

One command runs them all and writes ``docs/benchmarks/`` (see ``bench/README.md``)::

    .venv/bin/python -m bench run --scale smoke|small|large
"""
