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

"""The ``cinder`` locator: the host Cinder recorded when the volume was
attached.

``GET /v3/{project}/volumes/{id}`` lists the volume's ``attachments``,
each with the ``host_name`` of the connector that attached it (for
nova-compute, its ``[DEFAULT] host``); only callers with the admin (or, in
current Cinder, the service) role see it. snapdriver asks with its
``[cinder]`` credentials, or the caller's token when there are none, and
keeps the answer for ``[api] locator_cache_time`` seconds.
"""

import threading
import time

from cinderclient import exceptions as cinder_exc
from keystoneauth1 import exceptions as ks_exc
from oslo_log import log

from snapdriver.conf import CONF
from snapdriver import exception
from snapdriver.locators import base
from snapdriver.operations import cinder as cinder_access

LOG = log.getLogger(__name__)

#: Cache entries kept at most (oldest first out).
CACHE_SIZE = 10000


class CinderLocator(base.HostLocator):

    def __init__(self, registry=None, agents=None, clock=time.monotonic):
        self._cinder = cinder_access.CinderAccess()
        self._clock = clock
        self._lock = threading.Lock()
        self._cache = {}     # volume id -> (host, when)

    def locate(self, context, volume_id):
        ttl = CONF.api.locator_cache_time
        with self._lock:
            cached = self._cache.get(volume_id)
        if cached is not None and self._clock() - cached[1] < ttl:
            return cached[0]
        host = self._ask(context, volume_id)
        with self._lock:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[volume_id] = (host, self._clock())
        return host

    def forget(self, volume_id):
        with self._lock:
            return self._cache.pop(volume_id, None) is not None

    def _ask(self, context, volume_id):
        client = self._cinder.client_for(context)
        if client is None:
            raise exception.OperationFailed(
                reason="cannot ask Cinder where volume %s is attached: no "
                "[cinder] credentials and no caller token" % volume_id)
        try:
            volume = client.volumes.get(volume_id)
        except cinder_exc.NotFound:
            raise exception.VolumeNotAttached(volume_id=volume_id)
        except cinder_exc.ClientException as error:
            raise exception.OperationFailed(
                reason="Cinder did not say where volume %s is attached: %s "
                "%s" % (volume_id, error.code, error.message))
        except ks_exc.ClientException as error:
            raise exception.OperationFailed(
                reason="Cinder cannot be reached to find where volume %s is "
                "attached: %s" % (volume_id, error))
        attachments = getattr(volume, 'attachments', None) or []
        if not attachments:
            raise exception.VolumeNotAttached(volume_id=volume_id)
        hosts = {attachment.get('host_name') or None
                 for attachment in attachments}
        if None in hosts:
            raise exception.AttachmentWithoutHost(volume_id=volume_id)
        hosts = sorted(hosts)
        if len(hosts) > 1:
            raise exception.VolumeOnSeveralHosts(volume_id=volume_id,
                                                 hosts=', '.join(hosts))
        return hosts[0]
