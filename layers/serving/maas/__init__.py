"""maas: machine-learning models as a service on AWS Lambda.

This package is shared by the Lambda functions (it ships in the serving layer)
and by the ``maas`` command line. Nothing imported from here may import
TensorFlow; the conversion pipeline lives in ``maas.convert`` and is never
shipped to Lambda.
"""

__version__ = "0.1.0"
