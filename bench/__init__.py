"""Benchmarks of SpectraMorph Studio (not tests: they print tables and write JSON).

    python -m bench quality [--quick] [--epochs N] [--ratios 2,4,8] [--bands 1,3,4,8] [--device D] [--json PATH]
    python -m bench speed [--sizes 256,1024,2048] [--ratios 4,8] [--epochs 20] [--device D] [--pipeline] [--json PATH]
    python -m bench fuzz [--cases 2000] [--formats npy,h5,...] [--seed S] [--verbose] [--json PATH]

Results go to bench/results/ (git-ignored) unless --json says otherwise. See bench/README.md.
"""
