"""Many runs, or one run too big for memory: `batch` (a folder of scenes, on Dask or in turn,
resumable) and `tiled` (one scene in overlapping tiles, trained once). Both drive `run`; they
import every layer below them and nothing from `cli`.
"""
