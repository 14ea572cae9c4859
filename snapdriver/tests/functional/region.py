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

"""A region on one machine: API processes and agents over a real broker.

:class:`AgentFixture` runs the real ``snapdriver-agent`` console script
with a configuration of its own (host name, journal, driver, inventory);
:func:`tier_conf` gives the ``extra_conf`` that makes an
:class:`server.ApiServerFixture` an API process of the tier. Both use the
broker named by ``$SNAPDRIVER_TEST_TRANSPORT_URL`` (see :mod:`broker`) and
the exchange a test picks (:func:`broker.exchange`), so tests never see
each other's traffic.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import fixtures

from snapdriver.tests.functional import broker
from snapdriver.tests.functional import server

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
READY_LINE = 'running with the'


def agent_script():
    script = os.path.join(os.path.dirname(sys.executable),
                          'snapdriver-agent')
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, '-m', 'snapdriver.cmd.agent']


def host_name(label):
    """A host name of one test's own."""
    return '%s-%s' % (label, uuid.uuid4().hex[:8])


def messaging_conf(url, exchange):
    return {'DEFAULT': {'transport_url': url, 'control_exchange': exchange}}


def tier_conf(url, exchange, locator='agents', agent_timeout=None,
              **api_options):
    """``extra_conf`` for an API process of the tier."""
    conf = messaging_conf(url, exchange)
    conf['DEFAULT']['host'] = host_name('api')
    api = {'dispatch': 'agents', 'host_locator': locator}
    if agent_timeout is not None:
        api['agent_timeout'] = agent_timeout
    api.update(api_options)
    conf['api'] = api
    return conf


class AgentFixture(fixtures.Fixture):
    """A snapdriver-agent process for host ``host``.

    :param inventory: the fake driver's inventory (a dict), or None.
    :param extra_conf: ``{section: {option: value}}`` over the defaults.
    :param journal: the journal's path (default: in the fixture's own
        directory); give the same one to a restarted agent.
    """

    def __init__(self, host, url, exchange, driver='fake', inventory=None,
                 extra_conf=None, journal=None, report_interval=1):
        super().__init__()
        self.host = host
        self.url = url
        self.exchange = exchange
        self.driver = driver
        self.inventory = inventory
        self.extra_conf = extra_conf or {}
        self.journal = journal
        self.report_interval = report_interval
        self.process = None

    def log_text(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def _setUp(self):
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.log_path = os.path.join(self.dir, 'snapdriver-agent.log')
        self.config_path = os.path.join(self.dir, 'snapdriver.conf')
        journal = self.journal or os.path.join(self.dir, 'journal.sqlite')
        sections = messaging_conf(self.url, self.exchange)
        sections['DEFAULT'].update({
            'host': self.host, 'driver': self.driver,
            'status_reporter': 'log', 'debug': False, 'use_stderr': True})
        sections['agent'] = {'report_interval': self.report_interval}
        sections['database'] = {'connection': 'sqlite:///' + journal}
        if self.inventory is not None:
            path = os.path.join(self.dir, 'inventory.json')
            with open(path, 'w') as f:
                json.dump(self.inventory, f)
            sections['fake'] = {'inventory_file': path}
        if self.driver == 'libvirt':
            # Every header the in-process reader reads, checked with
            # qemu-img (as server.ApiServerFixture does).
            sections['libvirt'] = {'verify_header_reader': True}
        for section, options in self.extra_conf.items():
            sections.setdefault(section, {}).update(options)
        server.write_config(self.config_path, sections)
        server.sync_journal(sections)
        self.start()
        self.addCleanup(self._stop)

    def start(self):
        """Start the process (again) and wait until it serves."""
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                agent_script() + ['--config-file', self.config_path],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + START_TIMEOUT
        while READY_LINE not in self._since_start():
            if self.process.poll() is not None:
                raise server.ServerFailed(
                    "snapdriver-agent exited with %s at start-up:\n%s"
                    % (self.process.returncode, self.log_text()))
            if time.monotonic() > deadline:
                raise server.ServerFailed(
                    "snapdriver-agent did not start within %ss:\n%s"
                    % (START_TIMEOUT, self.log_text()))
            time.sleep(0.05)

    def _since_start(self):
        text = self.log_text()
        marker = text.rfind('Agent of host %s serving' % self.host)
        return text[marker:] if marker >= 0 else ''

    def signal(self, signum):
        self.process.send_signal(signum)

    def kill(self):
        """SIGKILL, and wait for the process to be gone."""
        self.process.kill()
        self.process.wait(STOP_TIMEOUT)

    def _stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)


def wait_agents(port, token, hosts, state='up', timeout=20):
    """GET os-snapdriver-agents until every host of ``hosts`` is in
    ``state``; :returns: the agents list."""
    deadline = time.monotonic() + timeout
    while True:
        answer = server.request(port, 'GET', '/v2.1/os-snapdriver-agents',
                                headers={'X-Auth-Token': token})
        agents = answer.json().get('agents', []) \
            if answer.status == 200 else []
        states = {agent['host']: agent['state'] for agent in agents}
        if all(states.get(host) == state for host in hosts):
            return agents
        if time.monotonic() > deadline:
            raise AssertionError('agents %s not all %s after %ss: %s'
                                 % (hosts, state, timeout, agents))
        time.sleep(0.1)


def skip_without_broker(test):
    url = broker.transport_url()
    if not url:
        test.skipTest(broker.SKIP_REASON)
    return url
