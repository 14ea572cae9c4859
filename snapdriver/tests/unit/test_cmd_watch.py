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

"""snapdriver-manage operations list, show, watch and resend, on a
journal."""

import io
import json
import os

import fixtures
from rich import console as rich_console

from snapdriver.cmd import manage
from snapdriver.cmd import watch
from snapdriver import objects
from snapdriver.operations import journal as journal_mod
from snapdriver.testing import contract
from snapdriver.tests import base

MiB = 1 << 20


class JournalTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'journal.sqlite')
        self.url = 'sqlite:///' + path
        self.journal = journal_mod.Journal(self.url, migrate=True)
        self.conf.config(group='database', connection=self.url)

    def add(self, op_id, kind='commit', state=objects.RUNNING, **values):
        row = {
            'id': op_id, 'snapshot_id': 'snap-' + op_id, 'volume_id': 'vol1',
            'kind': kind, 'state': state, 'guest': 'guest1', 'disk': 'vdb',
            'request': {'action': 'delete', 'volume_id': 'vol1',
                        'snapshot_id': 'snap-' + op_id},
            'chain_before': ['a', 'b'], 'expected_chain': ['a'],
            'report_attempts': 0,
            'created_at': journal_mod.utcnow()}
        row.update(values)
        self.journal.add(row)

    def progress(self, op_id, done, total=64 * MiB, rate=4 * MiB,
                 job_seconds=None):
        self.journal.update(op_id, progress=objects.MergeProgress(
            bytes_done=done, bytes_total=total, rate=rate,
            job_seconds=job_seconds).to_dict())


class TestWatch(JournalTestCase):

    def script(self, *steps):
        """A sleep that moves the journal on one step each time."""
        steps = list(steps)

        def sleep(seconds):
            steps.pop(0)()
        return sleep

    def test_a_line(self):
        self.add('op1')
        self.progress('op1', 16 * MiB)
        [view] = watch.Watcher(self.journal).views()
        self.assertEqual('snap-op1  commit  guest1 vdb  running  25.0%  '
                         '16.0 MiB / 64.0 MiB  4.0 MiB/s  12 s left',
                         watch.line(view))

    def test_plain_lines_when_not_a_terminal(self):
        self.add('op1')
        self.add('op2', kind='create', state=objects.QUEUED)
        out = io.StringIO()
        code = watch.run(self.journal, interval=0, out=out,
                         sleep=self.script(
                             lambda: self.progress('op1', 16 * MiB),
                             lambda: self.progress('op1', 16 * MiB),
                             lambda: (self.progress('op1', 48 * MiB),
                                      self.journal.update(
                                          'op2', state=objects.RUNNING)),
                             lambda: (self.progress('op1', 64 * MiB,
                                                    job_seconds=16.0),
                                      self.journal.update(
                                          'op1', state=objects.SUCCEEDED)),
                             lambda: self.journal.update(
                                 'op2', state=objects.FAILED,
                                 error='the fake was told to fail')))
        self.assertEqual(1, code)       # op2 failed
        self.assertEqual([
            'snap-op1  commit  guest1 vdb  running',
            'snap-op2  create  guest1 vdb  queued',
            'snap-op1  commit  guest1 vdb  running  25.0%  '
            '16.0 MiB / 64.0 MiB  4.0 MiB/s  12 s left',
            # (nothing changed at the second look)
            'snap-op1  commit  guest1 vdb  running  75.0%  '
            '48.0 MiB / 64.0 MiB  4.0 MiB/s  4 s left',
            'snap-op2  create  guest1 vdb  running',
            'snap-op1  commit  guest1 vdb  succeeded  100.0%  '
            '64.0 MiB / 64.0 MiB  4.0 MiB/s avg  took 16 s',
            'snap-op2  create  guest1 vdb  failed  error: the fake was '
            'told to fail',
        ], out.getvalue().splitlines())

    def test_a_live_table_on_a_terminal(self):
        self.add('op1')
        self.progress('op1', 16 * MiB)
        out = io.StringIO()
        screen = rich_console.Console(file=out, force_terminal=True,
                                      width=160, record=True)
        watcher = watch.Watcher(self.journal, interval=0, sleep=self.script(
            lambda: self.progress('op1', 40 * MiB),
            lambda: (self.progress('op1', 64 * MiB, job_seconds=16.0),
                     self.journal.update('op1', state=objects.SUCCEEDED))))
        [view] = watcher.live(screen)
        self.assertEqual(objects.SUCCEEDED, view.state)
        drawn = screen.export_text()
        # Every look was drawn, a bar each time, the last one full.
        for figures in ('25.0%', '62.5%', '100.0%'):
            self.assertIn(figures, drawn)
        self.assertIn('━' * 30, drawn)
        last = drawn.strip().splitlines()[-1]
        self.assertIn('snap-op1', last)
        self.assertIn('took 16 s', last)

    def test_nothing_to_watch(self):
        out = io.StringIO()
        self.assertEqual(0, watch.run(self.journal, out=out))
        self.assertEqual('No operation is queued or running.\n',
                         out.getvalue())
        out = io.StringIO()
        self.assertEqual(2, watch.run(self.journal, ['nope'], out=out))
        self.assertIn('No operation nope', out.getvalue())

    def test_one_by_its_snapshot_id(self):
        self.add('op1', state=objects.SUCCEEDED)
        self.add('op2')
        out = io.StringIO()
        self.assertEqual(0, watch.run(self.journal, ['snap-op1'], out=out))
        self.assertEqual(['snap-op1  commit  guest1 vdb  succeeded'],
                         out.getvalue().splitlines())


