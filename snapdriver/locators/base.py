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

"""The contract of a host locator."""

import abc

NAMESPACE = 'snapdriver.host_locators'


class HostLocator(abc.ABC):
    """Finds the host whose agent must carry out a request.

    The constructor gets ``registry`` (the API process's
    :class:`snapdriver.agent.registry.AgentRegistry`) and ``agents`` (its
    :class:`snapdriver.agent.rpcapi.AgentAPI`) as keyword arguments.

    A locator may be wrong (a stale cache, a volume that moved): the agent
    it names still checks the request against its own host and refuses a
    volume it does not have with a 400. Nothing runs on the wrong disk.
    """

    #: The entry point name; the loader sets it on the instance.
    name = None

    @abc.abstractmethod
    def locate(self, context, volume_id):
        """:returns: the host name of the agent to ask.

        :raises: a 4xx SnapdriverException when the volume is attached
            nowhere or in several places; a 503 when the source of the
            answer cannot be reached.
        """

    def forget(self, volume_id):
        """The host given for ``volume_id`` was wrong: do not give it from
        a cache again. Returns True if asking again may help."""
        return False
