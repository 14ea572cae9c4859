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

"""The generated reference documents are current.

doc/configuration.md, doc/policy.md and doc/support-matrix.md are written
by tools/generate-config-doc.py from the options, the policy rules and the
drivers' capabilities; a change to any of these must come with the
regenerated document.
"""

import importlib.util
import os

from snapdriver.conf import opts
from snapdriver import policy
from snapdriver.tests import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
TOOL = os.path.join(TOP, 'tools', 'generate-config-doc.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('generate_config_doc',
                                                  TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestGeneratedDocs(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tool = _load_tool()

    def _committed(self, key):
        path, _render = self.tool.DOCS[key]
        with open(os.path.join(TOP, path), encoding='utf-8') as f:
            return path, f.read()

    def _assert_current(self, key):
        path, text = self._committed(key)
        _path, render = self.tool.DOCS[key]
        self.assertEqual(render(), text,
                         "%s is stale: run tools/generate-config-doc.py"
                         % path)

    def test_configuration_is_current(self):
        self._assert_current('configuration')

    def test_policy_is_current(self):
        self._assert_current('policy')

    def test_support_matrix_is_current(self):
        self._assert_current('support-matrix')

    def test_every_option_has_a_section(self):
        _path, text = self._committed('configuration')
        for group, options in opts.list_opts():
            for opt in options:
                self.assertIn('### `[%s] %s`' % (group, opt.dest), text)

    def test_every_rule_has_a_section(self):
        _path, text = self._committed('policy')
        for rule in policy.list_rules():
            self.assertIn('## `%s`' % rule.name, text)
            self.assertIn(rule.check_str, text)

    def test_check_mode_agrees(self):
        self.assertEqual(0, self.tool.main(['--check']))

    def test_wrapping_keeps_markdown_blocks_out(self):
        # A wrapped line must not turn into a list item or a heading, and
        # a code span must not be split across lines.
        text = self.tool._wrap('x ' * 40 + '- y ' + '`a b c` ' * 12)
        for line in text.splitlines():
            self.assertFalse(line.startswith('- '), text)
            self.assertEqual(0, line.count('`') % 2, text)
