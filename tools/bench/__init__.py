"""snapdriver's benchmarks, run by tools/benchmark.py
(tools/run-benchmarks.sh).

Every measurement runs snapdriver and its baseline side by side, in one
run, on the same machine, interleaved, and reports ratios as well as
absolute times. Nothing here asserts a time: the tables are the output.
"""
