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

"""oslo.messaging for unit tests: the in-process ``fake://`` transport.

oslo.messaging registers its options on the global configuration object
and :mod:`snapdriver.rpc` keeps one transport per process; the fake
driver keeps its queues in a class attribute. :class:`FakeTransport`
gives a test all three fresh, and closes them at the end, so no test sees
another's messages and nothing opens a socket.
"""

import fixtures
import oslo_messaging
from oslo_messaging import conffixture

from snapdriver.conf import CONF
from snapdriver import rpc


class FakeTransport(fixtures.Fixture):
    """``[DEFAULT] transport_url = fake:/`` and a fresh process transport
    for one test; RPC servers started with :meth:`serve` are stopped at
    the end (not waited for: the server's idle workers take a second to
    see that they are done, and nothing reaches them any more)."""

    def _setUp(self):
        rpc.set_defaults()
        self.useFixture(conffixture.ConfFixture(CONF, transport_url='fake:/'))
        # Whatever an earlier test left behind is not ours.
        self.useFixture(fixtures.MonkeyPatch('snapdriver.rpc._transport',
                                             None))
        self.addCleanup(rpc.cleanup)
        self.transport = rpc.get_transport()

    def serve(self, target, endpoints):
        """Start an RPC server (snapdriver's serializer, threading
        executor) on ``target``; :returns: the server."""
        server = rpc.get_server(target, endpoints)
        server.start()
        self.addCleanup(server.stop)
        return server


def target(topic, server=None):
    return oslo_messaging.Target(topic=topic, server=server)
