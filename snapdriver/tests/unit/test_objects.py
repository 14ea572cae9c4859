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

"""The vocabulary of operations and its typed objects."""

import datetime
import json

from snapdriver import chain
from snapdriver import objects
from snapdriver.tests import base

CREATE = objects.CreateRequest(volume_id='v', snapshot_id='s',
                               new_file='v.s')
DELETE = objects.DeleteRequest(volume_id='v', snapshot_id='s',
                               file_to_merge='v.s', merge_target_file=None)


class TestVocabulary(base.TestCase):

    def test_values_are_the_wire_values(self):
        self.assertEqual(('create', 'delete'), objects.ACTIONS)
        self.assertEqual(('create', 'pull', 'commit'), objects.KINDS)
        self.assertEqual((chain.CREATE, chain.PULL, chain.COMMIT),
                         objects.KINDS)
        self.assertEqual(('queued', 'running', 'succeeded', 'failed'),
                         objects.STATES)
        self.assertEqual(('succeeded', 'failed'), objects.FINAL)
        self.assertEqual(('pending', 'delivered', 'given_up'),
                         objects.DELIVERIES)

    def test_cinder_status_values(self):
        self.assertEqual(
            ['creating', 'error', 'deleting', 'error_deleting'],
            [objects.cinder_status(action, succeeded)
             for action in objects.ACTIONS for succeeded in (True, False)])
        self.assertEqual('90%', objects.PROGRESS)

    def test_action_of_kind(self):
        self.assertEqual(['create', 'delete', 'delete'],
                         [objects.action_of(kind) for kind in objects.KINDS])


class TestRequests(base.TestCase):

    def test_to_dict_and_back(self):
        self.assertEqual({'action': 'create', 'volume_id': 'v',
                          'snapshot_id': 's', 'new_file': 'v.s'},
                         CREATE.to_dict())
        self.assertEqual({'action': 'delete', 'volume_id': 'v',
                          'snapshot_id': 's', 'file_to_merge': 'v.s',
                          'merge_target_file': None}, DELETE.to_dict())
        for request in (CREATE, DELETE):
            data = json.loads(json.dumps(request.to_dict()))
            self.assertEqual(request, objects.Request.from_dict(data))

    def test_journal_rows_of_the_old_shape_load(self):
        # What the controller wrote before requests were typed.
        old_create = {'kind': 'create', 'volume_id': 'v',
                      'snapshot_id': 's', 'new_file': 'v.s'}
        old_delete = {'kind': 'delete', 'volume_id': 'v',
                      'snapshot_id': 's', 'file_to_merge': 'v.s',
                      'merge_target_file': None}
        self.assertEqual(CREATE, objects.Request.from_dict(old_create))
        self.assertEqual(DELETE, objects.Request.from_dict(old_delete))
        self.assertEqual(old_create, CREATE.to_api_dict())
        self.assertEqual(old_delete, DELETE.to_api_dict())
        self.assertEqual(list(old_delete), list(DELETE.to_api_dict()))

    def test_unknown_action(self):
        self.assertRaises(ValueError, objects.Request.from_dict,
                          {'action': 'pull', 'volume_id': 'v',
                           'snapshot_id': 's'})

    def test_equality_is_every_field(self):
        self.assertEqual(CREATE, objects.CreateRequest('v', 's', 'v.s'))
        self.assertNotEqual(CREATE, objects.CreateRequest('v', 's', 'x'))
        self.assertNotEqual(
            DELETE, objects.DeleteRequest('v', 's', 'v.s', 'base'))

    def test_file_names_to_check(self):
        self.assertEqual([('new_file', None)],
                         objects.CreateRequest('v', 's', None).file_names())
        self.assertEqual([('file_to_merge', 'v.s')], DELETE.file_names())
        self.assertEqual([], objects.DeleteRequest('v', 's').file_names())


