"""The serving core: resolve, load, check, run; no HTTP in it."""
