"""Inference function: API Gateway HTTP API → the maas serving core.

All logic ships in the serving layer (package ``maas``); this file only binds
the Lambda entry point, built once per execution environment.
"""

from maas.lambda_entry import inference_handler

handler = inference_handler()
