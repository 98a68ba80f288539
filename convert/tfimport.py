"""The one way maas imports TensorFlow: lazily, quietly, and only when a command needs it."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any


def tensorflow() -> Any:
    """Import and return ``tensorflow``, with its C++ and Python start-up chatter silenced.

    The CLI promises one clear line on stderr; TensorFlow's banner (oneDNN,
    CPU features, absl) would drown it. The oneDNN notice ignores the log level,
    so oneDNN's custom kernels are switched off too: that also keeps reference
    outputs independent of the CPU's instruction set. Either variable, when set
    by the caller, is left alone.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


def keras() -> Any:
    tensorflow()
    import keras

    return keras


def tf2onnx() -> Any:
    tensorflow()
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    return tf2onnx
