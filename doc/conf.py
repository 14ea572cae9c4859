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

"""Sphinx configuration for snapdriver's documentation.

The source directory is doc/ itself: the Markdown documents there are read
as they are (myst-parser), so that they stay readable on GitHub and the
README's links to doc/*.md keep working. tools/build-docs.sh builds them:

    sphinx-build -W --keep-going -b html doc doc/build/html

The configuration and policy references are generated during the build
by oslo.config's and oslo.policy's Sphinx extensions (the ``show-options``
and ``show-policy`` directives in configuration.md and policy.md), and so
are the sample files (written under _static/, which git ignores).
"""

import importlib.metadata
import os
import re

from sphinx.util import logging

LOG = logging.getLogger(__name__)

DOC = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(DOC)
ETC = os.path.join(TOP, 'etc', 'snapdriver')

project = 'snapdriver'
copyright = 'snapdriver contributors'

extensions = [
    'myst_parser',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'oslo_policy.sphinxext',
    'oslo_policy.sphinxpolicygen',
]

source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
root_doc = 'index'
# build/: the output of tools/build-docs.sh; api/: the OpenAPI document,
# which is data, not a page.
exclude_patterns = ['build', 'api', '_static']

# Every document, in the order of index.md's tables. index.md keeps no
# toctree of its own (GitHub would show the directive as a code block), so
# one is added to it when Sphinx reads it (see setup() below). A document
# missing from this list fails the build (-W: "not included in any
# toctree").
DOCUMENTS = [
    'deploying',
    'configuration',
    'sample-config',
    'policy',
    'sample-policy',
    'support-matrix',
    'troubleshooting',
    'architecture',
    'benchmarks',
    'testing',
    'writing-a-driver',
]

# myst-parser: headings get the anchors GitHub gives them, so that links
# such as deploying.md#clocks resolve in both places.
myst_heading_anchors = 4
myst_enable_extensions = ['colon_fence']
# Where a Markdown link that is not a document is looked up. Not the
# oslo.config domain: its resolver fails on a target it does not know.
myst_ref_domains = ['std']

# oslo.config: the sample configuration file, from the same generator
# configuration as etc/snapdriver/snapdriver.conf.sample.
config_generator_config_file = os.path.join(
    ETC, 'snapdriver-config-generator.conf')
sample_config_basename = '_static/snapdriver'

# oslo.policy: the sample policy file, and the rules for show-policy.
policy_generator_config_file = os.path.join(
    ETC, 'snapdriver-policy-generator.conf')
sample_policy_basename = '_static/snapdriver'

html_static_path = ['_static']
# Sphinx's default theme. openstackdocstheme installs and builds, but it
# brands every page as docs.openstack.org (header, footer, licence, bug
# links) and wants a .gitreview: not this project's.
html_theme = 'alabaster'
html_title = 'snapdriver documentation'


# A Markdown link out of doc/, as GitHub follows it: [text](../path).
_OUTSIDE_LINK = re.compile(r'\[([^\]\n]+)\]\(\.\./([^)#\s]+)\)')


def _outside_link(match):
    """A link out of doc/ as the built documentation shows it.

    A file that is not a document (a sample) stays a link: Sphinx copies
    it for download. A directory or a Markdown file of the source tree
    (the README, examples/) has no page here, so the link becomes its text
    and the path in the source tree.
    """
    text, path = match.groups()
    full = os.path.join(TOP, path)
    if os.path.isfile(full) and not path.endswith('.md'):
        return match.group(0)
    if path.strip('/') in text:
        return text
    return '%s (`%s` in the source tree)' % (text, path)


def _read_markdown(app, docname, source):
    source[0] = _OUTSIDE_LINK.sub(_outside_link, source[0])
    if docname == root_doc:
        source[0] += ('\n\n```{toctree}\n:hidden:\n:maxdepth: 2\n\n%s\n```\n'
                      % '\n'.join(DOCUMENTS))


def _check_references(app, doctree, docname):
    """Warn (an error with -W) when a reference misses what the code
    registers: an option of snapdriver's in configuration, a policy rule
    or its default in policy. The extensions render whatever the
    generator namespaces list; this catches a namespace or an entry point
    that went missing."""
    if docname == 'configuration':
        from snapdriver.conf import opts
        # show-options only logs a namespace that it cannot load.
        known = {entry.name for entry in
                 importlib.metadata.entry_points(group='oslo.config.opts')}
        with open(config_generator_config_file, encoding='utf-8') as f:
            for line in f:
                name, _, value = line.partition('=')
                if name.strip() == 'namespace' and value.strip() not in known:
                    LOG.warning("namespace %s of %s has no oslo.config.opts "
                                "entry point", value.strip(),
                                config_generator_config_file,
                                location=docname)
        documented = {target.lower() for target in
                      app.env.domaindata['oslo.config']['options']}
        for group, options in opts.list_opts():
            for opt in options:
                if ('%s.%s' % (group, opt.dest)).lower() not in documented:
                    LOG.warning("[%s] %s is missing from the configuration "
                                "reference", group, opt.dest,
                                location=docname)
    elif docname == 'policy':
        from snapdriver import policy
        text = doctree.astext()
        for rule in policy.list_rules():
            if rule.name not in text or rule.check_str not in text:
                LOG.warning("policy rule %s (default %s) is missing from the "
                            "policy reference", rule.name, rule.check_str,
                            location=docname)


def setup(app):
    app.connect('source-read', _read_markdown)
    app.connect('doctree-resolved', _check_references)
