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

"""Run the real ``snapdriver-api`` console script for functional tests.

:class:`ApiServerFixture` writes a configuration file (and, for the fake
driver, an inventory file) into a temporary directory, starts the console
script on a free loopback port with its output in a log file, waits until
``GET /healthcheck`` answers, and stops it with SIGTERM on cleanup.

:func:`request` and :func:`raw_request` talk to it over a real socket; the
second sends bytes exactly as given (invalid UTF-8 in the request line,
hand-made chunked bodies), which ``http.client`` refuses to do.
"""

import email.parser
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import fixtures

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def console_script():
    """The command that runs snapdriver-api with this interpreter."""
    script = os.path.join(os.path.dirname(sys.executable), 'snapdriver-api')
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, '-m', 'snapdriver.cmd.api']


def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_healthy(process, port, timeout):
    """Poll ``GET /healthcheck`` on loopback until the process answers.

    :returns: 'healthy', 'exited' (the process ended first) or 'timeout'.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return 'exited'
        try:
            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=2)
            try:
                conn.request('GET', '/healthcheck')
                if conn.getresponse().status == 200:
                    return 'healthy'
            finally:
                conn.close()
        except OSError:
            pass
        time.sleep(0.05)
    return 'timeout'


def write_config(path, sections):
    """Write an oslo.config file from ``{section: {option: value}}``."""
    lines = []
    for section, options in sections.items():
        lines.append('[%s]' % section)
        for name, value in options.items():
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            lines.append('%s = %s' % (name, value))
        lines.append('')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))


def sync_journal(sections):
    """Give the journal that a snapdriver configuration ``{section:
    {option: value}}`` names its schema, as ``snapdriver-manage db sync``
    does before a first start (a service refuses a journal without)."""
    url = sections.get('database', {}).get('connection')
    if url:
        from snapdriver.db import api as db_api
        from snapdriver.db import migration

        engine = db_api.create_engine(url)
        migration.upgrade(engine)
        engine.dispose()


class ServerFailed(Exception):
    """The server did not start, or did not stop, as it should."""


class ApiServerFixture(fixtures.Fixture):
    """A snapdriver-api process on 127.0.0.1.

    :param driver: the ``[DEFAULT] driver`` entry point name.
    :param inventory: the fake driver's inventory as a dict (written to
        JSON and named by ``[fake] inventory_file``), or None for none.
    :param auth_strategy: ``noauth`` (tokens ``<user>:<project>``) or
        ``keystone``.
    :param extra_conf: ``{section: {option: value}}`` merged over the
        defaults this fixture writes.
    :param env: extra environment variables for the process (PYTHONPATH of
        a third-party driver, for example).
    """

    def __init__(self, driver='fake', inventory=None, auth_strategy='noauth',
                 extra_conf=None, env=None):
        super().__init__()
        self.driver = driver
        self.inventory = inventory
        self.auth_strategy = auth_strategy
        self.extra_conf = extra_conf or {}
        self.env = env or {}
        self.process = None
        self.port = None

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    @property
    def endpoint(self):
        return self.url + '/v2.1'

    def log_text(self):
        """Everything the server wrote to stdout and stderr so far."""
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def _setUp(self):
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.port = free_port()
        self.log_path = os.path.join(self.dir, 'snapdriver-api.log')
        self.config_path = os.path.join(self.dir, 'snapdriver.conf')
        sections = {
            'DEFAULT': {'driver': self.driver,
                        'status_reporter': 'log',
                        'auth_strategy': self.auth_strategy,
                        'debug': False,
                        'use_stderr': True},
            'api': {'bind_host': '127.0.0.1', 'bind_port': self.port},
            'oslo_policy': {
                # No policy file of the host's may change the defaults.
                'policy_file': os.path.join(self.dir, 'policy.yaml')},
            # The operation journal is per server, never the host's.
            'database': {'connection': 'sqlite:///' + os.path.join(
                self.dir, 'snapdriver.sqlite')},
        }
        if self.driver == 'libvirt':
            # As in-process tests (tests.base.FunctionalTestCase): every
            # header the in-process reader reads is checked with qemu-img.
            sections['libvirt'] = {'verify_header_reader': True}
        if self.inventory is not None:
            self.inventory_path = os.path.join(self.dir, 'inventory.json')
            with open(self.inventory_path, 'w') as f:
                json.dump(self.inventory, f)
            sections.setdefault('fake', {})['inventory_file'] = (
                self.inventory_path)
        for section, options in self.extra_conf.items():
            sections.setdefault(section, {}).update(options)
        write_config(self.config_path, sections)
        sync_journal(sections)

        env = dict(os.environ)
        env.update(self.env)
        with open(self.log_path, 'wb') as log:
            self.process = subprocess.Popen(
                console_script() + ['--config-file', self.config_path],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        self.addCleanup(self._stop)
        self._wait_until_healthy()

    def _wait_until_healthy(self):
        state = wait_healthy(self.process, self.port, START_TIMEOUT)
        if state == 'healthy':
            return
        if state == 'exited':
            raise ServerFailed(
                "snapdriver-api exited with %s at start-up:\n%s"
                % (self.process.returncode, self.log_text()))
        raise ServerFailed("snapdriver-api did not answer GET /healthcheck "
                           "on port %d within %ss:\n%s"
                           % (self.port, START_TIMEOUT, self.log_text()))

    def _stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
                raise ServerFailed(
                    "snapdriver-api ignored SIGTERM for %ss and was killed:"
                    "\n%s" % (STOP_TIMEOUT, self.log_text()))
        if self.process.returncode != 0:
            raise ServerFailed("snapdriver-api exited with %s:\n%s"
                               % (self.process.returncode, self.log_text()))


def run_to_exit(config_path, env=None, timeout=START_TIMEOUT):
    """Run snapdriver-api with a configuration that must not start.

    :returns: (exit code, combined stdout and stderr).
    :raises: ServerFailed if it is still running after ``timeout``.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        done = subprocess.run(
            console_script() + ['--config-file', config_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=full_env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ServerFailed("snapdriver-api was expected to exit at start-up "
                           "but ran for %ss:\n%s"
                           % (timeout, (e.output or b'').decode(
                               'utf-8', 'replace')))
    return done.returncode, done.stdout.decode('utf-8', 'replace')


class Response:
    """An HTTP answer: ``status``, ``reason``, ``headers`` (an
    ``email.message.Message``, case-insensitive), ``body`` (bytes)."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body.decode('utf-8'))

    def __repr__(self):
        return '<Response %s %s: %r>' % (self.status, self.reason,
                                         self.body[:500])


def request(port, method, path, body=None, headers=None, timeout=10):
    """One request with ``http.client``; ``body`` str or bytes.

    ``http.client`` adds only Host, Accept-Encoding and Content-Length;
    everything else is in ``headers``.
    """
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return Response(answer.status, answer.reason, answer.msg,
                        answer.read())
    finally:
        conn.close()


#: The resource, without a project id in the path.
RESOURCE = '/v2.1/os-assisted-volume-snapshots'


def resource_request(port, token, method, path='', body=None, timeout=10):
    """A request on the resource as Cinder's compute client makes it:
    ``token`` as X-Auth-Token, microversion 2.1, ``body`` (an object) as
    JSON; ``path`` follows the resource's path."""
    headers = {'X-Auth-Token': token,
               'X-OpenStack-Nova-API-Version': '2.1'}
    if body is not None:
        headers['Content-Type'] = 'application/json'
        body = json.dumps(body)
    return request(port, method, RESOURCE + path, body, headers,
                   timeout=timeout)


def raw_request(port, data, timeout=10, half_close=False):
    """Send ``data`` (bytes) as is and read the answer to the end.

    snapdriver-api's server speaks HTTP/1.0 and closes the connection after
    each answer. ``half_close`` shuts the sending side down after ``data``.

    :raises: socket.timeout if no complete answer comes within ``timeout``.
    """
    with socket.create_connection(('127.0.0.1', port),
                                  timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        received = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b'\r\n\r\n')
    status_line, _, header_text = head.partition(b'\r\n')
    parts = status_line.decode('latin-1').split(None, 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/'):
        raise ValueError("not an HTTP answer: %r" % received[:200])
    headers = email.parser.Parser().parsestr(
        header_text.decode('latin-1'), headersonly=True)
    return Response(int(parts[1]), parts[2] if len(parts) > 2 else '',
                    headers, body)


def wait_for_operations(port, snapshot_id, token='admin:admin',
                        timeout=10, prefix='/v2.1'):
    """GET the operations of ``snapshot_id`` until none is queued or
    running.

    :returns: the list of operations (dicts) from the GET answer.
    """
    deadline = time.monotonic() + timeout
    path = '%s/os-assisted-volume-snapshots/%s' % (prefix, snapshot_id)
    while True:
        answer = request(port, 'GET', path,
                         headers={'X-Auth-Token': token})
        if answer.status != 200:
            raise AssertionError("GET %s: %r" % (path, answer))
        operations = answer.json()['operations']
        if all(op['state'] in ('succeeded', 'failed') for op in operations):
            return operations
        if time.monotonic() > deadline:
            raise AssertionError("operations of %s still unfinished after "
                                 "%ss: %r" % (snapshot_id, timeout,
                                              operations))
        time.sleep(0.05)
