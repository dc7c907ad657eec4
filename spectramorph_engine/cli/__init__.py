"""The command line: `main` (`spectramorph run|batch|...`, the console script
`spectramorph_engine.cli.main:main` and `python -m spectramorph_engine`), `batch` (the
`batch` sub-command's options and summary) and `align` (the aligned pair as GeoTIFFs). The top floor: imports any layer, and nothing in
the engine imports it.
"""
