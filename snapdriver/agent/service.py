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

"""An agent: the operation manager of one host, served over RPC, and its
reports to the API tier."""

import threading
import time

from oslo_log import log
import oslo_messaging

from snapdriver.agent import endpoint as endpoint_mod
from snapdriver import objects
from snapdriver import rpc
from snapdriver import version

LOG = log.getLogger(__name__)


class Agent:
    """Serves ``manager`` as host ``host`` on topic ``snapdriver-agent``,
    and reports to the API tier every ``interval`` seconds and whenever
    an API process asks (``report_now``).

    :param manager: an :class:`snapdriver.operations.manager.
        OperationManager` (its driver is the one reported).
    """

    def __init__(self, manager, host, interval):
        self.manager = manager
        self.host = host
        self.interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._reporter = None
        self._unreachable_since = None
        transport = rpc.get_transport()
        self._api = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic=rpc.api_topic()),
            serializer=rpc.Serializer())
        # Made here, started by start(): a configuration that cannot work
        # fails before the caller takes up the journal's operations.
        self._server = rpc.get_server(
            oslo_messaging.Target(topic=rpc.agent_topic(), server=self.host),
            [endpoint_mod.AgentEndpoint(self)])

    def report(self):
        """This agent as the API tier sees it."""
        driver = self.manager.driver
        try:
            volumes = driver.attached_volumes()
        except Exception as error:
            LOG.warning("The %s driver could not list the attached volumes "
                        "(%s); reporting none", driver.name, error)
            volumes = None
        return objects.AgentReport(
            host=self.host, driver=driver.name,
            version=version.version_string(),
            volumes=None if volumes is None else tuple(volumes),
            sent_at=time.time())

    def report_soon(self):
        self._wake.set()

    def start(self):
        """Listen on the agent topic and start reporting (the RPC server
        connects to the broker, and keeps reconnecting, in its own
        threads). Take up the journal's unfinished operations first: one
        accepted before recovery read the journal would run twice."""
        self._server.start()
        self._reporter = threading.Thread(
            target=self._report_loop, name='snapdriver-agent-report',
            daemon=True)
        self._reporter.start()
        LOG.info("Agent of host %s serving topic %s with the %s driver",
                 self.host, rpc.agent_topic(), self.manager.driver.name)

    def stop(self):
        self._stopping.set()
        self._wake.set()
        self._server.stop()

    def _report_loop(self):
        while not self._stopping.is_set():
            self._send_report()
            self._wake.wait(self.interval)
            self._wake.clear()

    def _send_report(self):
        report = self.report()
        try:
            self._api.prepare(fanout=True, retry=0).cast(
                None, 'agent_report', report=report)
        except oslo_messaging.MessagingException as error:
            if self._unreachable_since is None:
                self._unreachable_since = time.monotonic()
                LOG.warning("Cannot report to the API tier (%s); trying "
                            "again every %d s", error, self.interval)
            return
        if self._unreachable_since is not None:
            LOG.info("Reporting to the API tier again after %.0f s",
                     time.monotonic() - self._unreachable_since)
            self._unreachable_since = None
