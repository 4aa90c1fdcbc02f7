"""The call gate: what every transport does to a call, written once and free of any transport."""

from kronos_server.gate.call import METHODS, Call, Headers, current, request_id_from
from kronos_server.gate.gate import GENERIC_INTERNAL, Gate

__all__ = ["GENERIC_INTERNAL", "METHODS", "Call", "Gate", "Headers", "current", "request_id_from"]
