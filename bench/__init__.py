"""Benchmarks of SpectraMorph Studio (not tests: they print tables and write JSON).

    python -m bench quality [--quick] [--epochs N] [--json PATH]
    python -m bench speed [--sizes 256,1024,2048] [--ratios 4,8] [--epochs N] [--device cpu|cuda] [--json PATH]

Results go to bench/results/ (git-ignored) unless --json says otherwise.
"""
