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

"""The reference documents stay tied to the code.

doc/support-matrix.md is written by tools/generate-config-doc.py from the
drivers' capabilities; a change to these must come with the regenerated
document. The configuration and policy references are generated when the
documentation is built (tools/build-docs.sh, run by tools/run-tests.sh with
warnings as errors; doc/conf.py warns when an option or a rule is missing
from what the extensions rendered). These tests check what the build reads:
the directives and their namespaces, and that every document is part of
the build.
"""

import configparser
import glob
import importlib.metadata
import importlib.util
import os
import re

from snapdriver.conf import opts
from snapdriver import policy
from snapdriver.tests import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
DOC = os.path.join(TOP, 'doc')
ETC = os.path.join(TOP, 'etc', 'snapdriver')
TOOL = os.path.join(TOP, 'tools', 'generate-config-doc.py')


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _generator_namespaces(name):
    # ``namespace`` repeats, which configparser would refuse.
    return [line.split('=', 1)[1].strip()
            for line in _read(os.path.join(ETC, name)).splitlines()
            if re.match(r'^namespace\s*=', line)]


def _entry_point(group, name):
    found = [entry for entry in importlib.metadata.entry_points(group=group)
             if entry.name == name]
    return found[0].value if found else None


class TestSupportMatrix(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tool = _load('generate_config_doc', TOOL)

    def test_support_matrix_is_current(self):
        path, render = self.tool.DOCS['support-matrix']
        self.assertEqual(render(), _read(os.path.join(TOP, path)),
                         "%s is stale: run tools/generate-config-doc.py"
                         % path)

    def test_check_mode_agrees(self):
        self.assertEqual(0, self.tool.main(['--check']))

    def test_only_the_support_matrix_is_written(self):
        # The configuration and policy references come from the Sphinx
        # extensions now; the tool must not write over them.
        self.assertEqual(['support-matrix'], sorted(self.tool.DOCS))

    def test_wrapping_keeps_markdown_blocks_out(self):
        # A wrapped line must not turn into a list item or a heading, and
        # a code span must not be split across lines.
        text = self.tool._wrap('x ' * 40 + '- y ' + '`a b c` ' * 12)
        for line in text.splitlines():
            self.assertFalse(line.startswith('- '), text)
            self.assertEqual(0, line.count('`') % 2, text)


class TestConfigurationReference(base.TestCase):

    def _directive_namespaces(self):
        text = _read(os.path.join(DOC, 'configuration.md'))
        match = re.search(r'^\.\. show-options::\n\n((?:   \S+\n)+)', text,
                          re.M)
        self.assertIsNotNone(match, "configuration.md has no show-options "
                                    "directive listing namespaces")
        return match.group(1).split()

    def test_directive_lists_the_namespaces_of_the_sample(self):
        self.assertEqual(
            _generator_namespaces('snapdriver-config-generator.conf'),
            self._directive_namespaces())

    def test_snapdriver_namespace_lists_every_option(self):
        # The namespace the directive and the sample read resolves to the
        # function that lists every option snapdriver registers.
        self.assertEqual('snapdriver.conf.opts:list_opts',
                         _entry_point('oslo.config.opts', 'snapdriver'))
        self.assertTrue(opts.list_opts())

    def test_every_namespace_resolves(self):
        for namespace in self._directive_namespaces():
            self.assertIsNotNone(
                _entry_point('oslo.config.opts', namespace),
                "no oslo.config.opts entry point %s" % namespace)


class TestPolicyReference(base.TestCase):

    def test_directive_present(self):
        text = _read(os.path.join(DOC, 'policy.md'))
        self.assertRegex(text, r'(?m)^\.\. show-policy::$')

    def test_policy_namespace_lists_every_rule(self):
        self.assertEqual(
            ['snapdriver'],
            _generator_namespaces('snapdriver-policy-generator.conf'))
        self.assertEqual('snapdriver.policy:list_rules',
                         _entry_point('oslo.policy.policies', 'snapdriver'))
        self.assertTrue(policy.list_rules())


class TestSphinxProject(base.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = _load('snapdriver_doc_conf', os.path.join(DOC, 'conf.py'))

    def test_every_document_is_in_the_toctree(self):
        sources = {os.path.splitext(os.path.basename(path))[0]
                   for pattern in ('*.md', '*.rst')
                   for path in glob.glob(os.path.join(DOC, pattern))}
        self.assertEqual(sources - {'index'}, set(self.conf.DOCUMENTS))

    def test_generator_configurations_exist(self):
        for path in (self.conf.config_generator_config_file,
                     self.conf.policy_generator_config_file):
            self.assertTrue(os.path.isfile(path), path)
            parser = configparser.ConfigParser(strict=False)
            parser.read(path)
            self.assertTrue(parser.has_option('DEFAULT', 'namespace'))

    def test_links_out_of_doc_become_text(self):
        # The README has no page in the built documentation.
        text = self.conf._OUTSIDE_LINK.sub(
            self.conf._outside_link,
            '[README](../README.md) and [x](../examples/)')
        self.assertEqual('README (`README.md` in the source tree) and '
                         'x (`examples/` in the source tree)', text)

    def test_links_to_files_out_of_doc_stay(self):
        # A sample is a file to download: Sphinx copies it.
        link = '[s](../etc/snapdriver/policy.yaml.sample)'
        self.assertEqual(link, self.conf._OUTSIDE_LINK.sub(
            self.conf._outside_link, link))
