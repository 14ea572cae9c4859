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

"""The chain rules, on their own."""

from snapdriver import chain
from snapdriver import exception
from snapdriver.tests import base

NAMES = ['disk1_file', 'snap.img', 'other-snap.img', 'base.img']


def _disk(names=NAMES, directory='/d'):
    return chain.DiskLocation(
        volume_id='V', guest='g', target='vda', running=True,
        directory=directory,
        chain=tuple(chain.ChainEntry(name=n, path='/d/' + n, index=i)
                    for i, n in enumerate(names)))


def _overlay(backing='disk1_file', fmt='qcow2', exists=True,
             backing_fmt='qcow2', data_file=None):
    return chain.OverlayInfo(name='new', exists=exists, fmt=fmt,
                             backing=backing, backing_fmt=backing_fmt,
                             data_file=data_file)


class TestFileNames(base.TestCase):

    def test_plain_names_pass(self):
        for name in ('volume-1.snap', 'a', '...', 'a..b', 'with space'):
            chain.check_file_name('new_file', name)

    def test_paths_and_specials_fail(self):
        for name in ('', '.', '..', '../x', 'a/b', '/abs', 'nul\0', None, 3):
            error = self.assertRaises(exception.InvalidFileName,
                                      chain.check_file_name, 'new_file', name)
            self.assertIn('new_file', str(error))
            self.assertEqual(400, error.code)


class TestPlanCreate(base.TestCase):

    def test_overlay_of_active_image(self):
        plan = chain.plan_create(_disk(), 's', 'new', _overlay())
        self.assertEqual(tuple(['new'] + NAMES), plan.expected_chain)
        self.assertEqual('create', plan.kind)

    def test_dotted_relative_backing_of_active_image(self):
        chain.plan_create(_disk(), 's', 'new', _overlay('./disk1_file'))

    def test_uninspectable_overlay_is_trusted(self):
        plan = chain.plan_create(_disk(), 's', 'new', None)
        self.assertEqual('new', plan.expected_chain[0])

    def test_refusals_name_the_problem(self):
        cases = [
            (_overlay(exists=False), 'does not exist'),
            (_overlay(fmt='raw'), 'is a raw image, not a qcow2 image'),
            (_overlay(fmt=None), 'of an unrecognised format'),
            (_overlay(backing='snap.img'), "header names 'snap.img'"),
            (_overlay(backing='/elsewhere/disk1_file'), '/elsewhere'),
            (_overlay(backing=None), 'no backing file'),
            # Absolute names would stay in the header: Cinder writes
            # relative ones and relies on them.
            (_overlay(backing='/d/disk1_file'), 'by that name alone'),
            # Through another directory: a symlink there would lead QEMU
            # elsewhere.
            (_overlay(backing='sub/../disk1_file'),
             "header names 'sub/../disk1_file'"),
            (_overlay(backing='.//disk1_file'), 'by that name alone'),
            (_overlay(data_file='/etc/shadow'),
             'external data file /etc/shadow'),
            (_overlay(backing_fmt='raw'), 'backing file as raw'),
            (_overlay(backing_fmt=None), 'unknown (none recorded)'),
        ]
        for overlay, words in cases:
            error = self.assertRaises(exception.InvalidOverlay,
                                      chain.plan_create, _disk(), 's', 'new',
                                      overlay)
            self.assertIn(words, str(error))
            self.assertIn("'new'", str(error))

    def test_new_file_already_in_chain(self):
        error = self.assertRaises(exception.InvalidOverlay, chain.plan_create,
                                  _disk(), 's', 'snap.img', _overlay())
        self.assertIn('already part of volume V', str(error))


class TestPlanDelete(base.TestCase):

    def test_pull_with_base(self):
        plan = chain.plan_delete(_disk(), 's', 'other-snap.img', None)
        self.assertEqual(('pull', 'other-snap.img', None),
                         (plan.kind, plan.base, plan.top))
        self.assertEqual(('disk1_file', 'other-snap.img', 'base.img'),
                         plan.expected_chain)

    def test_pull_without_base(self):
        plan = chain.plan_delete(_disk(), 's', None, None)
        self.assertEqual(('pull', None), (plan.kind, plan.base))
        self.assertEqual(('disk1_file',), plan.expected_chain)

    def test_pull_base_directly_below_active_changes_nothing_else(self):
        plan = chain.plan_delete(_disk(), 's', 'snap.img', None)
        self.assertEqual(tuple(NAMES), plan.expected_chain)

    def test_commit(self):
        plan = chain.plan_delete(_disk(), 's', 'snap.img', 'other-snap.img')
        self.assertEqual(('commit', 'other-snap.img', 'snap.img'),
                         (plan.kind, plan.base, plan.top))
        self.assertEqual(('disk1_file', 'other-snap.img', 'base.img'),
                         plan.expected_chain)

    def test_refusals_name_the_chain(self):
        cases = [
            ('nope.img', None, "'nope.img' is not in the backing chain"),
            ('disk1_file', None, 'is the active image'),
            ('snap.img', 'base.img', "is not the image directly below"),
            ('disk1_file', 'snap.img', 'is the active image'),
            ('base.img', 'x', 'it has no backing file'),
            (None, 'snap.img', 'file_to_merge is null'),
        ]
        for file_to_merge, target, words in cases:
            error = self.assertRaises(exception.InvalidChainReference,
                                      chain.plan_delete, _disk(), 's',
                                      file_to_merge, target)
            self.assertIn(words, str(error))
            self.assertEqual(400, error.code)

    def test_chain_is_described(self):
        error = self.assertRaises(exception.InvalidChainReference,
                                  chain.plan_delete, _disk(), 's', 'x', None)
        self.assertIn('disk1_file -> snap.img -> other-snap.img -> base.img',
                      str(error))
        self.assertIn('disk vda of guest g', str(error))

    def test_ambiguous_name(self):
        disk = _disk(['a', 'dup', 'dup', 'b'])
        error = self.assertRaises(exception.InvalidChainReference,
                                  chain.plan_delete, disk, 's', 'dup', None)
        self.assertIn('more than one image', str(error))

    def test_names_are_checked_as_file_names(self):
        self.assertRaises(exception.InvalidFileName, chain.plan_delete,
                          _disk(), 's', '../base.img', None)
        self.assertRaises(exception.InvalidFileName, chain.plan_delete,
                          _disk(), 's', 'snap.img', '/d/other-snap.img')
