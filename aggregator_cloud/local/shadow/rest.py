"""The iot-data REST subset, so the unchanged ``boto3`` ``iot-data`` client works locally.

``GetThingShadow``, ``UpdateThingShadow``, ``DeleteThingShadow`` (``/things/{thing}/shadow``,
``?name=`` for named shadows), ``ListNamedShadowsForThing`` and ``Publish``. Errors use the
REST-JSON shape botocore expects: the ``x-amzn-ErrorType`` header names the exception and the
body carries ``message``.

Requests are not signed-checked: the server refuses any address but loopback (see
:func:`check_loopback`), like AWS, which never serves this API unauthenticated.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .service import ShadowRequest, ShadowService
from .store import REQUEST_LIMIT_BYTES, Rejection, UpdateResult

LOGGER = logging.getLogger(__name__)
SERVICE_KEY = web.AppKey("shadow_service", ShadowService)
ERROR_TYPES = {
    400: "InvalidRequestException",
    401: "UnauthorizedException",
    404: "ResourceNotFoundException",
    405: "MethodNotAllowedException",
    409: "ConflictException",
    413: "RequestEntityTooLargeException",
    415: "UnsupportedDocumentEncodingException",
    429: "ThrottlingException",
    500: "InternalFailureException",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NotLoopback(ValueError):
    """The REST API would be reachable from other machines without request signing."""


def check_loopback(host: str) -> str:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise NotLoopback(
            f"refusing to serve the iot-data REST API on {host}: it does not check request"
            " signatures, so it binds to loopback only (127.0.0.1 or ::1)"
        )
    return host


def error_response(rejection: Rejection) -> web.Response:
    body = {"code": rejection.code, "message": rejection.message}
    return web.json_response(
        body,
        status=rejection.code,
        headers={"x-amzn-ErrorType": ERROR_TYPES.get(rejection.code, "InternalFailureException")},
    )


@web.middleware
async def aws_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown paths, wrong methods, oversized bodies and crashes answered in AWS's shape."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status == 413:
            return error_response(Rejection(413, "The payload exceeds the maximum size allowed"))
        if error.status == 405:
            return error_response(Rejection(405, "Method Not Allowed"))
        return error_response(Rejection(error.status, error.reason))
    except Exception:
        LOGGER.exception("%s %s failed", request.method, request.path)
        return error_response(Rejection(500, "Internal service failure"))


def _shadow_request(request: web.Request, operation: str) -> ShadowRequest:
    return ShadowRequest(request.match_info["thing"], request.query.get("name", ""), operation)


async def _shadow_operation(request: web.Request, operation: str) -> web.Response:
    service = request.app[SERVICE_KEY]
    shadow_request = _shadow_request(request, operation)
    result = service.run(shadow_request, await request.read())
    if isinstance(result, Rejection):
        return error_response(result)
    if operation != "get":
        await service.publish_accepted(shadow_request, result)
    document = result.accepted if isinstance(result, UpdateResult) else result
    return web.json_response(document)


async def get_shadow(request: web.Request) -> web.Response:
    return await _shadow_operation(request, "get")


async def update_shadow(request: web.Request) -> web.Response:
    return await _shadow_operation(request, "update")


async def delete_shadow(request: web.Request) -> web.Response:
    return await _shadow_operation(request, "delete")


async def list_named_shadows(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    try:
        page_size = int(request.query.get("pageSize", "25"))
    except ValueError:
        return error_response(Rejection(400, "Invalid page size"))
    result = service.store.list_named(
        request.match_info["thing"], page_size, request.query.get("nextToken")
    )
    if isinstance(result, Rejection):
        return error_response(result)
    return web.json_response(result)


async def publish(request: web.Request) -> web.Response:
    topic = request.match_info["topic"]
    if any(wildcard in topic for wildcard in "+#"):
        return error_response(Rejection(400, "Invalid topic: wildcards are not allowed"))
    qos = request.query.get("qos", "0")
    if qos not in ("0", "1"):
        return error_response(Rejection(400, "Invalid qos: use 0 or 1"))
    await request.app[SERVICE_KEY].publish(topic, await request.read())
    return web.json_response({})


def build_app(service: ShadowService) -> web.Application:
    app = web.Application(client_max_size=REQUEST_LIMIT_BYTES + 1, middlewares=[aws_errors])
    app[SERVICE_KEY] = service
    app.router.add_get("/things/{thing}/shadow", get_shadow)
    app.router.add_post("/things/{thing}/shadow", update_shadow)
    app.router.add_delete("/things/{thing}/shadow", delete_shadow)
    app.router.add_get("/api/things/shadow/ListNamedShadowsForThing/{thing}", list_named_shadows)
    app.router.add_post("/topics/{topic:.+}", publish)
    return app
