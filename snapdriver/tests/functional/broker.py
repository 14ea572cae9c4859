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

"""RabbitMQ for the tests of the API tier and the agents.

``tools/with-rabbitmq.sh`` finds a broker for the test run and names it in
``$SNAPDRIVER_TEST_TRANSPORT_URL``: the URL already there, else a broker
answering on 127.0.0.1:5672 as guest/guest, else a private node it starts
(:class:`PrivateRabbit`, Debian's rabbitmq-server) and stops afterwards.
Tests that must stop and start the broker (an outage) start a private node
of their own, whatever the run uses.

Each test keeps its traffic apart with an exchange of its own
(``control_exchange``) and host names of its own.

Command line, for the script::

    python -m snapdriver.tests.functional.broker find
    python -m snapdriver.tests.functional.broker start DIR
    python -m snapdriver.tests.functional.broker stop DIR
"""

import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid

import fixtures

URL_ENV = 'SNAPDRIVER_TEST_TRANSPORT_URL'
SKIP_REASON = ('%s is not set: run the tests through tools/run-tests.sh '
               '(tools/with-rabbitmq.sh) to get a RabbitMQ broker' % URL_ENV)
LOCAL_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
RABBIT_BIN = '/usr/lib/rabbitmq/bin'
START_TIMEOUT = 90


def transport_url():
    """The broker of this test run, or None."""
    return os.environ.get(URL_ENV) or None


def exchange():
    """An exchange name of one test's own."""
    return 'snapdriver-test-%s' % uuid.uuid4().hex[:10]


def answers(url, timeout=3):
    """Whether a RabbitMQ broker accepts a connection at ``url``."""
    import kombu
    amqp = url.replace('rabbit://', 'amqp://', 1)
    try:
        with kombu.Connection(amqp, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:
        return False


def rabbit_installed():
    return os.path.exists(os.path.join(RABBIT_BIN, 'rabbitmq-server'))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ephemeral_range():
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            low, high = (int(n) for n in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999     # Linux's default


def _free_listening_port():
    """A free port below the kernel's ephemeral range, for a listener that
    is stopped and started again (``stop_app`` / ``start_app``).

    A port the kernel may hand out as a client's source port can be taken
    while nothing listens on it: a client retrying a connection to it (the
    services reconnecting to the stopped broker) can be given that very
    port and connect to itself (TCP simultaneous open). The listener then
    cannot come back: the likely cause of one ``start_app`` that failed
    with ``could_not_start_listener`` in a full run.
    """
    low = _ephemeral_range()[0]
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 20000), low)
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    return _free_port()


class PrivateRabbit(fixtures.Fixture):
    """A RabbitMQ node of our own, all its state under ``directory``.

    Runs as root without systemd (the ``/usr/sbin`` wrappers would switch
    to the rabbitmq user), on free ports, with a node name and Erlang
    cookie of its own, so that it never meets the machine's broker.
    ``url`` is its transport URL once started.
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = os.path.abspath(directory)
        self.node = 'snapdriver-%s@localhost' % uuid.uuid4().hex[:8]
        self.port = None
        self.url = None

    def _env(self):
        d = self.directory
        env = dict(os.environ)
        env.update({
            'HOME': d,
            'RABBITMQ_NODENAME': self.node,
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(self.port),
            'RABBITMQ_DIST_PORT': str(_free_port()),
            'RABBITMQ_MNESIA_BASE': os.path.join(d, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(d, 'log'),
            'RABBITMQ_PID_FILE': os.path.join(d, 'rabbit.pid'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(d, 'plugins'),
            'RABBITMQ_CONFIG_FILE': os.path.join(d, 'rabbitmq'),
            'RABBITMQ_ADVANCED_CONFIG_FILE': os.path.join(
                d, 'advanced.config'),
        })
        return env

    def ctl(self, *args, timeout=60, check=True):
        proc = subprocess.run(
            [os.path.join(RABBIT_BIN, 'rabbitmqctl'), '-n', self.node]
            + list(args), env=self._env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode:
            raise RuntimeError('rabbitmqctl %s failed (rc %d): %s%s'
                               % (' '.join(args), proc.returncode,
                                  proc.stdout, proc.stderr))
        return proc

    def _setUp(self):
        if not rabbit_installed():
            raise RuntimeError('rabbitmq-server is not installed (Debian '
                               'package rabbitmq-server)')
        os.makedirs(self.directory, exist_ok=True)
        self.port = _free_listening_port()
        with open(os.path.join(self.directory, 'plugins'), 'w') as f:
            f.write('[].\n')
        with open(os.path.join(self.directory, 'rabbitmq.conf'), 'w') as f:
            f.write('loopback_users.guest = false\n')
        with open(os.path.join(self.directory, 'advanced.config'), 'w') as f:
            f.write('[].\n')
        self.addCleanup(self.stop)
        subprocess.run([os.path.join(RABBIT_BIN, 'rabbitmq-server'),
                        '-detached'], env=self._env(), check=True,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60)
        self._await_first_startup()
        self.url = 'rabbit://guest:guest@127.0.0.1:%d/' % self.port

    def _await_first_startup(self):
        # ``-detached`` returns before the node has registered with epmd,
        # and await_startup fails at once for a node it cannot find.
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            proc = self.ctl('await_startup', timeout=START_TIMEOUT,
                            check=time.monotonic() > deadline)
            if proc.returncode == 0:
                return
            time.sleep(0.5)

    def stop_app(self):
        """The broker stops serving (its node stays up)."""
        self.ctl('stop_app')

    def start_app(self):
        self.ctl('start_app')
        self.ctl('await_startup', timeout=START_TIMEOUT)

    def stop(self):
        if self.port is None:
            return
        self.ctl('stop', check=False)
        pidfile = os.path.join(self.directory, 'rabbit.pid')
        deadline = time.monotonic() + 30
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    os.kill(int(f.read().strip()), 0)
            except (OSError, ValueError):
                break
            time.sleep(0.1)
        # epmd, started by the node, outlives it; it serves every node of
        # the machine and is harmless, so it is left alone.
        self.port = None


def main(argv):
    command = argv[1] if len(argv) > 1 else ''
    if command == 'find':
        url = transport_url() or (LOCAL_URL if answers(LOCAL_URL) else '')
        print(url)
        return 0 if url else 1
    if command in ('start', 'stop') and len(argv) == 3:
        directory = argv[2]
        state = os.path.join(directory, 'node')
        if command == 'start':
            if os.path.isdir(directory):
                shutil.rmtree(directory)
            rabbit = PrivateRabbit(directory)
            rabbit.setUp()
            with open(state, 'w') as f:
                f.write('%s %d\n' % (rabbit.node, rabbit.port))
            print(rabbit.url)
            return 0
        if os.path.exists(state):
            rabbit = PrivateRabbit(directory)
            with open(state) as f:
                rabbit.node, port = f.read().split()
            rabbit.port = int(port)
            rabbit.stop()
            os.unlink(state)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
