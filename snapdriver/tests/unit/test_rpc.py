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

"""What travels over RPC: typed objects, the context, exceptions."""

import datetime
import json
import re
import sys

import oslo_messaging
from oslo_messaging._drivers import common as messaging_common

from snapdriver.api import faults
from snapdriver import context as context_mod
from snapdriver import exception
from snapdriver import objects
from snapdriver import rpc
from snapdriver.tests import base
from snapdriver.tests.unit import rpc_fixtures

CREATE = objects.CreateRequest(volume_id='vol-1', snapshot_id='snap-1',
                               new_file='volume-1.snap-1')
DELETE = objects.DeleteRequest(volume_id='vol-1', snapshot_id='snap-2',
                               file_to_merge='volume-1.snap-1',
                               merge_target_file='volume-1')
VIEW = objects.OperationView(
    id='op-1', snapshot_id='snap-2', volume_id='vol-1', kind=objects.COMMIT,
    state=objects.SUCCEEDED, request=DELETE, error=None, guest='guest-1',
    disk='vdb', chain_before=['volume-1.snap-1', 'volume-1'],
    expected_chain=['volume-1'], chain=['volume-1'],
    created_at=datetime.datetime(2026, 1, 2, 3, 4, 5, 600000),
    started_at=datetime.datetime(2026, 1, 2, 3, 4, 6),
    finished_at=datetime.datetime(2026, 1, 2, 3, 4, 8, 250000),
    status_report=objects.StatusReport(
        status=objects.DELETING, delivery=objects.DELIVERED, detail='202',
        attempts=1, reported_at=datetime.datetime(2026, 1, 2, 3, 4, 9)),
    host='compute-1')
QUEUED = objects.OperationView(
    id='op-2', snapshot_id='snap-1', volume_id='vol-1', kind=objects.CREATE,
    state=objects.QUEUED, request=CREATE)
REPORT = objects.AgentReport(host='compute-1', driver='libvirt',
                             version='1.2.3', volumes=('vol-1', 'vol-2'),
                             sent_at=1767323045.25)
BLIND = objects.AgentReport(host='compute-2', driver='stub', version='1.2.3',
                            volumes=None, sent_at=1767323046.0)


def wire(data):
    """What the broker hands the other side (the rabbit driver sends
    JSON)."""
    return json.loads(json.dumps(data))


class TestSerializer(base.TestCase):

    def setUp(self):
        super().setUp()
        self.serializer = rpc.Serializer()

    def round_trip(self, entity):
        return self.serializer.deserialize_entity(
            None, wire(self.serializer.serialize_entity(None, entity)))

    def test_every_typed_object(self):
        for entity in (CREATE, DELETE, VIEW, QUEUED, REPORT, BLIND):
            back = self.round_trip(entity)
            self.assertIs(type(entity), type(back))
            self.assertEqual(entity, back)

    def test_the_registry_lists_every_object_that_travels(self):
        self.assertEqual(
            {'CreateRequest', 'DeleteRequest', 'OperationView',
             'AgentReport'}, set(rpc._OBJECTS))

    def test_lists_of_objects(self):
        self.assertEqual([VIEW, QUEUED], self.round_trip([VIEW, QUEUED]))
        self.assertEqual([], self.round_trip([]))
        # A tuple goes as a list, as JSON has it.
        self.assertEqual([REPORT], self.round_trip((REPORT,)))

    def test_tagged_as_json(self):
        data = self.serializer.serialize_entity(None, CREATE)
        self.assertEqual({'snapdriver_object': 'CreateRequest',
                          'data': CREATE.to_dict()}, data)
        self.assertEqual(VIEW.to_dict(), self.serializer.serialize_entity(
            None, VIEW)['data'])

    def test_plain_values_pass(self):
        for value in (None, 1, 1.5, 'text', {'a': [1, 2]}, True,
                      [1, 'a', None]):
            self.assertEqual(value, self.round_trip(value))

    def test_a_subclass_is_not_mistaken_for_a_known_object(self):
        class Other(objects.CreateRequest):
            pass

        other = Other(volume_id='v', snapshot_id='s', new_file='n')
        self.assertIs(other, self.serializer.serialize_entity(None, other))

    def test_unknown_tag_is_refused(self):
        error = self.assertRaises(
            ValueError, self.serializer.deserialize_entity, None,
            {'snapdriver_object': 'Nonsense', 'data': {}})
        self.assertIn("'Nonsense'", str(error))

    def test_context(self):
        context = context_mod.RequestContext(
            user_id='u1', project_id='p1', roles=['admin', 'member'],
            auth_token='TOKEN', request_id='req-1',
            global_request_id='req-2',
            service_catalog=[{'type': 'volumev3', 'endpoints': []}])
        back = self.serializer.deserialize_context(
            wire(self.serializer.serialize_context(context)))
        self.assertIsInstance(back, context_mod.RequestContext)
        for name in ('user_id', 'project_id', 'roles', 'auth_token',
                     'request_id', 'global_request_id', 'service_catalog'):
            self.assertEqual(getattr(context, name), getattr(back, name),
                             name)

    def test_no_context(self):
        self.assertEqual({}, self.serializer.serialize_context(None))
        self.assertIsNone(self.serializer.deserialize_context({}))
        self.assertIsNone(self.serializer.deserialize_context(None))


