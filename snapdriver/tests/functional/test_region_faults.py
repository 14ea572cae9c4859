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

"""The failures of a region over a real RabbitMQ, each with its timeline.

What the API tier promises when it cannot have a request carried out by
the agent of the volume's host (issue 8, point 4), each checked here
against real processes (``snapdriver-api`` with ``[api] dispatch =
agents``, ``snapdriver-agent`` with the fake driver) and a real broker:

1. **No agent process for the host** (never started): the ``cinder``
   locator finds the host in a real cinder-api (the attachment's
   ``host_name``), no agent ever listened under that name, and the answer
   is a 503 naming the host within 2 s (the call is published with the
   mandatory flag: the broker returns it at once). python-novaclient, as
   Cinder uses it, gets that 503 with the same text. With the ``agents``
   locator a volume that no agent reports is a 400.
2. **An agent SIGKILLed** (its queue stays in the broker): a 503 naming
   the host within ``[api] agent_timeout`` + 1 s; the agent restarted on
   the same journal never carries the request out (the message expired in
   the broker: no journal row, GET 404); the same request sent again then
   succeeds. An agent silent for ``[api] agent_down_time`` is refused at
   once with the "has not reported since" 503.
3. **An agent SIGSTOPped** in the middle of an operation, a request
   sent to it meanwhile, SIGCONT after the 503: the broker had already
   handed it the message, but the agent refuses it, its deadline being
   past ("Refusing the create request ... after its deadline"): no
   journal row, GET 404. The operation it was running goes on and is
   reported; the request sent again succeeds.
4. **The broker down mid-flight** (``rabbitmqctl stop_app`` /
   ``start_app`` on a private node, never the machine's shared broker):
   operations the agent had accepted (running and queued) go on and their
   status reports are delivered during the outage (reports go to the
   status reporter, not through the broker); every request meanwhile is a
   503 at once, a volume no report names included; the API process and
   the agent stay up and reconnect by themselves when the broker is back
   (until the agent's server has, a 503 says it is reconnecting);
   nothing accepted is lost, nothing refused is run.

The API tier does not send a timed-out call again: the call would wait
another ``agent_timeout`` (the caller's 503 would come after twice that),
and what makes a call time out (an agent killed, frozen or cut off) lasts
longer than one. Sending the same request again is the caller's to do,
and safe (see scenarios 2 and 3): the first copy never runs, and a
snapshot id's repeated request is carried out once.

``[api] agent_timeout`` is :data:`AGENT_TIMEOUT` (5 s) here. Each
scenario keeps a timeline (wall clock, relative to its first event) of
what the test did and what the processes logged; it is printed to stderr
(lines prefixed ``REGION FAULT``), attached as the ``timeline`` detail,
and written with the checks of every scenario run by the process to
``.run/region-faults/summary.md``.

Needs ``$SNAPDRIVER_TEST_TRANSPORT_URL`` (scenarios 1-3),
``$SNAPDRIVER_TEST_CINDER_VENV`` (scenario 1) and Debian's
rabbitmq-server (scenario 4's private node); each scenario skips, saying
why, without what it needs.
"""

import datetime
import os
import re
import signal
import sqlite3
import time
import uuid

import fixtures
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc
from testtools import content

from snapdriver.tests import base
from snapdriver.tests.functional import broker
from snapdriver.tests.functional import cinder_env
from snapdriver.tests.functional import faults
from snapdriver.tests.functional import region
from snapdriver.tests.functional import server

#: ``[api] agent_timeout`` of the API processes.
AGENT_TIMEOUT = 5
#: What a timed-out call may take beyond the timeout.
SLACK = 1.0
#: A 503 that needs no waiting (no agent, an agent down, no broker).
PROMPT = 2.0
#: ``[api] agent_down_time`` where a scenario waits for an agent to be
#: down (the agents report every second).
DOWN_TIME = 4
#: The fake driver's ``operation_delay`` in scenario 4.
OPERATION_DELAY = 3.0

PREFIX = 'REGION FAULT'
RUN_DIR = os.path.join(faults.REPO, '.run', 'region-faults')
TOKEN = 'admin:%s' % uuid.uuid4().hex

