"""Benchmarks of SpectraMorph Studio (not tests: they print tables and write JSON).

    python -m bench quality [--quick] [--scenes ...] [--psfs ...] [--grid 4x4,8x1] [--seeds 1,2,3] [--jobs N]
                            [--methods default,original,glp,hysure] [--size 128] [--selection-check] [--json PATH]
    python -m bench prior [--scenes urban,usgs-a,holdout] [--seeds 1,2,3] [--json PATH]
    python -m bench speed [--sizes 256,1024,2048] [--ratios 4,8] [--epochs 20] [--device D] [--pipeline] [--json PATH]
    python -m bench fuzz [--cases 2000] [--formats npy,h5,...] [--seed S] [--verbose] [--json PATH]
    python -m bench cancel [--size 2048] [--stages load,nmf,...] [--delay 0.5] [--epochs 4] [--json PATH]
    python -m bench batch [--scenes 6] [--workers 1,2] [--tiled-size 2048] [--chunk 512] [--no-tiled] [--json PATH]

Results go to bench/results/ (git-ignored) unless --json says otherwise. See bench/README.md.
"""
