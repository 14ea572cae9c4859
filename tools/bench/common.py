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

"""What every benchmark uses: statistics, tables, the Cinder stub, a
snapdriver-api process, and the benchmark's own libvirt connection.

Times are ``time.monotonic()`` of this process; the Cinder stub runs in
this process too, so "the stub received the report" and "libvirt's event
arrived" are stamped on the same clock as "the request was sent".
"""

import http.client
import http.server
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

MiB = 1024 * 1024
#: The checkout the benchmark runs from, whose snapdriver it measures
#: (tools/bench/common.py -> the checkout's root).
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
WHATIF = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'whatif.py')
#: The change tools/bench/whatif.py applies for the "what-if" rows.
SUGGESTED = ('--qemu-img-spawn',)
TOKEN = 'admin:bench'
PROJECT = 'bench'


class BenchError(Exception):
    """Something did not happen as the benchmark needs it to."""


# Statistics ---------------------------------------------------------------

def percentile(values, p):
    """Linear-interpolated percentile (numpy's default) of ``values``."""
    if not values:
        return float('nan')
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(values):
    return percentile(values, 50)


def ms(seconds):
    """Seconds as a milliseconds string for a table cell."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return 'n/a'
    value = seconds * 1000.0
    return '%.1f' % value if value < 1000 else '%.0f' % value


def ratio(a, b):
    return a / b if b else float('nan')


def verdict(ok):
    return 'met' if ok else '**missed**'


# Tables -------------------------------------------------------------------

class Table:
    """A markdown table with a title and notes below it."""

    def __init__(self, title, columns):
        self.title = title
        self.columns = list(columns)
        self.rows = []
        self.notes = []

    def add(self, *cells):
        if len(cells) != len(self.columns):
            raise ValueError('%d cells for %d columns' % (len(cells),
                                                          len(self.columns)))
        self.rows.append([str(c) for c in cells])

    def note(self, text):
        self.notes.append(text)

    def markdown(self):
        lines = ['### %s' % self.title, '',
                 '| %s |' % ' | '.join(self.columns),
                 '| %s |' % ' | '.join('---' for _ in self.columns)]
        lines += ['| %s |' % ' | '.join(row) for row in self.rows]
        if self.notes:
            lines.append('')
            lines += self.notes
        return '\n'.join(lines) + '\n'


# Processes and files ------------------------------------------------------

def run(*cmd, timeout=600, check=True):
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise BenchError('%s failed (rc %d): %s%s' % (
            ' '.join(cmd), proc.returncode, proc.stdout, proc.stderr))
    return proc


def rss_mib(pid):
    """Resident set size of a process, in MiB (None if it is gone)."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def wait_idle(pid, quiet=0.5, cpu=0.02, timeout=120):
    """Wait until ``pid`` used less than ``cpu`` s of CPU over ``quiet`` s
    (the background work done)."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid)
    while True:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < cpu:
            return
        if time.monotonic() > deadline:
            raise BenchError('snapdriver-api still busy after %d s'
                             % timeout)
        last = now


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def checkout_env(env=None):
    """``env`` (default: this process's environment) with the checkout
    first on PYTHONPATH: a process started with it imports this
    checkout's snapdriver, whatever the venv's (editable) install points
    at. The setuptools editable finder comes after ``sys.path`` in
    ``sys.meta_path``, so PYTHONPATH wins."""
    env = dict(os.environ if env is None else env)
    paths = [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
             if p and os.path.abspath(p) != CHECKOUT]
    env['PYTHONPATH'] = os.pathsep.join([CHECKOUT] + paths)
    return env


def measure_this_checkout():
    """Make this process, and every process it starts from now on (the
    region's fixtures inherit the environment), import snapdriver from
    :data:`CHECKOUT`; fail if this process already imported another."""
    os.environ['PYTHONPATH'] = checkout_env()['PYTHONPATH']
    if CHECKOUT in sys.path:
        sys.path.remove(CHECKOUT)
    sys.path.insert(0, CHECKOUT)
    import snapdriver
    where = os.path.dirname(os.path.dirname(os.path.abspath(
        snapdriver.__file__)))
    if where != CHECKOUT:
        raise BenchError('snapdriver imported from %s, not from the '
                         'checkout measured (%s)' % (where, CHECKOUT))


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def wait_until(predicate, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError('timed out after %.0f s waiting for %s'
                             % (timeout, what))
        time.sleep(interval)


# The Cinder stub ----------------------------------------------------------

_ACTION = re.compile(
    r'^/v3/(?P<project>[^/]+)/snapshots/(?P<id>[^/]+)/action$')


class CinderStub:
    """A tiny Cinder: records each ``os-update_snapshot_status`` POST with
    the time it arrived, and answers 202 as Cinder does.

    snapdriver's real status reporter (python-cinderclient through
    keystoneauth) sends to it; nothing else of Cinder is imitated.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self.reports = {}        # snapshot id -> [(time, status, progress)]
        self.other = []          # requests that were not status updates
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'   # keep-alive, as Cinder's API

            def do_POST(self):
                arrived = time.monotonic()
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                match = _ACTION.match(self.path)
                try:
                    update = json.loads(body)['os-update_snapshot_status']
                except (ValueError, KeyError, TypeError):
                    update = None
                if match and update is not None:
                    stub._record(match.group('id'), arrived, update)
                    self._answer(202)
                else:
                    stub.other.append(('POST', self.path))
                    self._answer(404)

            def do_GET(self):
                stub.other.append(('GET', self.path))
                self._answer(404)

            def _answer(self, code):
                self.send_response(code)
                self.send_header('Content-Length', '0')
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                       Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.05},
                                        name='cinder-stub', daemon=True)
        self._thread.start()

    @property
    def endpoint(self):
        return 'http://127.0.0.1:%d/v3/%%(project_id)s' % self.port

    def _record(self, snapshot_id, arrived, update):
        with self._cond:
            self.reports.setdefault(snapshot_id, []).append(
                (arrived, update.get('status'), update.get('progress')))
            self._cond.notify_all()

    def wait(self, snapshot_id, timeout=120):
        """The first report for ``snapshot_id``: (arrival time, status)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.reports.get(snapshot_id):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError('no status report for snapshot %s '
                                     'within %d s' % (snapshot_id, timeout))
                self._cond.wait(remaining)
            arrived, status, progress = self.reports[snapshot_id][0]
        if progress != '90%':
            raise BenchError('snapshot %s reported with progress %r'
                             % (snapshot_id, progress))
        return arrived, status

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# snapdriver-api -----------------------------------------------------------

def write_conf(path, sections):
    lines = []
    for section, options in sections.items():
        lines.append('[%s]' % section)
        lines += ['%s = %s' % item for item in options.items()]
        lines.append('')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))


def http_call(port, method, path, body=None, timeout=60):
    """One request on a new connection (the console script speaks
    HTTP/1.0 and closes each one): (status, parsed body or None)."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        headers = {'X-Auth-Token': TOKEN}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers['Content-Type'] = 'application/json'
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode('utf-8', 'replace')
        return response.status, parsed
    finally:
        conn.close()


