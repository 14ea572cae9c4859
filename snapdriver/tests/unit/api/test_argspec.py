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

from pecan import core
from pecan import util

from snapdriver.api import argspec
from snapdriver.tests import base


class Controller:
    def get_one(self, snapshot_id, extra=None):
        pass


class ArgspecTestCase(base.TestCase):

    def test_one_read_per_function(self):
        calls = []

        def counting(method):
            calls.append(method)
            return util.getargspec(method)
        cached = argspec._cached(counting)
        first, second = Controller(), Controller()
        spec = cached(first.get_one)
        self.assertIs(spec, cached(second.get_one))
        self.assertEqual(1, len(calls))
        self.assertEqual(util.getargspec(first.get_one), spec)
        self.assertEqual(['self', 'snapshot_id', 'extra'], spec.args)

    def test_unhashable_callables_are_read_each_time(self):
        class Unhashable:
            __hash__ = None

            def __call__(self, a):
                pass
        calls = []

        def counting(method):
            calls.append(method)
            return None
        cached = argspec._cached(counting)
        thing = Unhashable()
        cached(thing)
        cached(thing)
        self.assertEqual(2, len(calls))

    def test_install_is_idempotent(self):
        argspec.install()
        installed = core.getargspec
        argspec.install()
        self.assertIs(installed, core.getargspec)
        self.assertTrue(hasattr(core.getargspec, 'uncached'))
