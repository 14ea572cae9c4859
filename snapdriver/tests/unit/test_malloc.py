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

import ctypes

import fixtures

from snapdriver import malloc
from snapdriver.tests import base


class FakeLibc:
    def __init__(self, result=1):
        self.calls = []
        self.result = result

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.result


class ArenasTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.libc = FakeLibc()
        self.useFixture(fixtures.MonkeyPatch(
            'ctypes.CDLL', lambda name: self.libc))
        self.conf.config(malloc_arenas=2)

    def test_limit_set(self):
        self.conf.config(malloc_arenas=3)
        self.assertTrue(malloc.limit_arenas())
        self.assertEqual([(malloc.M_ARENA_MAX, 3)], self.libc.calls)

    def test_zero_leaves_glibc_alone(self):
        self.conf.config(malloc_arenas=0)
        self.assertFalse(malloc.limit_arenas())
        self.assertEqual([], self.libc.calls)

    def test_refused(self):
        self.libc.result = 0
        self.assertFalse(malloc.limit_arenas())

    def test_no_glibc(self):
        def missing(name):
            raise OSError("no such library")
        self.useFixture(fixtures.MonkeyPatch('ctypes.CDLL', missing))
        self.assertFalse(malloc.limit_arenas())
        self.assertIs(ctypes.CDLL, missing)
