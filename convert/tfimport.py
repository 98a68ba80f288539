"""The one way maas imports TensorFlow: lazily, quietly, and only when a command needs it."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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

    # tf2onnx logs each unsupported op at ERROR; the conversion error that follows
    # says the same in one line.
    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)
    return tf2onnx


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while native code runs.

    For C++ that prints straight to fd 2 with no log level to turn down, such as
    the "Created TensorFlow Lite XNNPACK delegate" line of the tf.lite.Interpreter
    that tf2onnx builds internally. Failures still surface as Python exceptions.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
