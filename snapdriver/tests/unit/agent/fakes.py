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

"""A stand-in for an agent's operation manager and driver."""

import threading

from snapdriver import exception
from snapdriver import objects


class FakeDriver:
    name = 'fake'

    def __init__(self, volumes=('vol-1',)):
        self.volumes = volumes

    def attached_volumes(self):
        if isinstance(self.volumes, Exception):
            raise self.volumes
        return self.volumes


class FakeManager:
    """Accepts every request (or raises :attr:`error`), after
    :attr:`delay` seconds; remembers what it was asked."""

    def __init__(self, volumes=('vol-1',)):
        self.driver = FakeDriver(volumes)
        self.error = None
        self.delay = 0
        self.calls = []
        self.views = {}
        self._lock = threading.Lock()

    def accept(self, context, request):
        if self.delay:
            threading.Event().wait(self.delay)
        with self._lock:
            self.calls.append(('accept', context, request))
            if self.error is not None:
                raise self.error
            view = objects.OperationView(
                id='op-%d' % len(self.calls),
                snapshot_id=request.snapshot_id,
                volume_id=request.volume_id, kind=objects.CREATE,
                state=objects.QUEUED, request=request)
            self.views.setdefault(request.snapshot_id, []).append(view)
            return view

    def query(self, context, snapshot_id):
        with self._lock:
            self.calls.append(('query', context, snapshot_id))
            if snapshot_id not in self.views:
                raise exception.OperationNotFound(snapshot_id=snapshot_id)
            return list(self.views[snapshot_id])