class TestOperationCommands(JournalTestCase):

    def output(self, fn, *args):
        out = self.useFixture(fixtures.MockPatch(
            'sys.stdout', io.StringIO())).mock
        code = fn(*args)
        return code, out.getvalue()

    def test_list_with_filters(self):
        self.add('op1', state=objects.SUCCEEDED, delivery=objects.DELIVERED)
        self.add('op2')
        self.progress('op2', 32 * MiB)
        code, out = self.output(manage.OperationCommands().list,
                                None, None, None, 50)
        self.assertEqual(0, code)
        lines = out.splitlines()
        self.assertEqual(['id', 'snapshot', 'volume', 'kind', 'state',
                          'progress', 'delivery', 'created'],
                         lines[0].split())
        self.assertEqual(['op1', 'snap-op1', 'vol1', 'commit', 'succeeded',
                          '-', 'delivered'], lines[1].split()[:7])
        self.assertEqual(['op2', 'snap-op2', 'vol1', 'commit', 'running',
                          '50%', '-'], lines[2].split()[:7])
        code, out = self.output(manage.OperationCommands().list,
                                'running', None, None, 50)
        self.assertEqual(2, len(out.splitlines()))
        code, out = self.output(manage.OperationCommands().list,
                                None, 'given_up', None, 50)
        self.assertEqual('No operation.\n', out)

    def test_show(self):
        self.add('op1')
        code, out = self.output(manage.OperationCommands().show, 'snap-op1')
        self.assertEqual(0, code)
        [shown] = json.loads(out)
        self.assertEqual(('op1', 'running'), (shown['id'], shown['state']))
        stderr = self.useFixture(fixtures.MockPatch(
            'sys.stderr', io.StringIO())).mock
        self.assertEqual(2, manage.OperationCommands().show('nope'))
        self.assertIn('no operation nope', stderr.getvalue())

    def test_no_journal_is_made(self):
        missing = os.path.join(self.useFixture(fixtures.TempDir()).path,
                               'none.sqlite')
        self.conf.config(group='database', connection='sqlite:///' + missing)
        stderr = self.useFixture(fixtures.MockPatch(
            'sys.stderr', io.StringIO())).mock
        self.assertEqual(1, manage.OperationCommands().watch([], 1.0))
        self.assertFalse(os.path.exists(missing))
        self.assertIn('no journal at %s' % missing, stderr.getvalue())

    def test_the_command_line(self):
        conf = manage.cfg.ConfigOpts()
        conf.register_cli_opt(manage.category_opt)
        conf(['operations', 'watch', 'a', 'b', '--interval', '0.5'],
             project='snapdriver', default_config_files=[])
        self.assertEqual((['a', 'b'], 0.5),
                         (conf.category.ids, conf.category.interval))
        conf = manage.cfg.ConfigOpts()
        conf.register_cli_opt(manage.category_opt)
        conf(['operations', 'list', '--state', 'running'],
             project='snapdriver', default_config_files=[])
        self.assertEqual(('running', None, 50),
                         (conf.category.state, conf.category.delivery,
                          conf.category.limit))


class TestResend(JournalTestCase):
    """operations resend: a given-up or pending report, sent now."""

    def setUp(self):
        super().setUp()
        self.conf.config(status_reporter='recording')
        self.reporter = contract.RecordingReporter()
        self.useFixture(fixtures.MockPatch(
            'snapdriver.plugins.load', return_value=self.reporter))
        self.stderr = self.useFixture(fixtures.MockPatch(
            'sys.stderr', io.StringIO())).mock
        self.stdout = self.useFixture(fixtures.MockPatch(
            'sys.stdout', io.StringIO())).mock

    def test_a_given_up_report_is_sent_and_journalled(self):
        self.add('op1', state=objects.SUCCEEDED, status=objects.DELETING,
                 delivery=objects.GIVEN_UP, report_attempts=40,
                 delivery_detail='gave up after 40 attempt(s)')
        self.assertEqual(0, manage.OperationCommands().resend('snap-op1'))
        self.assertEqual([('snap-op1', 'deleting', '90%')],
                         self.reporter.reports)
        row = self.journal.get('op1')
        self.assertEqual((objects.DELIVERED, 'recorded', 41),
                         (row['delivery'], row['delivery_detail'],
                          row['report_attempts']))
        self.assertIn('deleting report of snapshot snap-op1 (operation '
                      'op1): delivered, recorded', self.stdout.getvalue())

    def test_nothing_to_send(self):
        self.add('op1', state=objects.RUNNING)
        self.add('op2', state=objects.SUCCEEDED, status=objects.CREATING,
                 delivery=objects.DELIVERED)
        commands = manage.OperationCommands()
        self.assertEqual(2, commands.resend('op1'))
        self.assertIn('no finished operation op1', self.stderr.getvalue())
        self.assertEqual(2, commands.resend('op2'))
        self.assertIn('was delivered at', self.stderr.getvalue())
        self.assertEqual([], self.reporter.reports)
