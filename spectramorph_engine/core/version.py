"""The engine's version, in the ground floor so that a run's provenance (run.json) can name it
without importing the package's front door."""
__version__ = "0.1.0"