SCENARIOS = [
    ('1', 'no agent for the host (never started)'),
    ('2', 'agent SIGKILLed, its queue left; restarted; then down'),
    ('3', 'agent SIGSTOPped during a request, SIGCONT after the 503'),
    ('4', 'broker stop_app / start_app mid-flight'),
]

#: oslo.log's default line: local time, then the process id.
_LOG_LINE = re.compile(
    r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3}) \d+ (\w+) (\S+) '
    r'\[[^\]]*\] (.*)$')


def inventory(label, volume_ids):
    """A fake host with one running guest per volume (disk vdb)."""
    return {'guests': [{
        'name': 'guest-%s-%d' % (label, number), 'state': 'running',
        'disks': [{'target': 'vdb', 'serial': volume_id,
                   'directory': '/nfs/%s' % label,
                   'chain': ['volume-%s' % volume_id]}]}
        for number, volume_id in enumerate(volume_ids)]}


def fault_message(answer):
    """The message of a compute API fault body, or None."""
    try:
        body = answer.json()
    except ValueError:
        return None
    if isinstance(body, dict) and len(body) == 1:
        inner = next(iter(body.values()))
        if isinstance(inner, dict):
            return inner.get('message')
    return None


def log_events(text, *needles):
    """``(epoch seconds, message)`` of the log lines that hold any of
    ``needles``."""
    found = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if not match or not any(n in match.group(5) for n in needles):
            continue
        at = time.mktime(time.strptime(match.group(1),
                                       '%Y-%m-%d %H:%M:%S'))
        found.append((at + int(match.group(2)) / 1000.0, match.group(5)))
    return found


def journal(agent, snapshot_id):
    """The agent's journal rows of ``snapshot_id`` (dicts), oldest first."""
    path = os.path.join(agent.dir, 'journal.sqlite')
    if not os.path.exists(path):
        return []
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            'SELECT seq, kind, state, delivery, status, created_at, '
            'started_at, '
            'finished_at, reported_at FROM operations WHERE snapshot_id = ? '
            'ORDER BY seq', (snapshot_id,)).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [dict(row) for row in rows]


def utc_epoch(text):
    """A journal's or GET answer's naive UTC time as epoch seconds."""
    if not text:
        return None
    moment = datetime.datetime.fromisoformat(str(text).rstrip('Z'))
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def nova(endpoint, token=TOKEN):
    """python-novaclient at 2.1, as Cinder builds it (token endpoint in
    place of Keystone)."""
    auth = token_endpoint.Token(endpoint=endpoint, token=token)
    return nova_client.Client('2.1', session=ks_session.Session(auth=auth))


class Record:
    """A scenario's checks (what was measured against which goal) and its
    timeline."""

    def __init__(self, key, title):
        self.key = key
        self.title = title
        self.timeline = faults.Timeline()
        self.checks = []
        self.notes = []
        self.started = time.monotonic()
        self.seconds = None
        self.outcome = 'INCOMPLETE'

    def check(self, what, measured, goal, ok):
        self.checks.append((what, measured, goal, 'ok' if ok else 'FAILED'))
        return ok

    def finish(self, outcome):
        self.seconds = time.monotonic() - self.started
        self.outcome = outcome

    def timeline_text(self):
        return self.timeline.text()

    def report(self):
        parts = ['## %s. %s\n' % (self.key, self.title),
                 '%s, %.1f s\n' % (self.outcome, self.seconds or 0.0)]
        if self.notes:
            parts.append(''.join('- %s\n' % note for note in self.notes))
        if self.checks:
            parts.append(faults.markdown_table(
                ['check', 'measured', 'goal', 'result'], self.checks))
        parts.append('Timeline:\n\n```\n%s```\n' % self.timeline_text())
        return '\n'.join(parts)


