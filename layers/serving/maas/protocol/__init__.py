"""Wire formats of the HTTP API, as pure codecs: bytes in, core objects out, and back.

Nothing here knows about HTTP servers, Lambda events or the registry, so every
rule of the Open Inference Protocol and of TF Serving's REST API can be tested
without either, and the handler stays a thin router. Every client mistake is an
:class:`~maas.errors.InvalidInput` (or :class:`~maas.errors.PayloadTooLarge`)
naming the problem; no parser exception escapes.

* :mod:`maas.protocol.jsonbody`: parse a JSON request body, dump a response body.
* :mod:`maas.protocol.values`: numpy arrays → JSON values (non-finite floats, bytes).
* :mod:`maas.protocol.v2`: Open Inference Protocol (KServe V2) with binary tensor data.
* :mod:`maas.protocol.tfserving`: TensorFlow Serving REST predict, status and metadata.
* :mod:`maas.protocol.compression`: Content-Encoding in, Accept-Encoding out.
"""