class TestOperationView(base.TestCase):

    created = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456)

    def _row(self, **values):
        row = {
            'id': 'op', 'snapshot_id': 's', 'volume_id': 'v',
            'kind': 'pull', 'state': 'succeeded', 'project_id': 'p',
            'error': None, 'guest': 'g', 'disk': 'vda',
            'request': {'kind': 'delete', 'volume_id': 'v',
                        'snapshot_id': 's', 'file_to_merge': None,
                        'merge_target_file': None},
            'context': {'auth_token': 'secret'},
            'chain_before': ['a', 'b'], 'expected_chain': ['a'],
            'chain_after': ['a'], 'status': 'deleting',
            'delivery': 'delivered', 'delivery_detail': 'ok',
            'report_attempts': 1, 'created_at': self.created,
            'started_at': self.created,
            'finished_at': self.created + datetime.timedelta(seconds=1.5),
            'reported_at': self.created + datetime.timedelta(seconds=2),
        }
        row.update(values)
        return row

    def test_what_the_api_shows(self):
        shown = objects.OperationView.from_row(self._row()).to_dict()
        self.assertEqual({
            'id': 'op', 'snapshot_id': 's', 'volume_id': 'v',
            'kind': 'pull', 'state': 'succeeded', 'project_id': 'p',
            'error': None, 'guest': 'g', 'disk': 'vda',
            'request': {'kind': 'delete', 'volume_id': 'v',
                        'snapshot_id': 's', 'file_to_merge': None,
                        'merge_target_file': None},
            'chain_before': ['a', 'b'], 'expected_chain': ['a'],
            'chain': ['a'],
            'created_at': '2024-05-06T07:08:09.123456Z',
            'started_at': '2024-05-06T07:08:09.123456Z',
            'finished_at': '2024-05-06T07:08:10.623456Z',
            'duration_seconds': 1.5,
            'progress': None,
            'status_report': {
                'status': 'deleting', 'progress': '90%',
                'delivery': 'delivered', 'detail': 'ok', 'attempts': 1,
                'reported_at': '2024-05-06T07:08:11.123456Z'},
        }, shown)
        self.assertEqual(
            ['id', 'snapshot_id', 'volume_id', 'kind', 'state',
             'project_id', 'error', 'guest', 'disk', 'request',
             'chain_before', 'expected_chain', 'chain', 'created_at',
             'started_at', 'finished_at', 'duration_seconds',
             'progress', 'status_report'], list(shown))

    RUNNING = {'bytes_done': 3 << 20, 'bytes_total': 8 << 20,
               'rate_bytes_per_second': 1 << 20,
               'job_started_at': '2024-05-06T07:08:09.123456Z',
               'updated_at': '2024-05-06T07:08:12.123456Z'}

    def test_a_running_merge_shows_its_progress(self):
        shown = objects.OperationView.from_row(self._row(
            state='running', progress=self.RUNNING)).to_dict()
        # 3 of 8 MiB at 1 MiB/s: 37.5 %, 5 s left; no end yet.
        self.assertEqual({
            'bytes_done': 3 << 20, 'bytes_total': 8 << 20, 'percent': 37.5,
            'rate_bytes_per_second': 1 << 20, 'eta_seconds': 5.0,
            'job_started_at': '2024-05-06T07:08:09.123456Z',
            'updated_at': '2024-05-06T07:08:12.123456Z',
            'job_seconds': None, 'average_rate_bytes_per_second': None,
        }, shown['progress'])

    def test_a_finished_merge_shows_its_job(self):
        shown = objects.OperationView.from_row(self._row(progress=dict(
            self.RUNNING, bytes_done=8 << 20, job_seconds=4.0))).to_dict()
        progress = shown['progress']
        self.assertEqual((100.0, None, 4.0, 2 << 20),
                         (progress['percent'], progress['eta_seconds'],
                          progress['job_seconds'],
                          progress['average_rate_bytes_per_second']))

    def test_percent_rounds_down(self):
        # Never 100 % before the job is done, never above it.
        progress = objects.MergeProgress(bytes_done=999, bytes_total=1000)
        self.assertEqual(99.9, progress.percent)
        self.assertEqual(100.0, objects.MergeProgress(
            bytes_done=1001, bytes_total=1000).percent)
        self.assertIsNone(objects.MergeProgress(0, 0).percent)
        self.assertIsNone(progress.eta_seconds)      # no rate yet

    def test_a_queued_operation(self):
        shown = objects.OperationView.from_row(self._row(
            state='queued', chain_after=None, expected_chain=['a'],
            status=None, delivery=None, delivery_detail=None,
            report_attempts=0, started_at=None, finished_at=None,
            reported_at=None)).to_dict()
        self.assertEqual(['a', 'b'], shown['chain'])
        self.assertIsNone(shown['duration_seconds'])
        self.assertEqual({'status': None, 'progress': None, 'delivery': None,
                          'detail': None, 'attempts': 0,
                          'reported_at': None}, shown['status_report'])

    def test_to_dict_and_back(self):
        for row in (self._row(), self._row(progress=self.RUNNING), self._row(
                state='queued', chain_after=None, started_at=None,
                finished_at=None, reported_at=None, status=None)):
            view = objects.OperationView.from_row(row)
            data = json.loads(json.dumps(view.to_dict()))
            self.assertEqual(view, objects.OperationView.from_dict(data))
