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

"""oslo.messaging for the API tier and the agents (``dispatch = agents``).

Two topics, named after ``[DEFAULT] control_exchange`` (``snapdriver`` by
default, see :func:`agent_topic`):

``snapdriver-agent``
    each agent's RPC server, ``server = [DEFAULT] host``: the API tier
    *calls* it (``accept``, ``query``, ``ping``; see
    :mod:`snapdriver.agent.rpcapi`), and *casts* ``report_now`` to all of
    them at once (fanout).
``snapdriver-api``
    every API process listens here, each under a server name of its own;
    agents *cast* their :class:`snapdriver.objects.AgentReport` to all of
    them (fanout). Reports are soft state: an API process that starts asks
    every agent to report at once, and forgets nothing it needs.

What travels: the request context (:class:`snapdriver.context.
RequestContext`) and snapdriver's typed objects, tagged with their class
by :class:`Serializer`. Exceptions from :mod:`snapdriver.exception` raised
in an agent are raised again in the API process with their class, so a
caller gets the same 400 or 409 with the same text as from a
single-process service.
"""

import os
import socket
import uuid

from oslo_log import log
import oslo_messaging

from snapdriver.conf import CONF
from snapdriver import context as context_mod
from snapdriver import objects

LOG = log.getLogger(__name__)

#: Exceptions an agent may raise that the API process raises again.
ALLOWED_EXMODS = ['snapdriver.exception']

_OBJECTS = {cls.__name__: cls for cls in (
    objects.CreateRequest, objects.DeleteRequest, objects.OperationView,
    objects.AgentReport)}
_TAG = 'snapdriver_object'

_transport = None


def register_opts():
    """oslo.messaging's options (``[DEFAULT] transport_url`` among them),
    without making a transport."""
    oslo_messaging.get_rpc_transport  # noqa: B018 (the import registers)
    from oslo_messaging import opts as messaging_opts
    for group, opts in messaging_opts.list_opts():
        CONF.register_opts(opts, group=group)


def get_transport():
    """The process's RPC transport, from ``[DEFAULT] transport_url``.

    oslo.messaging registers its options on the global configuration
    object, which is snapdriver's too.
    """
    global _transport
    if _transport is None:
        _transport = oslo_messaging.get_rpc_transport(
            CONF, allowed_remote_exmods=ALLOWED_EXMODS)
    return _transport


def cleanup():
    """Close the transport (tests, shutdown)."""
    global _transport
    if _transport is not None:
        _transport.cleanup()
        _transport = None


def probe_broker(timeout=2.0):
    """Open (and close) a TCP connection to each host of ``[DEFAULT]
    transport_url``; the first that answers will do.

    :raises: OSError naming the hosts when none answers.
    """
    url = oslo_messaging.TransportURL.parse(CONF, CONF.transport_url)
    errors = []
    for host in url.hosts:
        address = (host.hostname, host.port or 5672)
        try:
            socket.create_connection(address, timeout=timeout).close()
            return
        except OSError as error:
            errors.append('%s:%s: %s' % (address + (error,)))
    raise OSError("the message broker does not answer: %s"
                  % ('; '.join(errors) or 'no host in [DEFAULT] '
                     'transport_url'))


def set_defaults(control_exchange='snapdriver'):
    """The exchange snapdriver's topics live in (before the transport is
    made)."""
    oslo_messaging.set_transport_defaults(control_exchange)


def agent_topic():
    """The agents' topic: ``<control_exchange>-agent``
    (``snapdriver-agent`` by default).

    oslo.messaging's rabbit driver names a topic's fanout exchange after
    the topic alone (``<topic>_fanout``), whatever the control exchange:
    two regions (or two test runs) on one virtual host whose topics had
    the same name would hear each other's reports, and list, and send
    requests to, each other's agents.
    """
    get_transport()     # registers [DEFAULT] control_exchange
    return '%s-agent' % CONF.control_exchange


def api_topic():
    """The API processes' topic: ``<control_exchange>-api``
    (``snapdriver-api`` by default; see :func:`agent_topic`)."""
    get_transport()
    return '%s-api' % CONF.control_exchange


def api_server_name():
    """A server name of this API process's own on the ``snapdriver-api``
    topic: the host, the process and a random part, so that two processes
    on one host (or a restarted one) never share a queue."""
    return '%s.%d.%s' % (CONF.host, os.getpid(), uuid.uuid4().hex[:8])


class Serializer(oslo_messaging.Serializer):
    """snapdriver's objects as tagged dicts; the context as a dict."""

    def serialize_entity(self, ctxt, entity):
        if _OBJECTS.get(type(entity).__name__) is type(entity):
            return {_TAG: type(entity).__name__, 'data': entity.to_dict()}
        if isinstance(entity, (list, tuple)):
            return [self.serialize_entity(ctxt, item) for item in entity]
        return entity

    def deserialize_entity(self, ctxt, entity):
        if isinstance(entity, dict) and _TAG in entity:
            cls = _OBJECTS.get(entity[_TAG])
            if cls is None:
                raise ValueError("unknown object %r over RPC" % entity[_TAG])
            return cls.from_dict(entity['data'])
        if isinstance(entity, list):
            return [self.deserialize_entity(ctxt, item) for item in entity]
        return entity

    def serialize_context(self, ctxt):
        return ctxt.to_dict() if ctxt is not None else {}

    def deserialize_context(self, ctxt):
        if not ctxt:
            return None
        return context_mod.RequestContext.from_dict(ctxt)


def get_server(target, endpoints):
    """An RPC server (threading executor) on the process's transport."""
    return oslo_messaging.get_rpc_server(
        get_transport(), target, endpoints, executor='threading',
        serializer=Serializer())
