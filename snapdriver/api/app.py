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

"""Build the WSGI application: Pecan inside, middleware in code."""

from oslo_log import log
from oslo_middleware import http_proxy_to_wsgi
import pecan
import webob

from snapdriver.api import argspec
from snapdriver.api import faults
from snapdriver.api import health
from snapdriver.api import metrics
from snapdriver.api import hooks
from snapdriver.api import middleware
from snapdriver.conf import CONF
from snapdriver import exception

LOG = log.getLogger(__name__)

NOAUTH_WARNING = (
    "auth_strategy = noauth: snapdriver TRUSTS ANY TOKEN of the form "
    "<user>:<project>, and user 'admin' is an administrator. This is a "
    "DEVELOPMENT mode; never use it where anything but loopback can reach "
    "the API.")


class _Request(pecan.Request):
    """What Pecan reads of a request, narrowed to what this API means.

    Pecan would decode a JSON body (or a form) into keyword arguments, and
    answer a body that is not UTF-8 with a bare 400: controllers parse and
    validate bodies themselves, with messages that name what is wrong. And
    the API speaks JSON only: like the compute API it answers in JSON
    whatever ``Accept`` says, rather than a 406.
    """

    @property
    def json(self):
        return {}

    @property
    def POST(self):
        # Pecan reads the request's parameters, form fields included, to
        # route it; a form body (a multipart one with a broken boundary,
        # say) is not this API's business and must not make a 500.
        return webob.multidict.NoVars('form bodies are not read')

    @property
    def accept(self):
        return webob.acceptparse.create_accept_header('*/*')


def _authenticate(application):
    if CONF.auth_strategy == 'noauth':
        for _ in range(3):
            LOG.warning(NOAUTH_WARNING)
        return middleware.NoAuth(application)
    # Imported only when used: it brings keystoneclient, oslo.cache and
    # dogpile (several MiB that a noauth process would keep for nothing).
    from keystonemiddleware import auth_token

    protocol = auth_token.AuthProtocol(application,
                                       {'oslo_config_config': CONF})
    # auth_token registers its options as it is built; without service
    # credentials it cannot validate a single token and every request
    # would fail, so refuse to start instead.
    if not CONF.keystone_authtoken.auth_type:
        raise exception.ConfigurationError(
            reason="auth_strategy = keystone needs service credentials in "
                   "[keystone_authtoken] (auth_type, auth_url, username, "
                   "password, ...) to validate tokens; for development "
                   "only, auth_strategy = noauth")
    return protocol


def setup_app(operations):
    """The API's WSGI application.

    :param operations: an :class:`snapdriver.operations.api.OperationsAPI`.
    """
    from snapdriver.api.controllers import root

    argspec.install()
    application = pecan.make_app(
        root.RootController(),
        hooks=[hooks.ContextHook(), hooks.OperationsHook(operations),
               hooks.FaultHook()],
        request_cls=_Request,
        force_canonical=False,
        guess_content_type_from_ext=False,
        debug=False)
    max_body = CONF.api.max_request_body_size
    application = middleware.body_size_limiter(middleware.SkipPublicPaths(
        application, _authenticate(application)), max_body)
    application = faults.JsonErrors(
        application, messages={413: middleware.too_large_message(max_body)})
    application = health.Routes(application,
                                health.install(operations.health_checks()))
    application = middleware.RequestLimits(
        application, CONF.api.max_query_string_length)
    application = middleware.Microversion(application)
    # Honours X-Forwarded-* only with [oslo_middleware]
    # enable_proxy_headers_parsing = true (behind a TLS-terminating proxy).
    application = http_proxy_to_wsgi.HTTPProxyToWSGI(application, CONF)
    application = middleware.AccessLog(application)
    application = middleware.RequestId(application)
    application = metrics.CountRequests(application)
    return faults.FaultWrapper(application)
