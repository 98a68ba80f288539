"""maas.convert: Keras/TensorFlow → ONNX conversion, optimisation and quantisation.

Installed as ``maas.convert`` through a package-dir mapping (see pyproject.toml)
so the CLI can reach it while the serving layer never carries it. This is the
only part of maas allowed to import TensorFlow, and only lazily.
"""
