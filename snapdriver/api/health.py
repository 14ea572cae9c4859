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

"""``/healthcheck``: oslo.middleware's Healthcheck, with checks of
snapdriver's own as its plugins.

The plugins (entry points in ``oslo.middleware.healthcheck``, named in
``[healthcheck] backends``) look at what this process depends on:

``snapdriver_driver``
    the hypervisor answers (libvirtd on ``[libvirt] connection_uri``);
``snapdriver_journal``
    the journal takes a write;
``snapdriver_broker``
    in an API tier (``[api] dispatch = agents``), this process reached the
    message broker and its port answers now.

A check that does not apply to the process (no journal in an API tier, no
broker in a single process) passes, saying so. oslo.middleware's own
``disable_by_file`` plugin drains a process: a 503 while the file exists.

Without a token, ``GET /healthcheck`` is public and short: 200 ``OK``, or
503 with each failed check's one-line reason. With a token of a caller that
policy rule ``snapdriver:healthcheck:detail`` allows (admin), it is the
detailed view: each check's reason and details (the error as the
hypervisor, database or broker gave it), and the process's threads.
"""

from oslo_middleware import healthcheck
from oslo_middleware.healthcheck import pluginbase

from snapdriver.conf import CONF

PATH = '/healthcheck'

# What this process's checks look at: {name: callable raising when
# unhealthy}, and the two views; set by install() when the application is
# built.
_CHECKS = {}
_VIEWS = {}


def install(checks):
    """Make ``checks`` (:meth:`OperationsAPI.health_checks`) the ones the
    plugins run.

    :returns: the public view's WSGI application (see :class:`Routes`).
    """
    _CHECKS.clear()
    _CHECKS.update(checks)
    _VIEWS['public'], _VIEWS['detailed'] = applications()
    return _VIEWS['public']


def detailed_application():
    return _VIEWS['detailed']


class Routes:
    """``GET /healthcheck`` without a token: the public view, before any
    authentication. With one, the request goes on, to be authenticated
    and authorised for the detailed view."""

    def __init__(self, application, public):
        self.application = application
        self.public = public

    def __call__(self, environ, start_response):
        if (environ.get('PATH_INFO') == PATH
                and not environ.get('HTTP_X_AUTH_TOKEN')):
            return self.public(environ, start_response)
        return self.application(environ, start_response)


class _Check(pluginbase.HealthcheckBaseExtension):
    """A plugin running one of this process's checks."""

    #: The key in the checks, and the words for it.
    check = None
    what = None

    def healthcheck(self, server_port):
        run = _CHECKS.get(self.check)
        if run is None:
            return pluginbase.HealthcheckResult(
                available=True, reason='%s: not used by this process'
                % self.what)
        try:
            run()
        except Exception as error:
            return pluginbase.HealthcheckResult(
                available=False, reason='%s: failing' % self.what,
                details='%s: %s' % (type(error).__name__, error))
        return pluginbase.HealthcheckResult(available=True,
                                            reason='%s: OK' % self.what)


class DriverCheck(_Check):
    check = 'driver'
    what = 'hypervisor'


class JournalCheck(_Check):
    check = 'journal'
    what = 'journal'


class BrokerCheck(_Check):
    check = 'broker'
    what = 'message broker'


def applications():
    """(the public view, the detailed view): oslo.middleware Healthcheck
    applications on ``[healthcheck]``'s options, the first never detailed,
    the second always (whatever ``[healthcheck] detailed`` says: who sees
    it is policy's business here)."""
    public = healthcheck.Healthcheck(None, CONF)
    detailed = healthcheck.Healthcheck(None, CONF)
    # oslo.middleware reads "detailed" once, into this attribute; its
    # per-instance override would change the global configuration.
    public._show_details = False
    detailed._show_details = True
    return public, detailed
