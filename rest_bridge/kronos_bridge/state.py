"""What the routes share: settings, metrics, the gate, the dataplane (set by the lifespan), draining."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from kronos_bridge.middleware import RequestInfo, info_of
from kronos_bridge.plane import RestPlane
from kronos_server.gate import Gate
from kronos_server.observability.metrics import Metrics
from kronos_server.settings import Settings


@dataclass
class BridgeState:
    settings: Settings
    metrics: Metrics
    gate: Gate
    plane: RestPlane | None = None  # None outside the lifespan
    draining: bool = False  # set on SIGTERM: readyz answers 503 from then on

    def connected(self) -> RestPlane:
        if self.plane is None:
            raise RuntimeError("the bridge is used outside its lifespan (use `with TestClient(app)`)")
        return self.plane


# async: FastAPI runs a sync dependency in a worker thread, a hop that costs more than the call
async def bridge_of(request: Request) -> BridgeState:
    state: BridgeState = request.app.state.bridge
    return state


async def request_info(request: Request) -> RequestInfo:
    return info_of(request)


Bridge = Annotated[BridgeState, Depends(bridge_of)]
Info = Annotated[RequestInfo, Depends(request_info)]
