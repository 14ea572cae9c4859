"""snapdriver-api: serve the API with a simple threaded WSGI server.

Good for a single hypervisor host and for development; for production
behind uwsgi or gunicorn use ``snapdriver.wsgi.api:application``.
"""

import logging
import os
import signal
import socketserver
import sys
import uuid
from wsgiref import simple_server

from oslo_log import log

from snapdriver.api import faults
from snapdriver.api import microversion
from snapdriver.conf import CONF
from snapdriver import exception
from snapdriver import service

LOG = log.getLogger(__name__)


class _QuietHandler(simple_server.WSGIRequestHandler):
    """wsgiref logs to stderr; the API logs each request itself.

    Requests too malformed to reach the application (request line or
    headers too long, not HTTP/1.x) are answered here, in the API's fault
    shape and headers rather than the server's HTML page.
    """

    def log_message(self, format, *args):
        pass

    def send_error(self, code, message=None, explain=None):
        if code >= 500:
            # Only "HTTP version not supported" comes here: the caller's
            # fault, and no input may yield a 5xx.
            code, message = 400, "Only HTTP/1.0 and HTTP/1.1 are served."
        if self.request_version == 'HTTP/0.9' or not self.request_version:
            self.request_version = 'HTTP/1.0'   # always send a status line
        response = faults.fault_response(
            code, message or faults.DEFAULT_MESSAGES.get(
                code, "The request is malformed."))
        self.close_connection = True
        self.send_response(code)
        headers = dict(response.headerlist)
        headers.update(microversion.response_headers(
            microversion.MIN_VERSION))
        request_id = 'req-%s' % uuid.uuid4()
        headers.update({'X-OpenStack-Request-Id': request_id,
                        'X-Compute-Request-Id': request_id,
                        'Connection': 'close'})
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(response.body)


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
        application, runner = service.build_wsgi_app()
    except (exception.DriverLoadError, exception.ConfigurationError) as e:
        return _cannot_start(e)
    try:
        server = simple_server.make_server(
            CONF.api.bind_host, CONF.api.bind_port, application,
            server_class=_ThreadingServer, handler_class=_QuietHandler)
    except OSError as e:
        runner.stop()
        return _cannot_start("cannot listen on %s port %s: %s"
                             % (CONF.api.bind_host, CONF.api.bind_port, e))

    def stop(signum, frame):
        LOG.info("Signal %d: stopping", signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    runner.start()
    host, port = server.server_address[:2]
    tier = CONF.api.dispatch == 'agents'
    if tier:
        LOG.info("snapdriver-api serving on http://%s:%s/ as the API tier "
                 "of a region (dispatch = agents)", host, port)
    else:
        LOG.info("snapdriver-api serving on http://%s:%s/ with the %s "
                 "driver", host, port, CONF.driver)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        runner.stop(wait=False)
    if tier:
        LOG.info("Stopped")
    else:
        LOG.info("Stopped; unfinished operations and reports are in the "
                 "journal and will be taken up at the next start")
    logging.shutdown()
    # Do not wait for a merge that may run for hours: QEMU goes on with
    # it, and the next start settles it from the journal.
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
