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

"""What an API process knows of the agents: their latest reports.

Soft state, rebuilt within one report interval after a restart (and at
once: a starting API process asks every agent to report). Each API process
keeps its own; agents cast every report to all of them.
"""

import datetime
import threading
import time

from oslo_log import log
import oslo_messaging

from snapdriver.agent import rpcapi
from snapdriver import rpc

LOG = log.getLogger(__name__)

UP = 'up'
DOWN = 'down'


def _utc(seconds):
    return datetime.datetime.fromtimestamp(
        seconds, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


class AgentRegistry:
    """The latest report of every agent heard from.

    :param down_time: seconds of silence after which an agent is down.
    """

    def __init__(self, down_time, clock=time.monotonic, wall=time.time):
        self.down_time = down_time
        self._clock = clock
        self._wall = wall
        self._cond = threading.Condition()
        self._agents = {}      # host -> (report, received at: clock, wall)

    def update(self, report):
        with self._cond:
            known = report.host in self._agents
            self._agents[report.host] = (report, self._clock(), self._wall())
            self._cond.notify_all()
        if not known:
            LOG.info("Agent of host %s reported (%s driver, version %s)",
                     report.host, report.driver, report.version)

    def _up(self, entry):
        return self._clock() - entry[1] < self.down_time

    def agents(self):
        """Every agent heard from, by host name: dicts with ``host``,
        ``state`` (up or down), ``last_seen`` (UTC), ``driver``,
        ``version`` and ``volumes`` (how many; None when its driver cannot
        tell)."""
        with self._cond:
            entries = sorted(self._agents.items())
        return [{
            'host': host,
            'state': UP if self._up(entry) else DOWN,
            'last_seen': _utc(entry[2]),
            'driver': entry[0].driver,
            'version': entry[0].version,
            'volumes': (None if entry[0].volumes is None
                        else len(entry[0].volumes)),
        } for host, entry in entries]

    def silent_since(self, host):
        """When a host's agent, heard from before, went silent (UTC text),
        if it is down; None when it is up or was never heard from."""
        with self._cond:
            entry = self._agents.get(host)
        if entry is None or self._up(entry):
            return None
        return _utc(entry[2])

    def up_hosts(self):
        with self._cond:
            return sorted(host for host, entry in self._agents.items()
                          if self._up(entry))

    def hosts_with(self, volume_id):
        """The hosts of the agents up whose driver sees ``volume_id``."""
        with self._cond:
            return sorted(host for host, entry in self._agents.items()
                          if self._up(entry) and entry[0].volumes
                          and volume_id in entry[0].volumes)

    def last_down_host_with(self, volume_id):
        """The host of the agent down whose last report named
        ``volume_id`` (the one heard from last, if several); None when no
        agent down reported it."""
        with self._cond:
            down = [(entry[1], host) for host, entry in self._agents.items()
                    if not self._up(entry) and entry[0].volumes
                    and volume_id in entry[0].volumes]
        return max(down)[1] if down else None

    def wait_for_fresh(self, since, timeout):
        """Wait until every agent up has reported after ``since`` (this
        registry's clock), ``timeout`` seconds at most.

        :returns: True when they all did.
        """
        deadline = self._clock() + timeout

        def fresh():
            return all(entry[1] >= since for entry in self._agents.values()
                       if self._up(entry))

        with self._cond:
            return self._cond.wait_for(
                fresh, max(0.0, deadline - self._clock()))

    def now(self):
        return self._clock()


class ReportsEndpoint:
    """Where agents' reports arrive in an API process."""

    target = oslo_messaging.Target(version=rpcapi.VERSION)

    def __init__(self, registry):
        self.registry = registry

    def agent_report(self, context, report):
        self.registry.update(report)


class ReportListener:
    """Listens for agents' reports (fanout) in an API process, and asks
    every agent to report at once when it starts.

    oslo.messaging waits for the broker as long as it cannot be reached
    when a process first connects, whatever a call's ``retry``: the
    listener connects in a thread of its own, so that the process serves
    meanwhile (a 503 for what needs the agents), and :attr:`connected` is
    set once the listener and the process's calls (its reply queue) have
    reached the broker.
    """

    def __init__(self, registry, agents_api):
        self.registry = registry
        self._agents_api = agents_api
        self._server = None
        self._lock = threading.Lock()
        self._listening = False
        self._stopped = False
        self.connected = threading.Event()

    def start(self):
        """Returns at once; see the class."""
        target = oslo_messaging.Target(topic=rpc.api_topic(),
                                       server=rpc.api_server_name())
        self._server = rpc.get_server(target,
                                      [ReportsEndpoint(self.registry)])
        threading.Thread(target=self._connect, name='snapdriver-reports',
                         daemon=True).start()

    def _connect(self):
        started = time.monotonic()
        try:
            self._server.start()
            with self._lock:
                if self._stopped:
                    self._server.stop()
                    return
                self._listening = True
            self._agents_api.connect()
        except Exception:
            LOG.exception("Cannot listen for the agents' reports; requests "
                          "that need the agents are answered 503")
            return
        self.connected.set()
        LOG.info("Listening for the agents' reports on topic %s (the "
                 "broker answered after %.1f s)", rpc.api_topic(),
                 time.monotonic() - started)
        self.refresh()

    def refresh(self):
        """Ask every agent to report now; the answers come in as casts."""
        try:
            self._agents_api.report_now(None)
        except oslo_messaging.MessagingException as error:
            LOG.warning("Cannot ask the agents to report (%s)", error)

    def stop(self):
        with self._lock:
            self._stopped = True
            listening = self._listening
        if listening:
            self._server.stop()
