"""On-demand benchmarks (never run as timed tests): `make bench` or `python -m benchmarks.<name>`."""
