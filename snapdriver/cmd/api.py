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

"""snapdriver-api: serve the API with waitress.

waitress reads and writes connections in one event loop and gives a
request to one of ``[api] threads`` worker threads only once it has fully
arrived, so slow or stalled clients hold no thread; ``[api]
connection_limit`` bounds the open connections and ``[api]
client_socket_timeout`` closes idle ones (half-sent requests included).
Behind uwsgi or gunicorn use ``snapdriver.wsgi.api:application``.
"""

import http
import ipaddress
import logging
import os
import re
import signal
import socket
import sys
import uuid

from oslo_log import log
from waitress import channel as waitress_channel
from waitress import parser as waitress_parser
from waitress import server as waitress_server
from waitress import task as waitress_task
from waitress import utilities as waitress_utilities
import webob

from snapdriver.api import faults
from snapdriver.api import microversion
from snapdriver.conf import CONF
from snapdriver import cpus
from snapdriver import exception
from snapdriver import malloc
from snapdriver import service

LOG = log.getLogger(__name__)

CHUNKED_REFUSED = ("Chunked request bodies are not accepted: send the body "
                   "with a Content-Length.")
VERSION_REFUSED = "Only HTTP/1.0 and HTTP/1.1 are served."


class _Refusal(waitress_utilities.Error):
    """A request refused before it reaches the application, answered in
    the API's fault shape (see :class:`_RefusalTask`)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.reason = http.HTTPStatus(code).phrase


_HIGH_BYTES = re.compile(rb'[\x80-\xff]')


class _Chunked(waitress_parser.ParsingError):
    pass


class _Parser(waitress_parser.HTTPRequestParser):
    """waitress's parser, with the refusals the API makes up front.

    A chunked body is refused (411) as soon as the head has arrived, not
    buffered and de-chunked first; versions other than HTTP/1.0 and 1.1
    and head lines ending in a bare LF are a 400 rather than a wait for
    the timeout; waitress's own errors become faults with messages that
    name the limit.
    """

    def received(self, data):
        if (self.body_rcv is None and not self.completed
                and b'\r\n\r\n' not in self.header_plus + data
                and b'\n\n' in self.header_plus + data):
            self.error = _Refusal(
                400, "The request head is malformed: its lines must end "
                     "with CR LF.")
            self.completed = True
            return len(data)
        consumed = super().received(data)
        if self.error is not None and not isinstance(self.error, _Refusal):
            self.error = self._refusal(self.error)
        return consumed

    def parse_header(self, header_plus):
        # waitress takes a request target with bytes above 0x7f for a bad
        # URI; percent-encoded, the API checks them as it checks any path
        # or query string (400 naming which is not UTF-8).
        line, sep, rest = header_plus.partition(b'\r\n')
        line = _HIGH_BYTES.sub(lambda m: b'%%%02X' % m.group()[0], line)
        super().parse_header(line + sep + rest)
        if self.version not in ('1.0', '1.1'):
            raise waitress_parser.ParsingError(VERSION_REFUSED)
        if self.chunked:
            raise _Chunked(CHUNKED_REFUSED)

    def _refusal(self, error):
        if isinstance(error, waitress_utilities.RequestHeaderFieldsTooLarge):
            return _Refusal(431, "The request line and headers are longer "
                                 "than %d bytes."
                            % self.adj.max_request_header_size)
        if isinstance(error, waitress_utilities.RequestEntityTooLarge):
            # waitress refuses a length equal to its limit: it is set one
            # above [api] max_request_body_size.
            return _Refusal(413, "The request body is larger than %d bytes."
                            % (self.adj.max_request_body_size - 1))
        if error.body == CHUNKED_REFUSED:
            return _Refusal(411, CHUNKED_REFUSED)
        if error.body == VERSION_REFUSED:
            return _Refusal(400, VERSION_REFUSED)
        if error.code == 501:
            return _Refusal(400, "The request's Transfer-Encoding is not "
                                 "supported: send the body with a "
                                 "Content-Length.")
        return _Refusal(400, "The request is malformed: %s."
                        % str(error.body).rstrip('.'))


class _RefusalTask(waitress_task.ErrorTask):
    """Answer a refused request in the API's fault shape and headers (a
    request id, the microversion), and close the connection."""

    def execute(self):
        error = self.request.error
        if not isinstance(error, _Refusal):
            error = _Refusal(400, "The request is malformed.")
        response = faults.fault_response(error.code, error.body)
        headers = dict(response.headerlist)
        headers.update(microversion.response_headers(self._version()))
        request_id = 'req-%s' % uuid.uuid4()
        headers.update({'X-OpenStack-Request-Id': request_id,
                        'X-Compute-Request-Id': request_id})
        headers.pop('Content-Length', None)
        self.status = '%d %s' % (error.code, error.reason)
        self.response_headers.extend(headers.items())
        self.set_close_on_finish()
        self.content_length = len(response.body)
        self.write(response.body)
        self.channel.refused = True

    def _version(self):
        """The microversion the caller asked for, if its head was read and
        the version is served; otherwise the minimum."""
        environ = {'HTTP_' + key: value
                   for key, value in self.request.headers.items()}
        try:
            return microversion.negotiate(webob.Request(environ).headers)
        except Exception:
            return microversion.MIN_VERSION


class _Channel(waitress_channel.HTTPChannel):
    """After a refusal, close gently: stop sending, read and drop what the
    caller still sends (the rest of a refused body, up to a bound), then
    close. Closing with unread data would reset the connection, and the
    caller could lose the answer."""

    parser_class = _Parser
    error_task_class = _RefusalTask
    refused = False
    draining = False
    answering_eof = False
    reading = False
    DRAIN_LIMIT = 1 << 20

    def handle_read(self):
        if self.draining:
            return self._drain()
        self.reading = True
        try:
            super().handle_read()
        finally:
            self.reading = False
        if self.answering_eof:
            # The caller stopped sending, but still reads.
            self.connected = True
        return None

    def handle_close(self):
        request = self.request
        if (self.reading and not self.refused and request is not None
                and request.headers_finished and not request.completed
                and request.error is None):
            # The caller closed its side before the whole body came (not
            # an idle connection timing out: that one is just closed).
            self.answering_eof = True
            with self.requests_lock:
                request.error = _Refusal(
                    400, "The request ended before its body did: "
                         "Content-Length said %d bytes."
                    % request.content_length)
                request.completed = True
                self.requests.append(request)
                self.request = None
            self.server.add_task(self)
            return None
        if self.refused and not self.draining and self.connected:
            self.draining = True
            self.drained = 0
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                return super().handle_close()
            self.will_close = False
            return None
        return super().handle_close()

    def readable(self):
        if self.draining:
            return not self.will_close
        return super().readable()

    def writable(self):
        if self.draining:
            return self.will_close
        return super().writable()

    def _drain(self):
        try:
            data = self.recv(self.adj.recv_bytes)
        except OSError:
            return super().handle_close()
        self.drained += len(data)
        if data and self.drained > self.DRAIN_LIMIT:
            super().handle_close()
        return None


class _Server(waitress_server.TcpWSGIServer):
    channel_class = _Channel


def make_server(application, host, port):
    """A waitress server on ``host``:``port`` with the [api] limits.

    :raises: OSError if it cannot listen there.
    """
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC,
                               socket.SOCK_STREAM, socket.IPPROTO_TCP)
    family, socktype, proto, _, sockaddr = infos[0]
    return _Server(
        application, map={}, dispatcher=_dispatcher(),
        sockinfo=(family, socktype, proto, sockaddr),
        host=host, port=port, ident='snapdriver',
        threads=CONF.api.threads,
        connection_limit=CONF.api.connection_limit,
        channel_timeout=CONF.api.client_socket_timeout,
        # Look for idle connections often enough that one is closed
        # within the timeout, give or take a second.
        cleanup_interval=max(1, min(30, CONF.api.client_socket_timeout // 2)),
        max_request_header_size=CONF.api.max_request_header_size,
        max_request_body_size=CONF.api.max_request_body_size + 1,
        # poll(), not select(): more than 1024 descriptors.
        asyncore_use_poll=True,
        # The API logs each request itself, with its request id.
        expose_tracebacks=False, log_socket_errors=False)


def _dispatcher():
    dispatcher = waitress_task.ThreadedTaskDispatcher()
    dispatcher.set_thread_count(CONF.api.threads)
    return dispatcher


def _loopback_only(host):
    """Whether every address ``host`` names is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_UNSPEC,
                                   socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        return bool(infos) and all(
            ipaddress.ip_address(info[4][0].split('%')[0]).is_loopback
            for info in infos)
    except ValueError:
        return False


