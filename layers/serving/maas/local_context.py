"""A stand-in for the Lambda context object, for `maas serve` and for replaying an
event by hand (Powertools reads these attributes)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LocalContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    function_name: str = "maas-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/maas-local"
    log_stream_name: str = "local"
    timeout_seconds: float = 30.0
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))
