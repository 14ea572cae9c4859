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

"""The connection to libvirtd, kept open across daemon restarts.

The connection is opened once; when libvirtd goes away (its close callback
fires, or ``isAlive()`` says so) the next use opens a new one and registers
the event callbacks again. libvirt's default event loop runs in a daemon
thread, which is what delivers block job events and the close callback.
"""

import threading
import time

from oslo_log import log

try:
    import libvirt
except ImportError:  # the driver reports it, clearly, when it loads
    libvirt = None

LOG = log.getLogger(__name__)

_event_loop_lock = threading.Lock()
_event_loop_thread = None


def _run_event_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


def _ignore_error(opaque, error):
    pass


def start_event_loop():
    """Register libvirt's default event loop and run it, once per process.

    It must be registered before the first connection is opened, or that
    connection delivers no events.
    """
    global _event_loop_thread
    with _event_loop_lock:
        if _event_loop_thread is not None:
            return
        # libvirt prints every error to stderr unless a handler takes it;
        # the errors reach snapdriver as exceptions anyway.
        libvirt.registerErrorHandler(_ignore_error, None)
        libvirt.virEventRegisterDefaultImpl()
        _event_loop_thread = threading.Thread(
            target=_run_event_loop, name='libvirt-event-loop', daemon=True)
        _event_loop_thread.start()


def is_connection_error(error):
    """Whether a libvirtError means the connection itself is gone."""
    return error.get_error_code() in (libvirt.VIR_ERR_SYSTEM_ERROR,
                                      libvirt.VIR_ERR_INTERNAL_ERROR,
                                      libvirt.VIR_ERR_NO_CONNECT,
                                      libvirt.VIR_ERR_INVALID_CONN,
                                      libvirt.VIR_ERR_RPC)


class Host:
    """A libvirt connection that reopens itself.

    :param uri: the connection URI.
    :param on_block_job: called as ``on_block_job(uuid, disk, type,
        status)`` for each BLOCK_JOB_2 event, in the event loop thread.
    :param on_domain_change: called as ``on_domain_change(uuid)`` when a
        domain may have gained or lost disks (lifecycle events: defined,
        undefined, started, stopped; a device added or removed), in the
        event loop thread.
    :param on_connect: called after each new connection is opened and its
        callbacks registered: events sent while there was none are lost.
    """

    def __init__(self, uri, on_block_job, on_domain_change=None,
                 on_connect=None):
        self._uri = uri
        self._on_block_job = on_block_job
        self._on_domain_change = on_domain_change
        self._on_connect = on_connect
        self._lock = threading.Lock()
        self._conn = None
        self._closed = False

    def get_connection(self):
        """The open connection; reopened if libvirtd went away.

        :raises: libvirt.libvirtError when libvirtd cannot be reached.
        """
        with self._lock:
            if self._conn is not None and not self._closed:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                LOG.warning("The connection to %s is gone; reconnecting",
                            self._uri)
                self._discard(self._conn)
            self._conn = self._open()
            return self._conn

    @staticmethod
    def _discard(conn):
        # Frees what the binding holds for a dead connection; it may
        # complain that the connection is dead already.
        try:
            conn.close()
        except libvirt.libvirtError:
            pass

    def _open(self):
        conn = libvirt.open(self._uri)
        self._closed = False
        try:
            conn.registerCloseCallback(self._closed_by_libvirt, None)
        except libvirt.libvirtError as error:
            LOG.warning("No close callback on %s (%s); a restarted "
                        "libvirtd is noticed through isAlive()",
                        self._uri, error)
        try:
            conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                self._block_job_event, None)
        except libvirt.libvirtError as error:
            LOG.warning("No block job events from %s (%s); block jobs are "
                        "followed by polling only", self._uri, error)
        if self._on_domain_change is not None:
            self._register_domain_events(conn)
        if self._on_connect is not None:
            self._on_connect()
        LOG.info("Connected to %s", self._uri)
        return conn

    def _register_domain_events(self, conn):
        for event, callback in (
                (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle_event),
                (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
                 self._device_event),
                (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                 self._device_event)):
            try:
                conn.domainEventRegisterAny(None, event, callback, None)
            except libvirt.libvirtError as error:
                # The disk index then trusts nothing but its full reads.
                LOG.warning("No domain events (%s) from %s (%s)", event,
                            self._uri, error)
                self._on_domain_change(None)

    def _lifecycle_event(self, conn, dom, event, detail, opaque):
        self._domain_changed(dom)

    def _device_event(self, conn, dom, alias, opaque):
        self._domain_changed(dom)

    def _domain_changed(self, dom):
        try:
            self._on_domain_change(dom.UUIDString())
        except Exception:
            LOG.exception("Handling a domain event failed")

    def _closed_by_libvirt(self, conn, reason, opaque):
        # Runs in the event loop thread: only mark the connection; the next
        # caller reopens it. A late call for a connection already replaced
        # must not condemn its successor.
        LOG.warning("libvirt closed the connection to %s (reason %s)",
                    self._uri, reason)
        if conn is self._conn:
            self._closed = True

    def _block_job_event(self, conn, dom, disk, job_type, status, opaque):
        try:
            self._on_block_job(dom.UUIDString(), disk, job_type, status)
        except Exception:
            # An exception here would be lost in libvirt's C event loop.
            LOG.exception("Handling a block job event failed")

    def connection_lost(self, error):
        """Whether ``error``, raised by a call that changes something, means
        that the connection dropped under the call, so that libvirtd (and
        QEMU) may or may not have carried it out.

        A connection error (:func:`is_connection_error`) from libvirt's RPC
        layer, or one after which the connection is dead.
        """
        if not is_connection_error(error):
            return False
        if error.get_error_domain() == libvirt.VIR_FROM_RPC:
            return True
        with self._lock:
            conn, closed = self._conn, self._closed
        return conn is None or closed or not self._alive(conn)

    def reconnect(self, timeout, interval, clock=time.monotonic,
                  sleep=time.sleep):
        """Wait until libvirtd can be reached again (a new connection if
        the old one is gone).

        :raises: libvirt.libvirtError (the last one) when it cannot be
            reached within ``timeout`` seconds.
        """
        deadline = clock() + timeout
        while True:
            try:
                return self.get_connection()
            except libvirt.libvirtError:
                if clock() >= deadline:
                    raise
            sleep(interval)

    def list_domains(self):
        """Every domain of the host, running or only defined.

        :raises: libvirt.libvirtError
        """
        return self._retry(lambda conn: conn.listAllDomains(0))

    def lookup(self, uuid):
        """The domain with this UUID.

        :raises: libvirt.libvirtError (VIR_ERR_NO_DOMAIN when it is gone)
        """
        return self._retry(lambda conn: conn.lookupByUUIDString(uuid))

    def _retry(self, call):
        # Only for calls that change nothing: one more try on a fresh
        # connection hides a libvirtd restart from the caller.
        conn = self.get_connection()
        try:
            return call(conn)
        except libvirt.libvirtError as error:
            if not is_connection_error(error) or self._alive(conn):
                raise
            LOG.warning("Lost the connection to %s (%s); retrying once",
                        self._uri, error)
            return call(self.get_connection())

    @staticmethod
    def _alive(conn):
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False
