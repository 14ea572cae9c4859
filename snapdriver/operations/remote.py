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

"""The operations API of the API tier (``[api] dispatch = agents``).

Accept: the host locator names the volume's host, and that host's agent
validates, journals and queues the request exactly as a single-process
snapdriver does, before the caller gets its answer. The caller gets the
agent's answer: the same 200/204, or the same 400/409 with the same text.
When the agent cannot answer, the caller gets a 503 that says why, and the
request is never carried out later (see :class:`AgentAPI`).

Query: the operations of a snapshot id are on the host that ran them. The
host this process sent the snapshot to is remembered; otherwise every agent
that is up is asked, in parallel.
"""

import collections
import concurrent.futures
import threading
import time

from oslo_log import log
import oslo_messaging

from snapdriver import exception
from snapdriver.operations import api
from snapdriver import rpc

LOG = log.getLogger(__name__)

#: Snapshot ids whose host this process remembers (oldest first out).
REMEMBERED = 10000
#: Agents asked at once by a query that does not know the host.
QUERY_FANOUT = 16
#: The deadline sent with a request is this many seconds before this
#: process stops waiting (a quarter of [api] agent_timeout at most): an
#: agent that starts to accept a request just before its deadline has
#: that long to answer before the caller is told that nothing was done
#: (and its clock may be behind by as much).
ACCEPT_MARGIN = 1.0


