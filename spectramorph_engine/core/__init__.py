"""The engine's ground floor: what every other part leans on and which leans on nothing else.

`errors` (InputError, Cancelled and their kin), `events` (progress events, the cancel check),
`strict_json` (the one JSON encoder: NaN/Inf -> null), `device` (torch device and threads),
`memory` (what a run needs and what the machine has), `version`. Modules here import only
each other, the standard library and numpy/psutil/torch; never another engine sub-package.
"""
