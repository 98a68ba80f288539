"""Deployer function: S3 uploads (manifests, raw incoming models) → verify → promote.

All logic ships in the serving layer (package ``maas``); this file only binds
the Lambda entry point, built once per execution environment.
"""

from maas.lambda_entry import deployer_handler

handler = deployer_handler()
