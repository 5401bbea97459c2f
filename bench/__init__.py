"""The benchmark suite: every figure is a ratio against a ceiling or a peer measured in the same run.

`python -m bench` runs everything against real PostgreSQL and Redis (its own `bench_<random>`
database and Redis prefix per benchmark, removed afterwards) and writes the table to
docs/benchmarks.md. See docs/benchmarks.md for the usage and what each benchmark measures.
"""
