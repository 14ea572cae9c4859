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

"""Which guests hold a disk with a given serial, without reading them all.

Finding a volume used to read the XML of every domain on the host, for
every request: a cost that grows with the number of guests. The index keeps
``serial -> guests`` and is told by libvirt's events which guests changed
(defined, undefined, started, a device added or removed: see
:class:`snapdriver.drivers.libvirt.host.Host`); only those are read again.

The index is a hint, never the truth. The driver reads the guests it names
and checks that the disk is there; when it is not, when the index names no
guest, or when the index is older than ``[libvirt] disk_index_refresh``
seconds, the driver falls back to reading every guest and rebuilds the
index from that. So a lost event costs a full read, not a wrong answer; the
one thing the index can miss until its next full refresh is a *second*
guest gaining a volume without any event (which libvirt sends for every
change of a definition it makes itself).

All methods are thread-safe; :meth:`changed` and :meth:`forget_all` only
take a lock and touch a set, so libvirt's event loop can call them.
"""

import threading
import time


class DiskIndex:
    """``serial -> {domain UUID}``, with the guests to read again.

    :param max_age: seconds after which the whole index is rebuilt (0: it
        is never trusted, every lookup reads every guest).
    """

    def __init__(self, max_age, clock=time.monotonic):
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._serials_of = {}   # uuid -> frozenset of serials
        self._guests_of = {}    # serial -> set of uuids
        self._changed = set()   # uuids to read again
        self._built_at = None   # None: to be built (again) in full
        self._epoch = 0         # bumped by forget_all()
        self._events = True     # False: libvirt sends no domain events

    # Told by libvirt's events (event loop thread).

    def changed(self, uuid):
        """The guest ``uuid`` may have gained or lost disks; None: libvirt
        will not say (no domain events), so only full reads count."""
        with self._lock:
            if uuid is None:
                self._events = False
            else:
                self._changed.add(uuid)

    def forget_all(self):
        """Nothing known can be trusted (a new connection: events may have
        been missed while there was none)."""
        with self._lock:
            self._built_at = None
            self._epoch += 1

    # Asked by the driver.

    def needs_rebuild(self):
        """Whether the next lookup must read every guest."""
        with self._lock:
            return (self._built_at is None or self._max_age <= 0
                    or not self._events
                    or self._clock() - self._built_at >= self._max_age)

    def begin_rebuild(self):
        """Call before reading every guest; pass the token to
        :meth:`rebuild`. Events that arrive while the guests are read stay
        pending: the rebuild may have read those guests before they
        changed."""
        with self._lock:
            return self._epoch, frozenset(self._changed)

    def rebuild(self, token, serials_by_guest):
        """Replace the index with what reading every guest found.

        :param serials_by_guest: ``{uuid: iterable of serials}``.
        """
        epoch, changed_before = token
        with self._lock:
            self._serials_of = {}
            self._guests_of = {}
            for uuid, serials in serials_by_guest.items():
                self._set(uuid, serials)
            self._changed -= changed_before
            if epoch == self._epoch:
                self._built_at = self._clock()

    def take_changed(self):
        """The guests changed since they were last read; the caller reads
        each and passes what it found to :meth:`update` (None for a guest
        that is gone)."""
        with self._lock:
            changed, self._changed = self._changed, set()
            return changed

    def update(self, uuid, serials):
        """What one guest holds now; ``serials`` None: the guest is gone."""
        with self._lock:
            self._set(uuid, serials or ())

    def pending(self):
        """The guests to read again (a copy; nothing is taken)."""
        with self._lock:
            return frozenset(self._changed)

    def guests(self, serial):
        """The guests the index says hold ``serial`` (maybe none)."""
        with self._lock:
            return frozenset(self._guests_of.get(serial, ()))

    def serials(self):
        """Every serial of every guest indexed."""
        with self._lock:
            return frozenset(self._guests_of)

    def _set(self, uuid, serials):
        # Under self._lock.
        for serial in self._serials_of.pop(uuid, ()):
            guests = self._guests_of.get(serial)
            if guests is not None:
                guests.discard(uuid)
                if not guests:
                    del self._guests_of[serial]
        serials = frozenset(s for s in serials if s)
        if serials:
            self._serials_of[uuid] = serials
            for serial in serials:
                self._guests_of.setdefault(serial, set()).add(uuid)
