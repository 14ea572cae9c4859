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

"""The agents' RPC API, as the API tier calls it.

Every agent serves topic ``snapdriver-agent`` (``<control_exchange>-agent``)
under its ``[DEFAULT] host``
(:mod:`snapdriver.agent.endpoint`); the API tier reaches it with
:class:`AgentAPI`.

API version history:

* 1.0 - ``accept(request, deadline)``, ``query(snapshot_id)``, ``ping()``;
  ``report_now()`` (cast to every agent at once).

A server answers any 1.x call it knows; a client sends the lowest version
a call needs, so that agents and API processes of different releases work
together during a rolling upgrade (``can_send_version``).
"""

import oslo_messaging

from snapdriver import rpc

VERSION = '1.0'
#: A server name no agent has (a host name has no '+'); see
#: :meth:`AgentAPI.connect`.
CONNECT_HOST = 'snapdriver+connect'


class AgentAPI:
    """Client side of the agents' RPC API.

    :param timeout: seconds a call waits for the agent's answer.

    Calls are published with the mandatory flag: a host whose queue does
    not exist (no agent ever listened under that name) fails at once with
    ``MessageUndeliverable`` instead of waiting for the timeout; and with
    no retry, so that a broker that cannot be reached fails the call at
    once too (``MessageDeliveryFailure``). A call to an agent that does
    not answer in time raises ``MessagingTimeout``, and its message expires
    in the broker.
    """

    def __init__(self, timeout):
        self.timeout = timeout
        target = oslo_messaging.Target(topic=rpc.agent_topic(),
                                       version=VERSION)
        transport = rpc.get_transport()
        self._client = oslo_messaging.get_rpc_client(
            transport, target, serializer=rpc.Serializer(),
            transport_options=oslo_messaging.TransportOptions(
                at_least_once=True))
        # Reports and report_now go to whoever listens, or to nobody.
        self._fanout = oslo_messaging.get_rpc_client(
            transport, target, serializer=rpc.Serializer())

    def connect(self):
        """Set up this process's connection to the broker and its reply
        queue, waiting for the broker as long as it cannot be reached:
        oslo.messaging does both at a process's first call, retrying
        whatever the call's ``retry``. It calls a host that no agent
        serves (at once ``MessageUndeliverable`` on a broker).
        """
        try:
            self._call(None, CONNECT_HOST, 'ping', timeout=0.5)
        except (oslo_messaging.MessageUndeliverable,
                oslo_messaging.MessagingException):
            # (MessageUndeliverable is not a MessagingException.)
            pass

    def _call(self, context, host, method, timeout=None, **kwargs):
        client = self._client.prepare(server=host, retry=0,
                                      timeout=timeout or self.timeout)
        return client.call(context, method, **kwargs)

    def accept(self, context, host, request, deadline):
        """Have the agent of ``host`` validate, journal and queue
        ``request``, unless it gets it after ``deadline`` (seconds since
        the epoch).

        :returns: an :class:`snapdriver.objects.OperationView`.
        """
        return self._call(context, host, 'accept', request=request,
                          deadline=deadline)

    def query(self, context, host, snapshot_id, timeout=None):
        """:returns: the operations of ``snapshot_id`` on ``host``, as
            :class:`snapdriver.objects.OperationView`, oldest first."""
        return self._call(context, host, 'query', timeout=timeout,
                          snapshot_id=snapshot_id)

    def ping(self, context, host, timeout=None):
        """:returns: the agent's :class:`snapdriver.objects.AgentReport`."""
        return self._call(context, host, 'ping', timeout=timeout)

    def report_now(self, context):
        """Ask every agent to report to the API tier at once (fanout)."""
        self._fanout.prepare(fanout=True, retry=0).cast(context,
                                                        'report_now')
