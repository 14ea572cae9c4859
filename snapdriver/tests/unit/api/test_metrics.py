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

"""/metrics: Prometheus text, behind authentication and policy."""

import time

from prometheus_client.parser import text_string_to_metric_families

from snapdriver import metrics
from snapdriver.tests.unit.api import base

MEMBER = {'X-Auth-Token': 'demo:p1'}


def _value(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0


class TestMetrics(base.ApiTestCase):

    def setUp(self):
        super().setUp()
        metrics.watch_journal(self.manager.journal)

    def scrape(self, headers=base.ADMIN, status=200):
        return self.app.get('/metrics', headers=headers, status=status)

    def test_off_by_default(self):
        self.scrape(status=404)

    def test_for_admins_only(self):
        self.conf.config(group='metrics', enabled=True)
        answer = self.scrape(headers=MEMBER, status=403)
        self.assertIn('snapdriver:metrics', answer.text)
        self.app.get('/metrics', status=401)

    def test_what_a_create_and_a_merge_count(self):
        self.conf.config(group='metrics', enabled=True)
        self.conf.config(group='fake', operation_delay=0.5)
        self.manager._progress.interval = 0.05
        before = {
            'created': _value('snapdriver_operations_total', kind='create',
                              outcome='succeeded'),
            'pulled': _value('snapdriver_operations_total', kind='pull',
                             outcome='succeeded'),
            'posts': _value('snapdriver_api_requests_total', method='POST',
                            status='200'),
            'reports': _value('snapdriver_status_reports_total',
                              status='creating', delivery='delivered'),
            'jobs': _value('snapdriver_block_job_duration_seconds_count',
                           kind='pull'),
        }
        self.post(self.create_body())
        self.assertTrue(self.manager.wait_idle(10))
        self.delete({'volume_id': base.VOLUME, 'type': 'qcow2',
                     'file_to_merge': None, 'merge_target_file': None},
                    snapshot_id='snap-2')
        # While the merge runs: its progress, as a series of its own.
        deadline = time.monotonic() + 5
        while not _value('snapdriver_merge_progress_ratio',
                         operation=self.manager.query(None, 'snap-2')[0].id,
                         snapshot='snap-2', kind='pull', guest='vm1',
                         disk='vda'):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        self.assertTrue(self.manager.wait_idle(10))
        answer = self.scrape()
        self.assertEqual(metrics.exposition_text()[1],
                         answer.headers['Content-Type'])
        self.assertTrue(answer.headers['Content-Type'].startswith(
            'text/plain; version='))
        families = {family.name: family for family in
                    text_string_to_metric_families(answer.text)}
        for name in ('snapdriver_operations', 'snapdriver_api_requests',
                     'snapdriver_operation_duration_seconds',
                     'snapdriver_block_job_duration_seconds',
                     'snapdriver_status_reports',
                     'snapdriver_status_report_attempts',
                     'snapdriver_merge_progress_ratio',
                     'snapdriver_operations_in_state',
                     'snapdriver_status_reports_pending'):
            self.assertIn(name, families)
        self.assertEqual(before['created'] + 1, _value(
            'snapdriver_operations_total', kind='create',
            outcome='succeeded'))
        self.assertEqual(before['pulled'] + 1, _value(
            'snapdriver_operations_total', kind='pull', outcome='succeeded'))
        self.assertEqual(before['posts'] + 1, _value(
            'snapdriver_api_requests_total', method='POST', status='200'))
        self.assertEqual(before['reports'] + 1, _value(
            'snapdriver_status_reports_total', status='creating',
            delivery='delivered'))
        self.assertEqual(before['jobs'] + 1, _value(
            'snapdriver_block_job_duration_seconds_count', kind='pull'))
        # The journal's counts, as scraped; the merge's series is gone.
        self.assertEqual(2, _value('snapdriver_operations_in_state',
                                   state='succeeded'))
        self.assertEqual(0, _value('snapdriver_status_reports_pending'))
        self.assertNotIn('snap-2', ''.join(
            str(sample) for sample in
            families['snapdriver_merge_progress_ratio'].samples))