class Snapdriver:
    """A snapdriver-api process (the console script) on 127.0.0.1.

    :param sections: configuration ``{section: {option: value}}`` laid
        over the defaults below (noauth, loopback, journal in ``work``).
    :param whatif: options of tools/bench/whatif.py: run it with those
        changes patched in instead of the console script as it is.
    """

    def __init__(self, work, name, sections, whatif=None):
        self.work = work
        self.name = name
        self.port = free_port()
        self.log_path = os.path.join(work, name + '.log')
        conf = {
            'DEFAULT': {'auth_strategy': 'noauth', 'debug': 'false',
                        'log_file': self.log_path},
            'api': {'bind_host': '127.0.0.1', 'bind_port': self.port},
            'database': {'connection': 'sqlite:///%s' % os.path.join(
                work, name + '.sqlite')},
            'oslo_policy': {'policy_file': os.path.join(work,
                                                        'no-policy.yaml')},
        }
        for section, options in sections.items():
            conf.setdefault(section, {}).update(options)
        self.conf_path = os.path.join(work, name + '.conf')
        write_conf(self.conf_path, conf)
        # The journal's schema, as an operator's first start does.
        # PYTHONPATH: this checkout's snapdriver; cwd: not one that has a
        # snapdriver package of its own (`-m` puts the cwd first).
        subprocess.run([sys.executable, '-m', 'snapdriver.cmd.manage',
                        '--config-file', self.conf_path, 'db', 'sync'],
                       check=True, stdout=subprocess.DEVNULL,
                       env=checkout_env(), cwd=work)
        if whatif:
            self.command = [sys.executable, WHATIF] + list(whatif) + [
                '--', '--config-file', self.conf_path]
        else:
            self.command = [os.path.join(os.path.dirname(sys.executable),
                                         'snapdriver-api'),
                            '--config-file', self.conf_path]
        self.process = None

    @property
    def pid(self):
        return self.process.pid

    def start(self, timeout=60):
        out = open(os.path.join(self.work, self.name + '.stdout'), 'w')
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT,
                                        env=checkout_env(), cwd=self.work)
        out.close()

        def answers():
            if self.process.poll() is not None:
                raise BenchError('%s exited (rc %s) at start; see %s' % (
                    self.name, self.process.returncode, self.work))
            try:
                return http_call(self.port, 'GET', '/healthcheck',
                                 timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(answers, timeout, '%s to answer' % self.name, 0.05)
        return self

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def call(self, method, path, body=None):
        return http_call(self.port, method, '/v2.1' + path, body)

    def operations(self, snapshot_id):
        status, body = self.call('GET', '/os-assisted-volume-snapshots/%s'
                                 % snapshot_id)
        if status != 200:
            raise BenchError('GET of snapshot %s: %s %s'
                             % (snapshot_id, status, body))
        return body['operations']

    def settled(self, snapshot_id, count=1, timeout=60):
        """Wait until the ``count``-th operation of ``snapshot_id`` is
        finished and its report recorded; fail unless it succeeded."""
        def done():
            ops = self.operations(snapshot_id)
            if len(ops) < count:
                return None
            op = ops[count - 1]
            if op['state'] in ('succeeded', 'failed') and \
                    op['status_report']['delivery'] not in (None, 'pending'):
                return op
            return None
        op = wait_until(done, timeout, 'operation of %s' % snapshot_id)
        if op['state'] != 'succeeded':
            raise BenchError('snapdriver: %s of %s failed: %s'
                             % (op['kind'], snapshot_id, op['error']))
        return op


# The benchmark's own libvirt connection -----------------------------------

class Events:
    """A libvirt connection with the default event loop running, that
    stamps every BLOCK_JOB_2 event with the time it arrived here.

    Create it before any other libvirt connection of this process: a
    connection opened before the event loop is registered gets no events.
    """

    def __init__(self, uri):
        import libvirt
        self.libvirt = libvirt
        libvirt.registerErrorHandler(lambda ctx, err: None, None)
        libvirt.virEventRegisterDefaultImpl()
        self._cond = threading.Condition()
        self._events = []
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='libvirt-events')
        self._thread.start()
        self.conn = libvirt.open(uri)
        self._callback = self.conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, self._event, None)

    def _loop(self):
        while not self._stopping:
            self.libvirt.virEventRunDefaultImpl()

    def _event(self, conn, dom, disk, job_type, status, opaque):
        arrived = time.monotonic()
        with self._cond:
            self._events.append((arrived, dom.UUIDString(), disk, job_type,
                                 status))
            self._cond.notify_all()

    def mark(self):
        with self._cond:
            return len(self._events)

    def wait_end(self, uuid, disk, since, timeout=600):
        """The first end event (completed, failed, cancelled) for the disk
        after ``mark()`` returned ``since``: (arrival time, status)."""
        ends = (self.libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED,
                self.libvirt.VIR_DOMAIN_BLOCK_JOB_FAILED,
                self.libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for arrived, e_uuid, e_disk, _type, status in \
                        self._events[since:]:
                    if e_uuid == uuid and e_disk == disk and status in ends:
                        return arrived, status
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError('no end event for the block job on %s '
                                     'of %s within %d s' % (disk, uuid,
                                                            timeout))
                self._cond.wait(remaining)

    def close(self):
        try:
            self.conn.domainEventDeregisterAny(self._callback)
            self.conn.close()
        except self.libvirt.libvirtError:
            pass
        self._stopping = True
