"""Ensembles: model names whose versions combine other versions' answers.

:mod:`~maas.ensemble.members` (refs, resolution, signature agreement),
:mod:`~maas.ensemble.combine` (mean and vote, numpy), :mod:`~maas.ensemble.runner`
(members run together outside serving), :mod:`~maas.ensemble.create`
(``maas ensemble create``), :mod:`~maas.ensemble.fuse` (one graph with
``onnx.compose``) and :mod:`~maas.ensemble.verify` (the deployer's checks).
Serving is :mod:`maas.serving.ensemble`.
"""
