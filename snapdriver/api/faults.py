"""The compute API's fault body, and the one place exceptions become HTTP.

Every error answer is ``{"<name>": {"code": <int>, "message": "<text>"}}``.
A 5xx never carries exception text: the operator finds it in the log under
the request id; the caller gets a generic message and that id.
"""

from oslo_log import log
from oslo_serialization import jsonutils
import webob

from snapdriver import exception

LOG = log.getLogger(__name__)

NAMES = {
    400: 'badRequest',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'itemNotFound',
    405: 'badMethod',
    406: 'notAcceptable',
    409: 'conflictingRequest',
    413: 'overLimit',
    415: 'badMediaType',
    500: 'computeFault',
    501: 'notImplemented',
    503: 'serviceUnavailable',
}

DEFAULT_MESSAGES = {
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    500: "The server has either erred or is incapable of performing the "
         "requested operation.",
}


def name_for(code):
    if code in NAMES:
        return NAMES[code]
    return 'badRequest' if code < 500 else 'computeFault'


def fault_response(code, message, headers=None):
    """A webob Response carrying the fault body."""
    body = {name_for(code): {'code': code, 'message': message}}
    response = webob.Response(
        status=code, content_type='application/json', charset='UTF-8',
        body=jsonutils.dump_as_bytes(body))
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def from_exception(error, request_id=None):
    """Translate any exception raised while serving a request."""
    if isinstance(error, exception.SnapdriverException) and error.code < 500:
        LOG.info("Request %s refused (%d): %s", request_id, error.code,
                 error.message)
        return fault_response(error.code, error.message)
    LOG.error("Request %s failed", request_id, exc_info=error)
    return fault_response(
        500, "%s Request id: %s." % (DEFAULT_MESSAGES[500], request_id))


class FaultWrapper:
    """Outermost middleware: no exception leaves the service."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        try:
            response = webob.Request(environ).get_response(self.application)
        except Exception as e:
            response = from_exception(
                e, environ.get('openstack.request_id'))
        return response(environ, start_response)


class JsonErrors:
    """Give the framework's own error answers (unknown routes, methods a
    resource does not have) the fault body, keeping status and headers."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        response = webob.Request(environ).get_response(self.application)
        if (response.status_int >= 400
                and response.content_type != 'application/json'):
            code = response.status_int
            fault = fault_response(code,
                                   DEFAULT_MESSAGES.get(code, response.status))
            for key, value in response.headerlist:
                if key.lower() not in ('content-type', 'content-length'):
                    fault.headers[key] = value
            response = fault
        return response(environ, start_response)
