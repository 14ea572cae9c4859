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

"""WSGI middleware of the API, assembled in code by :mod:`app`."""

import time
import urllib.parse

from oslo_config import cfg
from oslo_log import log
from oslo_middleware import request_id
from oslo_middleware import sizelimit
import webob

from snapdriver.api import faults
from snapdriver.api import microversion
from snapdriver import exception

LOG = log.getLogger(__name__)

REQUEST_ID_ENV = request_id.ENV_REQUEST_ID
GLOBAL_REQUEST_ID_ENV = request_id.GLOBAL_REQ_ID
# The compute API's own copy of the request id header (as Nova sends it).
COMPUTE_REQUEST_ID_HEADER = 'x-compute-request-id'
VERSION_ENV = 'snapdriver.microversion'

# Paths served without authentication (version discovery, the OpenAPI
# document; the health check without a token: see api.health).
PUBLIC_PATHS = ('/', '/v2.1', '/v2.1/', '/v2.1/openapi.json')


class RequestId(request_id.RequestId):
    """oslo.middleware's request id, as the compute API uses it.

    Each request gets an id (``openstack.request_id``) that goes back as
    X-OpenStack-Request-Id and, for the compute API's clients (novaclient
    reads it), X-Compute-Request-Id; a well-formed inbound
    X-OpenStack-Request-Id becomes the global request id. A malformed one
    is ignored, with a warning.
    """

    compat_headers = [COMPUTE_REQUEST_ID_HEADER]

    def set_global_req_id(self, req):
        super().set_global_req_id(req)
        inbound = req.headers.get(request_id.INBOUND_HEADER)
        if inbound and GLOBAL_REQUEST_ID_ENV not in req.environ:
            LOG.warning("Ignoring malformed X-OpenStack-Request-ID %r",
                        inbound[:80])


class AccessLog:
    """One log line per request, with its id and the caller's global one.

    Sits right inside :class:`RequestId`, which has set the ids.
    """

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        started = time.monotonic()
        status_holder = []

        def record_status(status, headers, exc_info=None):
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self.application(environ, record_status)
        finally:
            LOG.info('%s "%s %s" status %s in %.3fs (global request %s)',
                     environ.get(REQUEST_ID_ENV),
                     environ.get('REQUEST_METHOD'),
                     environ.get('PATH_INFO'),
                     status_holder[0].split()[0] if status_holder else '-',
                     time.monotonic() - started,
                     environ.get(GLOBAL_REQUEST_ID_ENV, '-'))


