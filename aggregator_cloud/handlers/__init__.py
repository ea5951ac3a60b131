"""The functions the AWS IoT rules call (as Lambdas) and the local rules dispatcher calls.

Each takes the rule's event (the message plus `thing_name` from the topic) and a storage
interface, and returns a HandlerResult; none raises on bad input."""

from .result import THING_NAME, HandlerResult
from .shadow_documents import handle_plan_documents, handle_shadow_documents
from .telemetry import handle_telemetry_batch

__all__ = [
    "THING_NAME",
    "HandlerResult",
    "handle_plan_documents",
    "handle_shadow_documents",
    "handle_telemetry_batch",
]