class RegionFaultsTest(base.FunctionalTestCase):
    """One test per failure; the API processes and agents of each are
    its own (an exchange of its own on the broker)."""

    records = {}

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(150, gentle=True))
        self.exchange = broker.exchange()
        self._logs = []
        self._kept = {}
        self.addOnException(self._attach_logs)

    # The scenario's record.

    def record(self, key):
        record = Record(key, dict(SCENARIOS)[key])
        type(self).records[key] = record
        logs = os.path.join(RUN_DIR, 'logs')
        if os.path.isdir(logs):
            for name in os.listdir(logs):
                if name.startswith('scenario-%s-' % key):
                    os.unlink(os.path.join(logs, name))
        self.addDetail('timeline', content.Content(
            content.UTF8_TEXT,
            lambda: [record.timeline_text().encode('utf-8')]))
        self.addDetail('checks', content.Content(
            content.UTF8_TEXT, lambda: [record.report().encode('utf-8')]))
        self.addCleanup(self._publish, record)
        self.current = record
        return record

    def _publish(self, record):
        if record.outcome == 'INCOMPLETE':
            record.finish('FAILED or INCOMPLETE')
        self._harvest_logs(record)
        faults.say(''.join('%s %s | %s\n' % (PREFIX, record.key, line)
                           for line in ([record.title] + record.timeline_text(
                           ).splitlines())))
        os.makedirs(RUN_DIR, exist_ok=True)
        parts = ['# snapdriver region faults\n',
                 '`[api] agent_timeout` = %d s; a timed-out call may take '
                 '%.0f s more; a 503 that needs no waiting comes within '
                 '%.0f s.\n' % (AGENT_TIMEOUT, SLACK, PROMPT),
                 faults.markdown_table(
                     ['scenario', 'outcome', 'seconds'],
                     [['%s. %s' % (key, title),
                       self.records[key].outcome if key in self.records
                       else 'not run',
                       '%.1f' % (self.records[key].seconds or 0)
                       if key in self.records else '']
                      for key, title in SCENARIOS])]
        parts += [self.records[key].report() for key, _ in SCENARIOS
                  if key in self.records]
        path = os.path.join(RUN_DIR, 'summary.md')
        with open(path + '.tmp', 'w') as f:
            f.write('\n'.join(parts))
        os.replace(path + '.tmp', path)

    def _keep_log(self, name, read):
        """Keep a process's log before its fixture goes (cleanups run
        last in, first out: this one before the fixture's own)."""
        try:
            self._kept[name] = read()
        except OSError:
            return
        os.makedirs(os.path.join(RUN_DIR, 'logs'), exist_ok=True)
        path = os.path.join(RUN_DIR, 'logs', 'scenario-%s-%s.log' % (
            self.current.key, re.sub(r'[^\w.-]+', '-', name)))
        with open(path, 'w') as f:
            f.write(self._kept[name])

    def _harvest_logs(self, record):
        """What the processes logged about the faults, on the timeline."""
        needles = getattr(self, 'log_needles', ())
        for name, text in self._kept.items():
            repeated = set()
            for at, message in log_events(text, *needles):
                # oslo.messaging logs each try to reconnect: the first will
                # do.
                if 'is unreachable' in message:
                    connection = message.split(']', 1)[0]
                    if connection in repeated:
                        continue
                    repeated.add(connection)
                record.timeline.mark('[%s] %s' % (name, message[:160]), at)

    def _attach_logs(self, exc_info):
        # Read now: the files go with the fixtures' cleanups.
        for name, read in self._logs:
            try:
                text = read()
            except OSError:
                continue
            self.addDetail(name + '.log',
                           content.text_content(text[-30000:]))

    def passed(self):
        self.current.finish('passed')

    # The region.

    def agent(self, label, volume_ids, url, **conf):
        extra = {'fake': {'assume_overlays': True}}
        for section, options in conf.items():
            extra.setdefault(section, {}).update(options)
        agent = self.useFixture(region.AgentFixture(
            region.host_name(label), url, self.exchange,
            inventory=inventory(label, volume_ids), extra_conf=extra))
        self._logs.append(('agent %s' % agent.host, agent.log_text))
        self.addCleanup(self._keep_log, 'agent %s' % agent.host,
                        agent.log_text)
        return agent

    def api(self, url, name='api', locator='agents', extra=None,
            **api_options):
        conf = region.tier_conf(url, self.exchange, locator=locator,
                                agent_timeout=AGENT_TIMEOUT, **api_options)
        for section, options in (extra or {}).items():
            conf.setdefault(section, {}).update(options)
        api = self.useFixture(server.ApiServerFixture(extra_conf=conf))
        self._logs.append((name, api.log_text))
        self.addCleanup(self._keep_log, name, api.log_text)
        return api

    # Requests, timed and on the timeline.

    def timed(self, label, call):
        sent, start = time.time(), time.monotonic()
        answer = call()
        took = time.monotonic() - start
        message = fault_message(answer) if answer.status >= 400 else None
        self.current.timeline.mark('%s: sent' % label, sent)
        self.current.timeline.mark(
            '%s: HTTP %d after %.3f s%s' % (
                label, answer.status, took,
                ' "%s"' % message if message else ''), sent + took)
        return answer, took

    def post(self, label, api, volume_id, snapshot_id, new_file):
        return self.timed(label, lambda: server.resource_request(
            api.port, TOKEN, 'POST', '', {'snapshot': {
                'volume_id': volume_id, 'create_info': {
                    'snapshot_id': snapshot_id, 'type': 'qcow2',
                    'new_file': new_file}}},
            timeout=AGENT_TIMEOUT + 20))

    def get(self, label, api, snapshot_id):
        return self.timed(label, lambda: server.resource_request(
            api.port, TOKEN, 'GET', '/%s' % snapshot_id,
            timeout=AGENT_TIMEOUT + 20))

    def assertUnavailable(self, answer, took, within, *needles):
        """A 503 within ``within`` seconds whose message holds
        ``needles``."""
        message = fault_message(answer)
        self.assertEqual(503, answer.status, answer)
        self.assertEqual(['serviceUnavailable'], list(answer.json()),
                         answer)
        for needle in needles:
            self.assertIn(needle, message)
        self.assertLessEqual(took, within, message)

    def assertNeverRun(self, api, agent, snapshot_id):
        """No journal row for ``snapshot_id`` on the agent, no GET
        answer for it, and the agent never logged accepting it."""
        self.assertEqual([], journal(agent, snapshot_id))
        answer, _ = self.get('GET %s' % snapshot_id[:8], api, snapshot_id)
        self.assertEqual(404, answer.status, answer)
        self.assertNotIn('Accepted create of snapshot %s' % snapshot_id,
                         agent.log_text())

    def wait_done(self, api, snapshot_id, timeout=20):
        """The operation once it succeeded and its report left pending
        (the outcome is journalled first, the report delivered just
        after: a GET between the two sees it pending)."""
        deadline = time.monotonic() + timeout
        while True:
            [operation] = server.wait_for_operations(
                api.port, snapshot_id, token=TOKEN, timeout=timeout)
            if (operation['status_report']['delivery'] != 'pending'
                    or time.monotonic() > deadline):
                break
            time.sleep(0.05)
        self.assertEqual('succeeded', operation['state'], operation)
        self.assertEqual('delivered',
                         operation['status_report']['delivery'], operation)
        return operation

    # 1. No agent for the host.

    def test_1_no_agent_for_the_host(self):
        url = region.skip_without_broker(self)
        venv = cinder_env.cinder_venv()
        if venv is None:
            self.skipTest(cinder_env.SKIP_REASON)
        record = self.record('1')
        timeline = record.timeline
        self.log_needles = ('No snapdriver agent listens',
                            'Sending the create request')
        cinder = self.useFixture(cinder_env.CinderApiFixture(venv))
        self._logs.append(('cinder-api', cinder.log_text))
        timeline.mark('cinder-api started')
        side = self.useFixture(cinder.side('http://127.0.0.1:9/v2.1',
                                           TOKEN))
        project = uuid.uuid4().hex
        live_volume, lost_volume = str(uuid.uuid4()), str(uuid.uuid4())
        live = self.agent('live', [live_volume], url)
        # An agent that never ran: Cinder names its host, no queue has it.
        missing = region.host_name('never-started')
        for volume_id, host in ((live_volume, live.host),
                                (lost_volume, missing)):
            instance = str(uuid.uuid4())
            seeded = side.seed(volume_id, project, 'demo', instance,
                               attachments=[(host, instance)])
            self.assertEqual('attached', seeded['volume']['attach_status'])
        timeline.mark('Cinder: volume %s attached on %s (no agent), %s on '
                      '%s' % (lost_volume[:8], missing, live_volume[:8],
                              live.host))
        api = self.api(url, locator='cinder', extra={'cinder': {
            'endpoint_override': cinder.endpoint(),
            'auth_type': 'admin_token',
            'token': 'snapdriver:%s' % uuid.uuid4().hex, 'timeout': 5}})
        region.wait_agents(api.port, TOKEN, [live.host])
        timeline.mark('API process (cinder locator) sees agent %s'
                      % live.host)

        answer, took = self.post('1a POST to the live host', api,
                                 live_volume, str(uuid.uuid4()), 'new')
        self.assertEqual(200, answer.status, answer)

        snapshot_id = str(uuid.uuid4())
        for attempt in ('first', 'again (host cached)'):
            answer, took = self.post('1b POST, host %s, %s' % (
                missing, attempt), api, lost_volume, snapshot_id, 'new')
            self.assertUnavailable(
                answer, took, PROMPT, 'No snapdriver agent listens for '
                'host %s' % missing, '[DEFAULT] host = %s' % missing)
            record.check('503 naming the host, %s' % attempt,
                         '%.3f s' % took, '<= %.0f s' % PROMPT, True)

        # What Cinder's compute client gets.
        start = time.monotonic()
        error = self.assertRaises(
            nova_exc.ClientException,
            nova(api.endpoint).assisted_volume_snapshots.create,
            lost_volume, create_info={'snapshot_id': snapshot_id,
                                      'type': 'qcow2', 'new_file': 'new'})
        took = time.monotonic() - start
        timeline.mark('1c novaclient create: %s %s after %.3f s'
                      % (type(error).__name__, error.code, took))
        self.assertEqual(503, error.code)
        self.assertIn(missing, error.message)
        self.assertLessEqual(took, PROMPT)
        record.check('novaclient: ClientException 503 naming the host',
                     '%.3f s' % took, '<= %.0f s' % PROMPT, True)
        self.assertNeverRun(api, live, snapshot_id)

        # The agents locator has no host to name: the volume is nowhere.
        agents_api = self.api(url, name='api (agents locator)')
        region.wait_agents(agents_api.port, TOKEN, [live.host])
        answer, took = self.post('1d POST, agents locator', agents_api,
                                 lost_volume, snapshot_id, 'new')
        self.assertEqual(400, answer.status, answer)
        self.assertIn('Volume %s is not attached to any guest' % lost_volume,
                      fault_message(answer))
        self.assertIn('(1 up)', fault_message(answer))
        record.check('agents locator: volume nobody reports is a 400',
                     '%.3f s' % took, '<= %.0f s' % PROMPT, took <= PROMPT)
        self.assertLessEqual(took, PROMPT)
        self.passed()

    # 2. An agent SIGKILLed, its queue left behind.

    def test_2_agent_killed(self):
        url = region.skip_without_broker(self)
        record = self.record('2')
        timeline = record.timeline
        self.log_needles = ('Refusing', 'Accepted', 'did not answer',
                            'serving topic', 'has not reported')
        volume_id = str(uuid.uuid4())
        agent = self.agent('killed', [volume_id], url)
        api = self.api(url, agent_down_time=DOWN_TIME)
        region.wait_agents(api.port, TOKEN, [agent.host])
        answer, _ = self.post('2a POST (agent up)', api, volume_id,
                              str(uuid.uuid4()), 'new-a')
        self.assertEqual(200, answer.status, answer)

        agent.kill()
        record.timeline.mark('FAULT: SIGKILL of the agent of %s' % agent.host)
        snapshot_id = str(uuid.uuid4())
        answer, took = self.post('2b POST to the killed agent', api,
                                 volume_id, snapshot_id, 'new-b')
        self.assertUnavailable(
            answer, took, AGENT_TIMEOUT + SLACK,
            'The snapdriver agent of host %s did not answer within %d s'
            % (agent.host, AGENT_TIMEOUT), 'will not be carried out later')
        self.assertGreaterEqual(took, AGENT_TIMEOUT - 0.5)
        record.check('503 naming the host', '%.3f s' % took,
                     '<= agent_timeout + %.0f = %.0f s'
                     % (SLACK, AGENT_TIMEOUT + SLACK), True)

        # Silent for agent_down_time: refused without sending anything.
        region.wait_agents(api.port, TOKEN, [agent.host], state='down',
                           timeout=DOWN_TIME + 5)
        timeline.mark('agents list: %s down' % agent.host)
        down_snapshot = str(uuid.uuid4())
        answer, took = self.post('2c POST to the down agent', api,
                                 volume_id, down_snapshot, 'new-c')
        self.assertUnavailable(
            answer, took, PROMPT, 'The snapdriver agent of host %s has not '
            'reported since' % agent.host, 'agent_down_time = %d s'
            % DOWN_TIME, 'nothing was sent to it')
        record.check('down agent: "has not reported since" 503',
                     '%.3f s' % took, '<= %.0f s' % PROMPT, True)

        agent.start()
        timeline.mark('agent of %s restarted on the same journal'
                      % agent.host)
        region.wait_agents(api.port, TOKEN, [agent.host])
        timeline.mark('agents list: %s up' % agent.host)
        # Whatever the broker still held for it would be in by now.
        time.sleep(1.0)
        self.assertNeverRun(api, agent, snapshot_id)
        self.assertNeverRun(api, agent, down_snapshot)
        self.assertNotIn('Refusing', agent.log_text())
        record.check('timed-out request never run after the restart',
                     'no journal row, GET 404, not even delivered',
                     'never run', True)

        # Sent again, the same request is carried out, once.
        answer, took = self.post('2d POST again (same snapshot)', api,
                                 volume_id, snapshot_id, 'new-b')
        self.assertEqual(200, answer.status, answer)
        operation = self.wait_done(api, snapshot_id)
        self.assertEqual(agent.host, operation['host'])
        self.assertEqual(1, len(journal(agent, snapshot_id)))
        record.check('the same request sent again', 'HTTP 200, succeeded, '
                     '1 journal row', 'succeeds once', True)
        self.passed()

    # 3. An agent SIGSTOPped during a request.

    def test_3_agent_frozen(self):
        url = region.skip_without_broker(self)
        record = self.record('3')
        timeline = record.timeline
        self.log_needles = ('Refusing', 'Accepted', 'did not answer',
                            'No calling threads', 'status: creating')
        volume_id = str(uuid.uuid4())
        # Frozen in the middle of an operation, too.
        agent = self.agent('frozen', [volume_id], url,
                           fake={'operation_delay': 1.0})
        api = self.api(url)
        region.wait_agents(api.port, TOKEN, [agent.host])
        running = str(uuid.uuid4())
        answer, _ = self.post('3a POST (agent up)', api, volume_id,
                              running, 'new-a')
        self.assertEqual(200, answer.status, answer)
        time.sleep(0.3)
        [row] = journal(agent, running)
        self.assertEqual('running', row['state'])

        agent.signal(signal.SIGSTOP)
        timeline.mark('FAULT: SIGSTOP of the agent of %s (operation %s '
                      'running)' % (agent.host, running[:8]))
        snapshot_id = str(uuid.uuid4())
        answer, took = self.post('3b POST to the frozen agent', api,
                                 volume_id, snapshot_id, 'new-b')
        self.assertUnavailable(
            answer, took, AGENT_TIMEOUT + SLACK,
            'The snapdriver agent of host %s did not answer within %d s'
            % (agent.host, AGENT_TIMEOUT))
        record.check('503 naming the host', '%.3f s' % took,
                     '<= agent_timeout + %.0f = %.0f s'
                     % (SLACK, AGENT_TIMEOUT + SLACK), True)
        agent.signal(signal.SIGCONT)
        timeline.mark('SIGCONT of the agent')

        refusal = ('Refusing the create request of snapshot %s: it came '
                   % snapshot_id)
        deadline = time.monotonic() + 10
        while refusal not in agent.log_text():
            self.assertLess(time.monotonic(), deadline,
                            'the agent never refused the late request')
            time.sleep(0.05)
        late = re.search(re.escape(refusal) + r'([0-9.]+) s after its '
                         r'deadline', agent.log_text())
        record.check('the agent refuses the late request', '%s s late'
                     % late.group(1), '"Refusing ... after its deadline"',
                     True)
        region.wait_agents(api.port, TOKEN, [agent.host])
        self.assertNeverRun(api, agent, snapshot_id)
        record.check('never run', 'no journal row, GET 404', 'never run',
                     True)

        operation = self.wait_done(api, running)
        record.check('the operation frozen mid-way', 'succeeded, status %s '
                     'delivered' % operation['status_report']['status'],
                     'goes on after SIGCONT', True)

        answer, _ = self.post('3c POST again (same snapshot)', api,
                              volume_id, snapshot_id, 'new-b')
        self.assertEqual(200, answer.status, answer)
        self.wait_done(api, snapshot_id)
        self.assertEqual(1, len(journal(agent, snapshot_id)))
        record.check('the same request sent again', 'HTTP 200, succeeded',
                     'succeeds once', True)
        self.passed()

    # 4. The broker down mid-flight.

    def test_4_broker_outage(self):
        region.skip_without_broker(self)
        if not broker.rabbit_installed():
            self.skipTest('scenario 4 stops a RabbitMQ node of its own: '
                          'install Debian\'s rabbitmq-server')
        record = self.record('4')
        timeline = record.timeline
        self.log_needles = ('Reconnected', 'unreachable', 'Cannot report',
                            'Reporting to the API tier again',
                            'Cannot send the', 'status: creating',
                            'Listening for the agents')
        rabbit = self.useFixture(broker.PrivateRabbit(os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'rabbit')))
        timeline.mark('private RabbitMQ node up')
        volumes = [str(uuid.uuid4()) for _ in range(3)]
        # Two creates run at once, the third waits for a worker.
        agent = self.agent('outage', volumes, rabbit.url,
                           DEFAULT={'create_workers': 2},
                           fake={'operation_delay': OPERATION_DELAY})
        api = self.api(rabbit.url)
        region.wait_agents(api.port, TOKEN, [agent.host])

        accepted = {}
        for number, volume_id in enumerate(volumes):
            snapshot_id = str(uuid.uuid4())
            answer, _ = self.post('4a POST %d' % number, api, volume_id,
                                  snapshot_id, 'new')
            self.assertEqual(200, answer.status, answer)
            accepted[snapshot_id] = volume_id
        timeline.mark('FAULT: rabbitmqctl stop_app')
        rabbit.stop_app()
        timeline.mark('stop_app returned')
        rows = {s: journal(agent, s) for s in accepted}
        in_flight = sorted(r[0]['state'] for r in rows.values())
        record.notes.append('when the broker stopped, the 3 operations '
                            'were: %s' % ', '.join(in_flight))

        # During the outage: 503 at once, for whatever needs an agent.
        refused = str(uuid.uuid4())
        probes = [
            ('4b POST, volume known', lambda: self.post(
                '4b POST, volume known', api, volumes[0], refused,
                'new-2')),
            ('4c POST, volume nobody reported', lambda: self.post(
                '4c POST, volume nobody reported', api,
                str(uuid.uuid4()), str(uuid.uuid4()), 'new')),
            ('4d GET of an accepted snapshot', lambda: self.get(
                '4d GET of an accepted snapshot', api, next(iter(accepted)))),
        ]
        for what, probe in probes:
            answer, took = probe()
            self.assertUnavailable(answer, took, PROMPT,
                                   'message broker cannot be reached')
            record.check('broker down: %s' % what, '503 after %.3f s'
                         % took, '<= %.0f s' % PROMPT, True)
        # The API process is up and says what it misses.
        health = server.request(api.port, 'GET', '/healthcheck')
        self.assertEqual(503, health.status, health)
        self.assertIn(b'message broker: failing', health.body)
        self.assertIsNone(agent.process.poll())
        self.assertIsNone(api.process.poll())
        timeline.mark('API process answers /healthcheck: %d %s; both '
                      'processes up' % (health.status, ' / '.join(
                          health.body.decode().splitlines())))

        # The accepted operations go on and are reported meanwhile.
        deadline = time.monotonic() + 3 * OPERATION_DELAY + 10
        while True:
            rows = {s: journal(agent, s) for s in accepted}
            if all(r and r[0]['delivery'] == 'delivered'
                   for r in rows.values()):
                break
            self.assertLess(time.monotonic(), deadline, rows)
            time.sleep(0.1)
        for snapshot_id, [row] in sorted(rows.items(),
                                         key=lambda item: item[1][0]['seq']):
            timeline.mark('op %s finished %s (journal)' % (
                snapshot_id[:8], row['state']),
                utc_epoch(row['finished_at']))
            timeline.mark('op %s status %s reported (journal)' % (
                snapshot_id[:8], row['status']),
                utc_epoch(row['reported_at']))
        stopped_at = timeline.first('stop_app returned')
        during = [r[0] for r in rows.values()
                  if utc_epoch(r[0]['reported_at']) > stopped_at]
        record.check('operations finished and reported during the outage',
                     '%d of 3 reported after stop_app' % len(during),
                     'all 3 succeeded and delivered', True)

        timeline.mark('rabbitmqctl start_app')
        rabbit.start_app()
        started = time.time()
        timeline.mark('start_app returned (await_startup)', started)
        # The API process and the agent reconnect by themselves.
        probe = next(iter(accepted))
        deadline = time.monotonic() + 60
        meanwhile = {}
        while True:
            answer = server.resource_request(api.port, TOKEN, 'GET',
                                             '/%s' % probe)
            if answer.status == 200:
                break
            self.assertEqual(503, answer.status, answer)
            meanwhile[fault_message(answer)] = meanwhile.get(
                fault_message(answer), 0) + 1
            self.assertLess(time.monotonic(), deadline, answer)
            time.sleep(0.1)
        # An agent that reports is not to be started: it is reconnecting.
        for message in meanwhile:
            self.assertNotIn('No snapdriver agent listens', message)
        back = time.time()
        timeline.mark('first GET answered 200 again (GETs every 0.1 s '
                      'before it: %s)' % ('; '.join(
                          '%d x 503 "%s"' % (count, message)
                          for message, count in meanwhile.items())
                          or 'none'), back)
        region.wait_agents(api.port, TOKEN, [agent.host], timeout=30)
        timeline.mark('agents list: %s up (reports flow again)'
                      % agent.host)
        health = server.request(api.port, 'GET', '/healthcheck')
        self.assertEqual(200, health.status, health)
        self.assertIn(b'message broker: OK', health.body)
        record.check('API and agent reconnected by themselves',
                     'GET 200 %.1f s after start_app' % (back - started),
                     'without a restart', True)
        record.check('503s while the agent reconnects',
                     '%d, none saying to start it' % sum(meanwhile.values()),
                     '503 naming the host', True)
        after = str(uuid.uuid4())
        answer, took = self.post('4e POST after the outage', api,
                                 volumes[1], after, 'new-after')
        self.assertEqual(200, answer.status, answer)
        self.wait_done(api, after, timeout=OPERATION_DELAY + 20)

        for snapshot_id in accepted:
            operation = self.wait_done(api, snapshot_id)
            self.assertEqual('creating',
                             operation['status_report']['status'])
        self.assertNeverRun(api, agent, refused)
        record.check('nothing lost, nothing refused run', '3 of 3 '
                     'accepted succeeded and reported; the 503 one has no '
                     'row', 'no operation or report lost', True)
        self.assertIsNone(agent.process.poll())
        self.assertIsNone(api.process.poll())
        self.passed()
