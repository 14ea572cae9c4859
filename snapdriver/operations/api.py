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

"""The narrow interface between the REST API and the operation manager.

The API only ever *accepts* an operation and *queries* operations. Today
:class:`LocalOperationsAPI` calls a manager in the same process; when the
service splits into an API tier and one agent per hypervisor host, an RPC
client with these two methods takes its place, and neither the controllers
nor the drivers change. Arguments and results are the typed objects of
:mod:`snapdriver.objects` (a request, operation views), each with
``to_dict()`` and ``from_dict()``, and a RequestContext: all serialisable.
"""

import abc
import datetime

from snapdriver.conf import CONF
from snapdriver import exception
from snapdriver import version


class OperationsAPI(abc.ABC):

    @abc.abstractmethod
    def accept(self, context, request):
        """Validate and queue an operation.

        :param request: a :class:`snapdriver.objects.CreateRequest` or
            :class:`snapdriver.objects.DeleteRequest`.
        :returns: the accepted operation, a
            :class:`snapdriver.objects.OperationView`.
        :raises: SnapdriverException (4xx) when it cannot be carried out.
        """

    @abc.abstractmethod
    def agents(self, context):
        """:returns: the agents that carry out operations, as dicts:
            ``host``, ``state`` (up or down), ``last_seen`` (UTC),
            ``driver``, ``version``, ``volumes`` (how many, or None)."""

    def health_checks(self):
        """What the health check looks at in this process: ``{name:
        check}``, each check a callable that raises when unhealthy (see
        :mod:`snapdriver.api.health`)."""
        return {}

    @abc.abstractmethod
    def query(self, context, snapshot_id):
        """:returns: the operations of ``snapshot_id``, oldest first, as
            :class:`snapdriver.objects.OperationView`.

        :raises: OperationNotFound
        """


class LocalOperationsAPI(OperationsAPI):
    """Calls an :class:`OperationManager` in this process."""

    def __init__(self, manager):
        self.manager = manager

    def accept(self, context, request):
        return self.manager.accept(context, request)

    def query(self, context, snapshot_id):
        return self.manager.query(context, snapshot_id)

    def health_checks(self):
        return {'driver': lambda: self.manager.driver.check_health(),
                'journal': lambda: self.manager.journal.check_writable()}

    def agents(self, context):
        """This process is the one agent, always up."""
        driver = self.manager.driver
        try:
            volumes = driver.attached_volumes()
        except exception.SnapdriverException:
            volumes = None
        return [{'host': CONF.host, 'state': 'up',
                 'last_seen': datetime.datetime.now(
                     datetime.timezone.utc).strftime(
                         '%Y-%m-%dT%H:%M:%S.%fZ'),
                 'driver': driver.name, 'version': version.version_string(),
                 'volumes': None if volumes is None else len(list(volumes))}]
