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

"""The server side of the agents' RPC API (see :mod:`.rpcapi`)."""

import dataclasses
import time

from oslo_log import log
import oslo_messaging

from snapdriver.agent import rpcapi
from snapdriver import exception

LOG = log.getLogger(__name__)


class AgentEndpoint:
    """What an agent answers; ``agent`` is its :class:`.service.Agent`."""

    target = oslo_messaging.Target(version=rpcapi.VERSION)

    def __init__(self, agent, clock=time.time):
        self.agent = agent
        self._clock = clock

    def _mine(self, view):
        return dataclasses.replace(view, host=self.agent.host)

    @oslo_messaging.expected_exceptions(exception.SnapdriverException)
    def accept(self, context, request, deadline=None):
        """Validate, journal and queue ``request``, as a single-process
        snapdriver does; refuse it unseen when it comes after
        ``deadline`` (the API tier answered 503 already)."""
        if deadline is not None:
            late = self._clock() - deadline
            if late > 0:
                LOG.warning("Refusing the %s request of snapshot %s: it "
                            "came %.1f s after its deadline (the API tier "
                            "stopped waiting for it)", request.action,
                            request.snapshot_id, late)
                raise exception.RequestExpired(host=self.agent.host,
                                               late=late)
        return self._mine(self.agent.manager.accept(context, request))

    @oslo_messaging.expected_exceptions(exception.SnapdriverException)
    def query(self, context, snapshot_id):
        return [self._mine(view) for view in
                self.agent.manager.query(context, snapshot_id)]

    def ping(self, context):
        return self.agent.report()

    def report_now(self, context):
        self.agent.report_soon()