class RemoteOperationsAPI(api.OperationsAPI):
    """:param locator: a :class:`snapdriver.locators.base.HostLocator`.
    :param agents: a :class:`snapdriver.agent.rpcapi.AgentAPI`.
    :param registry: the :class:`snapdriver.agent.registry.AgentRegistry`.
    :param connected: a :class:`threading.Event` set once this process has
        reached the broker (:attr:`snapdriver.agent.registry.
        ReportListener.connected`); until then every request is a 503 at
        once. None: connected from the start.
    """

    def __init__(self, locator, agents, registry, clock=time.time,
                 connected=None):
        self._locator = locator
        self._agents = agents
        self._registry = registry
        self._clock = clock
        self._connected = connected
        self._lock = threading.Lock()
        self._hosts = collections.OrderedDict()   # snapshot id -> host

    def health_checks(self):
        return {'broker': self._check_broker}

    def _check_broker(self):
        """This process reached the broker, and the broker's port answers
        now."""
        if self._connected is not None and not self._connected.is_set():
            raise exception.AgentUnavailable(
                reason="this API process has not reached the message broker "
                "([DEFAULT] transport_url) yet")
        rpc.probe_broker()

    # accept

    def _check_connected(self):
        # Before the process first reached the broker, oslo.messaging
        # would wait for it, whatever the call's retry.
        if self._connected is not None and not self._connected.is_set():
            raise exception.AgentUnavailable(
                reason="The message broker cannot be reached ([DEFAULT] "
                "transport_url): this API process has not reached it "
                "since it started; nothing was done.")

    def accept(self, context, request):
        self._check_connected()
        host = self._locator.locate(context, request.volume_id)
        try:
            view = self._accept_on(context, host, request)
        except exception.VolumeNotAttached:
            # The locator may have had it from an old report or a cache.
            if not self._locator.forget(request.volume_id):
                raise
            again = self._locator.locate(context, request.volume_id)
            if again == host:
                raise
            LOG.info("Volume %s is not on host %s after all; trying host %s",
                     request.volume_id, host, again)
            host = again
            view = self._accept_on(context, host, request)
        self._remember(request.snapshot_id, host)
        return view

    def _accept_on(self, context, host, request):
        LOG.info("Sending the %s request of snapshot %s (volume %s) to the "
                 "agent of host %s (%s locator)", request.action,
                 request.snapshot_id, request.volume_id, host,
                 self._locator.name)
        silent = self._registry.silent_since(host)
        if silent is not None:
            raise exception.AgentUnavailable(
                reason="The snapdriver agent of host %s has not reported "
                "since %s (over [api] agent_down_time = %d s ago): it is "
                "down; nothing was sent to it." % (
                    host, silent, self._registry.down_time))
        timeout = self._agents.timeout
        deadline = self._clock() + timeout - min(ACCEPT_MARGIN,
                                                 timeout / 4.0)
        return self._ask(host, self._agents.accept, context, host, request,
                         deadline)

    def _ask(self, host, call, *args, **kwargs):
        """``call``, with messaging failures turned into 503s.

        An agent's refusal arrives as its own exception and passes. Any
        other exception of the agent passes too: a builtin one rebuilt,
        one of another module (the journal's database, a library) as a
        RemoteError; the caller gets the 500 a single process gives, and
        the agent's traceback stays in the logs.
        """
        timeout = kwargs.get('timeout') or self._agents.timeout
        try:
            return call(*args, **kwargs)
        except oslo_messaging.RemoteError as error:
            LOG.error("The snapdriver agent of host %s failed to handle the "
                      "%s call: %s: %s (its log has the traceback)", host,
                      getattr(call, '__name__', call), error.exc_type,
                      error.value)
            raise
        except oslo_messaging.MessageUndeliverable:
            if host in self._registry.up_hosts():
                # Its queue is gone with a broker that restarted, and its
                # server has yet to reconnect (oslo.messaging backs off up
                # to [oslo_messaging_rabbit] rabbit_interval_max).
                raise exception.AgentUnavailable(
                    reason="The snapdriver agent of host %s reports to the "
                    "API tier but takes no requests at the moment (it is "
                    "reconnecting to the message broker); nothing was "
                    "done." % host)
            raise exception.AgentUnavailable(
                reason="No snapdriver agent listens for host %s: start "
                "snapdriver-agent there with [DEFAULT] host = %s (it must "
                "equal the host name the volume was attached under)."
                % (host, host))
        except oslo_messaging.MessagingTimeout:
            raise exception.AgentUnavailable(
                reason="The snapdriver agent of host %s did not answer "
                "within %d s ([api] agent_timeout); nothing was done, and "
                "the request will not be carried out later."
                % (host, timeout))
        except oslo_messaging.MessagingException as error:
            # The detail names the broker's address: for the log only.
            LOG.warning("Cannot send the %s call to the agent of host %s: "
                        "%s: %s", getattr(call, '__name__', call), host,
                        type(error).__name__, error)
            raise exception.AgentUnavailable(
                reason="The message broker cannot be reached ([DEFAULT] "
                "transport_url); nothing was done.")

    def _remember(self, snapshot_id, host):
        with self._lock:
            self._hosts[snapshot_id] = host
            self._hosts.move_to_end(snapshot_id)
            while len(self._hosts) > REMEMBERED:
                self._hosts.popitem(last=False)

    def agents(self, context):
        return self._registry.agents()

    # query

    def query(self, context, snapshot_id):
        self._check_connected()
        with self._lock:
            host = self._hosts.get(snapshot_id)
        if host is not None:
            try:
                return self._ask(host, self._agents.query, context, host,
                                 snapshot_id)
            except exception.OperationNotFound:
                pass    # trimmed there, or an older run elsewhere
        return self._query_everywhere(context, snapshot_id)

    def _query_everywhere(self, context, snapshot_id):
        hosts = self._registry.up_hosts()
        found, silent = [], []

        def one(host):
            try:
                return self._ask(host, self._agents.query, context, host,
                                 snapshot_id)
            except exception.OperationNotFound:
                return []

        with concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, min(QUERY_FANOUT, len(hosts))),
                thread_name_prefix='snapdriver-query') as pool:
            futures = {pool.submit(one, host): host for host in hosts}
            for future in concurrent.futures.as_completed(futures):
                try:
                    found.extend(future.result())
                except (exception.AgentUnavailable,
                        oslo_messaging.RemoteError):
                    silent.append(futures[future])
        if found:
            found.sort(key=lambda view: (view.created_at is None,
                                         view.created_at))
            self._remember(snapshot_id, found[-1].host)
            return found
        if silent:
            raise exception.AgentUnavailable(
                reason="Snapshot %s has no operation on the hosts that "
                "answered; the agents of %s did not answer."
                % (snapshot_id, ', '.join(sorted(silent))))
        raise exception.OperationNotFound(snapshot_id=snapshot_id)
