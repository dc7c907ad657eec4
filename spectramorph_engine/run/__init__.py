"""One fusion run, from a config to files on disk.

`config` (FusionConfig: keys, validation, load/save, --set overrides), `pipeline` (run_fusion:
prepare, fuse, score, write), `selection` (auto_select on the reduced-resolution pair),
`method_report` (each method's figures in its own terms), `demo` (the built-in scene), `alignment`
(a georeferenced pair brought onto nested grids, `align: auto`; `spectramorph align`).
Imports `core`, `io`, `sensors`, `quality` and `methods`; never `scale` or `cli`.
"""