class Microversion:
    """Negotiate the microversion; stamp it on every response."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        request = webob.Request(environ)
        try:
            version = microversion.negotiate(request.headers)
        except exception.SnapdriverException as e:
            version = microversion.MIN_VERSION
            response = faults.fault_response(e.code, e.message)
        else:
            environ[VERSION_ENV] = version
            response = request.get_response(self.application)
        for key, value in microversion.response_headers(version).items():
            response.headers[key] = value
        return response(environ, start_response)


class RequestLimits:
    """Refuse requests whose size or encoding is wrong, before any reading.

    Query strings that are too long (400), a Content-Length that is not a
    number (400), chunked bodies (411: the console script's server cannot
    de-chunk them, and the compute API's clients always send a length), and
    paths or query strings that are not UTF-8 (400). Oversized bodies are
    refused (413) by :func:`body_size_limiter`, further in.
    """

    def __init__(self, application, max_query):
        self.application = application
        self.max_query = max_query

    def __call__(self, environ, start_response):
        response = self._check(environ)
        if response is not None:
            return response(environ, start_response)
        return self.application(environ, start_response)

    def _check(self, environ):
        try:
            environ.get('PATH_INFO', '').encode('latin-1').decode('utf-8')
        except UnicodeError:
            return faults.fault_response(
                400, "The request path is not valid UTF-8.")
        query = environ.get('QUERY_STRING', '')
        if len(query) > self.max_query:
            return faults.fault_response(
                400, "The query string is longer than %d bytes."
                % self.max_query)
        try:
            urllib.parse.unquote_to_bytes(
                query.encode('latin-1')).decode('utf-8')
        except UnicodeError:
            return faults.fault_response(
                400, "The query string is not valid UTF-8.")
        length = environ.get('CONTENT_LENGTH')
        if length:
            try:
                int(length)
            except ValueError:
                return faults.fault_response(
                    400, "Content-Length %r is not a number." % length[:40])
        elif 'chunked' in environ.get('HTTP_TRANSFER_ENCODING', '').lower():
            return faults.fault_response(
                411, "Chunked request bodies are not accepted: send the "
                     "body with a Content-Length.")
        return None


def body_size_limiter(application, max_body):
    """oslo.middleware's RequestBodySizeLimiter, at ``max_body`` bytes.

    A declared length over the limit is refused (413) before the body is
    read. The limit is snapdriver's ``[api] max_request_body_size``, handed
    to the middleware through a configuration of its own so that the
    service's ``[oslo_middleware]`` section is left alone. The 413 gets the
    fault body from :class:`faults.JsonErrors` (see
    :func:`too_large_message`).
    """
    limiter_conf = cfg.ConfigOpts()
    limiter = sizelimit.RequestBodySizeLimiter(application, limiter_conf)
    limiter_conf.set_override('max_request_body_size', max_body,
                              group='oslo_middleware')
    return limiter


def too_large_message(max_body):
    return "The request body is larger than %d bytes." % max_body


class NoAuth:
    """DEVELOPMENT ONLY: the compute API's noauth2 semantics.

    ``X-Auth-Token: <user>:<project>`` (or ``<user>``, project = user)
    authenticates without checking anything. User ``admin`` has the admin
    role; everyone else has ``member``. No token is a 401. Identity headers
    sent by the caller (keystonemiddleware's set: user, project, domain,
    roles, service identity and catalog, trust, system scope) are dropped
    before this middleware sets its own, so nobody can claim roles
    directly or point status reports at a Cinder of their choosing with
    a service catalog.
    """

    # Prefixes of WSGI environ keys; X-Auth-Token is not among them.
    _IDENTITY_PREFIXES = (
        'HTTP_X_USER', 'HTTP_X_PROJECT', 'HTTP_X_TENANT', 'HTTP_X_DOMAIN',
        'HTTP_X_ROLE', 'HTTP_X_SERVICE_', 'HTTP_X_IDENTITY_STATUS',
        'HTTP_X_IS_ADMIN_PROJECT', 'HTTP_X_SYSTEM_SCOPE', 'HTTP_X_TRUST',
        'HTTP_X_APPLICATION_CREDENTIAL', 'HTTP_X_AUTHORIZATION',
        'HTTP_X_STORAGE_TOKEN', 'HTTP_X_CATALOG')

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        for key in [k for k in environ
                    if k.startswith(self._IDENTITY_PREFIXES)]:
            del environ[key]
        token = environ.get('HTTP_X_AUTH_TOKEN', '').strip()
        if not token:
            response = faults.fault_response(
                401, "Authentication required: send X-Auth-Token "
                     "'<user>:<project>' (noauth development mode).")
            return response(environ, start_response)
        user, _, project = token.partition(':')
        project = project or user
        roles = 'admin,member' if user == 'admin' else 'member'
        environ.update({
            'HTTP_X_IDENTITY_STATUS': 'Confirmed',
            'HTTP_X_USER_ID': user,
            'HTTP_X_PROJECT_ID': project,
            'HTTP_X_ROLES': roles,
        })
        return self.application(environ, start_response)


class SkipPublicPaths:
    """Route public paths around the authentication middleware."""

    def __init__(self, application, authenticated):
        self.application = application
        self.authenticated = authenticated

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO', '/') in PUBLIC_PATHS:
            return self.application(environ, start_response)
        return self.authenticated(environ, start_response)
