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

"""``snapdriver-manage operations watch`` beside a running service.

snapdriver-api runs the fake driver with ``[fake] operation_delay`` = 4 s
(a simulated job over the disk's 8 GiB); two merges are asked for through
the API, and the real command watches them from the service's journal:
once on a pseudo-terminal (a live rich table, the screen kept as the test's
detail) and once into a pipe (plain lines).
"""

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
import urllib.parse

from testtools import content

from snapdriver.tests import base
from snapdriver.tests.functional import server

RESOURCE = '/v2.1/os-assisted-volume-snapshots'
DELAY = 4.0
# Colours, cursor moves and the like.
_ESCAPES = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r')


def _inventory():
    disks = [{'target': 'vd%s' % letter, 'serial': 'vol-%s' % letter,
              'directory': '/share', 'size': 8 << 30,
              'chain': ['v%s.s2' % letter, 'v%s.s1' % letter,
                        'v%s' % letter]}
             for letter in 'bc']
    return {'guests': [{'name': 'guest1', 'disks': disks}]}


class TestManageWatch(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.server = self.useFixture(server.ApiServerFixture(
            inventory=_inventory(), extra_conf={
                'DEFAULT': {'progress_interval': 0.2},
                'fake': {'operation_delay': DELAY}}))
        self.addOnException(lambda exc_info: self.addDetail(
            'snapdriver-api.log',
            content.text_content(self.server.log_text())))

    def merge(self, letter, snapshot_id):
        info = json.dumps({'volume_id': 'vol-%s' % letter, 'type': 'qcow2',
                           'file_to_merge': 'v%s.s1' % letter,
                           'merge_target_file': 'v%s' % letter})
        answer = server.request(
            self.server.port, 'DELETE', '%s/%s?delete_info=%s'
            % (RESOURCE, snapshot_id, urllib.parse.quote(info, safe='')),
            headers={'X-Auth-Token': 'admin:admin'})
        self.assertEqual(204, answer.status, answer)

    def watch_command(self, *extra):
        return [sys.executable, '-m', 'snapdriver.cmd.manage',
                '--config-file', self.server.config_path,
                'operations', 'watch', '--interval', '0.3'] + list(extra)

    def wait_running(self, snapshot_id):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = server.request(
                self.server.port, 'GET', '%s/%s' % (RESOURCE, snapshot_id),
                headers={'X-Auth-Token': 'admin:admin'})
            if answer.json()['operations'][-1]['state'] == 'running':
                return
            time.sleep(0.05)
        self.fail('%s never ran' % snapshot_id)

    def test_a_live_table_on_a_terminal(self):
        self.merge('b', 'snap-b')
        self.merge('c', 'snap-c')
        self.wait_running('snap-b')
        controller, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ,
                    struct.pack('HHHH', 12, 140, 0, 0))
        env = dict(os.environ, COLUMNS='140', LINES='12', TERM='xterm')
        process = subprocess.Popen(self.watch_command(), stdin=terminal,
                                   stdout=terminal, stderr=subprocess.PIPE,
                                   env=env, close_fds=True)
        os.close(terminal)
        screen = b''
        deadline = time.monotonic() + DELAY + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:     # the command ended: the pty is closed
                    break
                if not chunk:
                    break
                screen += chunk
            elif process.poll() is not None:
                break
        os.close(controller)
        self.assertEqual(0, process.wait(10), process.stderr.read())
        text = screen.decode('utf-8', 'replace')
        self.addDetail('screen', content.text_content(text))
        plain = _ESCAPES.sub('', text)
        # Drawn live: bars, several different percentages of each merge,
        # and at the end both merges done.
        self.assertIn('━', plain)
        percents = set(re.findall(r'(\d+\.\d)%', plain))
        self.assertGreater(len(percents), 4, plain)
        last = plain[plain.rindex('snapshot'):]
        self.assertEqual(2, last.count('succeeded'), last)
        self.assertEqual(2, last.count('100.0%'), last)
        self.assertIn('took', last)

    def test_plain_lines_into_a_pipe(self):
        self.merge('b', 'snap-b')
        self.wait_running('snap-b')
        result = subprocess.run(self.watch_command('snap-b'),
                                capture_output=True, text=True,
                                timeout=DELAY + 30)
        self.assertEqual(0, result.returncode, result.stderr)
        self.addDetail('lines', content.text_content(result.stdout))
        lines = result.stdout.splitlines()
        self.assertNotIn('\x1b', result.stdout)
        self.assertGreater(len(lines), 3, lines)
        self.assertTrue(all(line.startswith('snap-b  commit  guest1 vdb  ')
                            for line in lines), lines)
        percents = [float(p) for p in
                    re.findall(r'  (\d+\.\d)%  ', result.stdout)]
        self.assertEqual(sorted(percents), percents)
        self.assertIn('succeeded  100.0%  8.0 GiB / 8.0 GiB', lines[-1])