def _cannot_start(reason):
    LOG.error("Cannot start: %s", reason)
    sys.stderr.write("snapdriver-api: cannot start: %s\n" % reason)
    return 1


def main(argv=None):
    service.prepare(argv)
    # Thread dumps on SIGUSR2, as the compute service gives them.
    service.setup_reports('snapdriver-api')
    if (CONF.auth_strategy == 'noauth' and not CONF.api.noauth_allow_remote
            and not _loopback_only(CONF.api.bind_host)):
        return _cannot_start(
            "auth_strategy = noauth trusts any token, and [api] bind_host "
            "%s is not a loopback address: bind to 127.0.0.1 or ::1, or "
            "set [api] noauth_allow_remote = true if nobody else can reach "
            "the port" % CONF.api.bind_host)
    cpus.pin_to_one()
    malloc.limit_arenas()
    try:
        application, runner = service.build_wsgi_app()
    except (exception.DriverLoadError, exception.ConfigurationError) as e:
        return _cannot_start(e)
    try:
        server = make_server(application, CONF.api.bind_host,
                             CONF.api.bind_port)
    except OSError as e:
        runner.stop()
        return _cannot_start("cannot listen on %s port %s: %s"
                             % (CONF.api.bind_host, CONF.api.bind_port, e))

    def stop(signum, frame):
        LOG.info("Signal %d: stopping", signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    runner.start()
    host, port = server.socket.getsockname()[:2]
    tier = CONF.api.dispatch == 'agents'
    if tier:
        LOG.info("snapdriver-api serving on http://%s:%s/ as the API tier "
                 "of a region (dispatch = agents)", host, port)
    else:
        LOG.info("snapdriver-api serving on http://%s:%s/ with the %s "
                 "driver", host, port, CONF.driver)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
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
