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

"""The journal's start-up check against the newest revision."""

import os

import fixtures

from snapdriver.db import api as db_api
from snapdriver.db import migration
from snapdriver import exception
from snapdriver.tests import base


class HeadTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.url = 'sqlite:///%s' % os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'journal.sqlite')
        self.engine = db_api.create_engine(self.url)
        self.addCleanup(self.engine.dispose)

    def test_head_constant_is_the_scripts_head(self):
        self.assertEqual(migration.head(), migration.HEAD)

    def test_a_journal_behind_is_still_refused(self):
        migration.upgrade(self.engine, '0002')
        error = self.assertRaises(exception.JournalSchemaError,
                                  migration.check, self.engine, 'j')
        self.assertIn('is at revision 0002, not the newest (0003)',
                      str(error))
