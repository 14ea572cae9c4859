"""snapdriver-api: serve the API with a simple threaded WSGI server.

Good for a single hypervisor host and for development; for production
behind uwsgi or gunicorn use ``snapdriver.wsgi.api:application``.
"""

import logging
import os
import signal
import socketserver
import sys
from wsgiref import simple_server

from oslo_log import log

from snapdriver.conf import CONF
from snapdriver import exception
from snapdriver import service

LOG = log.getLogger(__name__)


class _QuietHandler(simple_server.WSGIRequestHandler):
    """wsgiref logs to stderr; the API logs each request itself."""

    def log_message(self, format, *args):
        pass


class _ThreadingServer(socketserver.ThreadingMixIn,
                       simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def _cannot_start(reason):
    LOG.error("Cannot start: %s", reason)
    sys.stderr.write("snapdriver-api: cannot start: %s\n" % reason)
    return 1


def main(argv=None):
    service.prepare(argv)
    try:
        application, manager = service.build_wsgi_app()
    except (exception.DriverLoadError, exception.ConfigurationError) as e:
        return _cannot_start(e)
    try:
        server = simple_server.make_server(
            CONF.api.bind_host, CONF.api.bind_port, application,
            server_class=_ThreadingServer, handler_class=_QuietHandler)
    except OSError as e:
        manager.stop()
        return _cannot_start("cannot listen on %s port %s: %s"
                             % (CONF.api.bind_host, CONF.api.bind_port, e))

    def stop(signum, frame):
        LOG.info("Signal %d: stopping", signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    service.take_up(manager)
    host, port = server.server_address[:2]
    LOG.info("snapdriver-api serving on http://%s:%s/ with the %s driver",
             host, port, CONF.driver)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        manager.stop(wait=False)
    LOG.info("Stopped; unfinished operations and reports are in the journal "
             "and will be taken up at the next start")
    logging.shutdown()
    # Do not wait for a merge that may run for hours: QEMU goes on with
    # it, and the next start settles it from the journal.
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
