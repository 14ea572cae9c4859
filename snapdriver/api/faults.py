#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

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
    411: 'lengthRequired',
    413: 'overLimit',
    414: 'requestURITooLong',
    415: 'badMediaType',
    431: 'requestHeaderFieldsTooLarge',
    500: 'computeFault',
    501: 'notImplemented',
    503: 'serviceUnavailable',
}

DEFAULT_MESSAGES = {
    401: "The request you have made requires authentication.",
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    500: "The server has either erred or is incapable of performing the "
         "requested operation.",
    503: "The service is temporarily unavailable; try again later.",
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
    if isinstance(error, exception.SnapdriverException) and error.code != 500:
        # Our messages are written for the caller: they name what is wrong
        # and carry no exception text.
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


#: Set in the environ by a controller whose error answers have a shape of
#: their own (the health check's 503).
OWN_SHAPE = 'snapdriver.own_shape'


class JsonErrors:
    """Give every error answer that is not ours the fault body.

    The framework (unknown routes, methods a resource does not have),
    keystonemiddleware (401, 503 when Keystone is unreachable) and
    oslo.middleware's body size limiter (413) answer in their own shapes;
    callers get ours, with the status and headers (Allow, WWW-Authenticate)
    kept, and the message given for the code if there is one.
    """

    def __init__(self, application, messages=None):
        self.application = application
        # Messages for codes whose foreign answers say nothing useful.
        self.messages = dict(messages or {})

    def __call__(self, environ, start_response):
        response = webob.Request(environ).get_response(self.application)
        if (response.status_int >= 400 and not _is_fault(response)
                and not environ.get(OWN_SHAPE)):
            code = response.status_int
            message = self.messages.get(code) or _message_of(response)
            fault = fault_response(code, message)
            for key, value in response.headerlist:
                if not key.lower().startswith('content-'):
                    fault.headers[key] = value
            response = fault
        return response(environ, start_response)


def _json_of(response):
    if response.content_type != 'application/json':
        return None
    try:
        return jsonutils.loads(response.body)
    except ValueError:
        return None


def _is_fault(response):
    body = _json_of(response)
    return (isinstance(body, dict) and len(body) == 1
            and next(iter(body)) in NAMES.values())


def _message_of(response):
    body = _json_of(response)
    error = body.get('error') if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get('message'), str):
        return error['message']
    return DEFAULT_MESSAGES.get(response.status_int, response.status)
