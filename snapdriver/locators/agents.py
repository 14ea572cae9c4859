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

"""The ``agents`` locator: the hosts whose agents report the volume.

Every agent reports the volume serials its driver sees (at start, every
``[agent] report_interval`` seconds, and whenever an API process asks).
When no agent that is up reports a volume, the locator asks all of them
to report at once and waits for their answers (up to
:data:`REFRESH_WAIT` seconds) before it says the volume is attached
nowhere: a volume attached a moment ago is found. It does the same for a
volume whose reported host turned out wrong (:meth:`AgentsLocator.forget`:
the agent there refused it, the volume having moved since its report).
A volume no agent up reports, last reported by an agent that is down
now, is on that agent's host: the request is refused as sent to an agent
down (a 503 naming the host), not as for a volume attached nowhere (400).
"""

import threading

from oslo_log import log

from snapdriver import exception
from snapdriver.locators import base

LOG = log.getLogger(__name__)

#: Seconds to wait for fresh reports before giving up on a volume.
REFRESH_WAIT = 2.0


class AgentsLocator(base.HostLocator):

    def __init__(self, registry, agents):
        self._registry = registry
        self._agents = agents
        self._lock = threading.Lock()
        self._stale = set()     # volume ids whose reports were wrong

    def locate(self, context, volume_id):
        with self._lock:
            stale = volume_id in self._stale
            self._stale.discard(volume_id)
        hosts = [] if stale else self._registry.hosts_with(volume_id)
        if not hosts:
            hosts = self._refreshed(context, volume_id)
        if not hosts:
            # Last seen on a host whose agent is down: that host, which
            # the caller refuses with the 503 that names it, not a volume
            # attached nowhere.
            down = self._registry.last_down_host_with(volume_id)
            if down is not None:
                return down
            raise exception.VolumeNotInRegion(
                volume_id=volume_id, agents=len(self._registry.up_hosts()))
        if len(hosts) > 1:
            raise exception.VolumeOnSeveralHosts(volume_id=volume_id,
                                                 hosts=', '.join(hosts))
        return hosts[0]

    def _refreshed(self, context, volume_id):
        since = self._registry.now()
        try:
            self._agents.report_now(context)
        except Exception as error:
            # Not knowing is not "attached nowhere" (a 400).
            LOG.warning("Cannot ask the agents to report (%s)", error)
            raise exception.AgentUnavailable(
                reason="No agent up has reported volume %s, and the agents "
                "cannot be asked for fresh reports: the message broker "
                "cannot be reached ([DEFAULT] transport_url); nothing was "
                "done." % volume_id)
        self._registry.wait_for_fresh(since, REFRESH_WAIT)
        return self._registry.hosts_with(volume_id)

    def forget(self, volume_id):
        # The next locate() of the volume asks for fresh reports first.
        with self._lock:
            self._stale.add(volume_id)
        return True