def _sample_kwargs(cls):
    """A value for every field of ``cls.msg_fmt``, of the type its
    conversion needs."""
    kwargs = {}
    for name, conversion in re.findall(r'%\((\w+)\)[-#0 +.\d]*([a-z])',
                                       cls.msg_fmt):
        kwargs[name] = {'d': 3, 'f': 1.25}.get(conversion, 'x-' + name)
    return kwargs


def _exception_classes():
    return sorted((cls for cls in vars(exception).values()
                   if isinstance(cls, type)
                   and issubclass(cls, exception.SnapdriverException)),
                  key=lambda cls: cls.__name__)


class TestRemoteExceptions(base.TestCase):
    """An exception raised in an agent is rebuilt in the API process as the
    rabbit driver does it (serialize_remote_exception in the agent's
    reply, deserialize_remote_exception at the caller), and the caller
    gets the answer a single process gives."""

    def across(self, error):
        try:
            raise error
        except Exception:
            data = messaging_common.serialize_remote_exception(
                sys.exc_info())
        return messaging_common.deserialize_remote_exception(
            data, rpc.ALLOWED_EXMODS)

    def test_every_snapdriver_exception(self):
        classes = _exception_classes()
        self.assertGreater(len(classes), 20)
        for cls in classes:
            error = cls(**_sample_kwargs(cls))
            remote = self.across(error)
            self.assertIsInstance(remote, cls, cls.__name__)
            self.assertEqual(error.message, remote.message, cls.__name__)
            self.assertEqual(error.code, remote.code, cls.__name__)
            # The message has no traceback: str() of the rebuilt
            # exception has one, the answer must not.
            self.assertIn('Traceback', str(remote))
            if error.code < 500 or error.code == 503:
                local = faults.from_exception(error, 'req-1')
                answer = faults.from_exception(remote, 'req-1')
                self.assertEqual((local.status_int, local.json),
                                 (answer.status_int, answer.json),
                                 cls.__name__)

    def test_a_message_given_in_full(self):
        error = exception.DriverLoadError("The driver 'x' is broken")
        self.assertEqual("The driver 'x' is broken",
                         self.across(error).message)

    def test_other_modules_stay_remote_errors(self):
        class LibraryError(Exception):
            pass

        LibraryError.__module__ = 'sqlalchemy.exc'
        remote = self.across(LibraryError('database is locked'))
        self.assertIsInstance(remote, oslo_messaging.RemoteError)
        self.assertEqual('LibraryError', remote.exc_type)


class TestTransport(base.TestCase):

    def test_one_transport_per_process(self):
        fake = self.useFixture(rpc_fixtures.FakeTransport())
        self.assertIs(fake.transport, rpc.get_transport())
        rpc.cleanup()
        self.assertIsNone(rpc._transport)
        again = rpc.get_transport()
        self.assertIsNot(fake.transport, again)
        self.assertIs(again, rpc.get_transport())

    def test_cleanup_without_a_transport(self):
        self.useFixture(rpc_fixtures.FakeTransport())
        rpc.cleanup()
        rpc.cleanup()

    def test_exchange(self):
        self.useFixture(rpc_fixtures.FakeTransport())
        self.assertEqual('snapdriver', self.conf.conf.control_exchange)

    def test_bad_url_is_a_messaging_error(self):
        self.useFixture(rpc_fixtures.FakeTransport())
        rpc.cleanup()
        self.conf.config(transport_url='nosuchdriver://x/')
        self.assertRaises(oslo_messaging.MessagingException,
                          rpc.get_transport)

    def test_api_server_names_are_unique(self):
        self.conf.config(host='api-1')
        names = {rpc.api_server_name() for _ in range(20)}
        self.assertEqual(20, len(names))
        self.assertTrue(all(name.startswith('api-1.') for name in names))
