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

"""Which block work may run side by side on one QEMU guest?

Plain libvirt-python, no snapdriver: each case starts a fresh TCG guest with
two qcow2 disks, each a three-layer chain (base, mid, active) holding data
in every layer, runs two pieces of block work on the two disks at once (or
staggered), and then checks that

- QEMU is still alive and the guest still running,
- every job ended (completed) and the chains are what the work asked for,
- every byte written before reads back (qemu-io through the chain).

The verdict of each case is what snapdriver's libvirt driver allows beside
a running block job on another disk of the same guest (see
doc/architecture.md, "Block work on one guest"). Run it on the QEMU a
deployment uses:

    SNAPDRIVER_LIBVIRT_DIR=$PWD/.run/libvirt-probe \\
        tools/with-libvirtd.sh .venv/bin/python tools/probe_block_jobs.py \\
        [--tries N] [--layer-mb N] [CASE ...]

It prints one line per try and a table at the end.
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

import libvirt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from snapdriver.drivers.libvirt import blockjob  # noqa: E402
from snapdriver.tests.functional import guest  # noqa: E402

MiB = guest.MiB
EVENTS = {}
EVENTS_COND = threading.Condition()


def _on_block_job(conn, dom, disk, job_type, status, opaque):
    with EVENTS_COND:
        EVENTS.setdefault((dom.UUIDString(), disk), []).append(status)
        EVENTS_COND.notify_all()


def _start_event_loop():
    libvirt.virEventRegisterDefaultImpl()

    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()
    threading.Thread(target=loop, daemon=True).start()


class Trial:
    """One guest with disks vda and vdb, each base <- mid <- top."""

    def __init__(self, conn, directory, layer_mb):
        self.conn = conn
        self.dir = directory
        self.layer = layer_mb * MiB
        self.size = 3 * layer_mb * MiB
        self.models = {}
        self.dom = None

    def setup(self):
        disks = []
        for index, target in enumerate(('vda', 'vdb')):
            model = guest.DataModel(self.size)
            base = os.path.join(self.dir, '%s-base' % target)
            guest.create_image(base, self.size // MiB)
            # Each layer owns a third of the disk, so pull and commit both
            # have a whole layer of data to copy.
            model.write_offline(base, 0x10 + index, 0, self.size)
            for n, name in enumerate(('mid', 'top')):
                guest.create_overlay(self.dir, '%s-%s' % (target, name),
                                     '%s-%s' % (target, ('base', 'mid')[n]))
                model.write_offline(os.path.join(self.dir, '%s-%s'
                                                 % (target, name)),
                                    0x20 + 0x10 * n + index,
                                    (n + 1) * self.layer, self.layer)
            self.models[target] = model
            disks.append((target, os.path.join(self.dir, '%s-top' % target)))
        xml = ["<domain type='qemu'><name>probe-%d</name>" % os.getpid(),
               "<memory unit='MiB'>64</memory><vcpu>1</vcpu>",
               "<os><type arch='x86_64' machine='pc'>hvm</type></os>",
               "<on_crash>destroy</on_crash><devices>"]
        for target, path in disks:
            xml.append("<disk type='file' device='disk'><driver name='qemu' "
                       "type='qcow2'/><source file='%s'/><target dev='%s' "
                       "bus='virtio'/></disk>" % (path, target))
        xml.append("<controller type='usb' model='none'/>"
                   "<memballoon model='none'/></devices></domain>")
        self.dom = self.conn.createXML(''.join(xml), 0)
        self.uuid = self.dom.UUIDString()

    def name(self, target, layer):
        return '%s-%s' % (target, layer)

    def path(self, target, layer):
        return os.path.join(self.dir, self.name(target, layer))

    # The pieces of work. Each returns the chain it must leave.

    def pull(self, target):
        self.dom.blockRebase(target, None, 0, 0)
        return ['top']

    def pull_base(self, target):
        self.dom.blockRebase(target, self.name(target, 'base'), 0,
                             libvirt.VIR_DOMAIN_BLOCK_REBASE_RELATIVE)
        return ['top', 'base']

    def commit(self, target):
        self.dom.blockCommit(target, self.name(target, 'base'),
                             self.name(target, 'mid'), 0,
                             libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE)
        return ['top', 'base']

    def switch(self, target):
        guest.create_overlay(self.dir, self.name(target, 'new'),
                             self.name(target, 'top'))
        guest.external_snapshot(self.dom, target, self.path(target, 'new'))
        return ['new', 'top', 'mid', 'base']

    def throttled_switches(self, target, job_target='vda'):
        """As :meth:`switches`, with the job on ``job_target`` held to one
        byte per second for 50 ms before each switch."""
        return self.switches(target, job_target, throttle=True)

    def held_switches(self, target, job_target='vda'):
        """As :meth:`switches`, each switch inside snapdriver's own
        ``blockjob.jobs_held_still`` (what the driver does)."""
        return self.switches(target, job_target, hold=True)

    def switches(self, target, job_target='vda', throttle=False,
                 hold=False):
        """Switch ``target`` onto a new overlay again and again for as
        long as the job on ``job_target`` runs, its start and end
        included."""
        below, count = 'top', 0
        self.progress = []
        while True:
            count += 1
            name = 'new%d' % count
            guest.create_overlay(self.dir, self.name(target, name),
                                 self.name(target, below))
            try:
                info = self.dom.blockJobInfo(job_target, 0)
            except libvirt.libvirtError:
                info = None
            # Where the job was when this switch began.
            self.progress.append('%d/%d' % (info['cur'], info['end'])
                                 if info else 'no job')
            self.switch_count = count
            if throttle and info:
                try:
                    self.dom.blockJobSetSpeed(
                        job_target, 1, libvirt.
                        VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES)
                except libvirt.libvirtError:
                    pass        # it ended meanwhile
                time.sleep(0.05)
            if hold:
                with blockjob.jobs_held_still(self.dom, [job_target]):
                    guest.external_snapshot(self.dom, target,
                                            self.path(target, name))
            else:
                guest.external_snapshot(self.dom, target,
                                        self.path(target, name))
            if throttle and info:
                try:
                    self.dom.blockJobSetSpeed(job_target, 0, 0)
                except libvirt.libvirtError:
                    pass
            below = name
            if not info:
                break
        return ['new%d' % n for n in range(count, 0, -1)] + [
            'top', 'mid', 'base']

    def alive(self):
        try:
            state, _reason = self.dom.state()
        except libvirt.libvirtError:
            return False
        return state == libvirt.VIR_DOMAIN_RUNNING

    def wait_job(self, target, timeout=120):
        """Wait for the job on ``target`` to end (pivot an active commit).

        :returns: the last event status, or 'gone' when the guest died.
        """
        deadline = time.monotonic() + timeout
        key = (self.uuid, target)
        while time.monotonic() < deadline:
            if not self.alive():
                return 'guest died'
            with EVENTS_COND:
                statuses = EVENTS.get(key, [])
                last = statuses[-1] if statuses else None
            if last == libvirt.VIR_DOMAIN_BLOCK_JOB_READY:
                self.dom.blockJobAbort(
                    target, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT)
                with EVENTS_COND:
                    EVENTS[key].append('pivoting')
            try:
                info = self.dom.blockJobInfo(target, 0)
            except libvirt.libvirtError:
                return 'guest died'
            if not info and last not in (None, 'pivoting',
                                         libvirt.VIR_DOMAIN_BLOCK_JOB_READY):
                return {0: 'completed', 1: 'failed',
                        2: 'cancelled'}.get(last, last)
            with EVENTS_COND:
                EVENTS_COND.wait(0.05)
        return 'timed out'

    def chain(self, target):
        return [os.path.basename(p).split('-', 1)[1]
                for p in guest.domain_chain(self.dom, target)]

    def teardown(self):
        if self.dom is not None:
            try:
                self.dom.destroy()
            except libvirt.libvirtError:
                pass


#: name -> (work on vda, work on vdb, how the second one starts).
CASES = {
    'pull+pull': ('pull', 'pull', 'together'),
    'pull+pull staggered': ('pull', 'pull', 'staggered'),
    'pull_base+pull_base': ('pull_base', 'pull_base', 'together'),
    'commit+commit': ('commit', 'commit', 'together'),
    'commit+commit staggered': ('commit', 'commit', 'staggered'),
    'pull+commit': ('pull', 'commit', 'together'),
    'commit+pull staggered': ('commit', 'pull', 'staggered'),
    'pull+switch': ('pull', 'switch', 'during'),
    'pull+switches': ('pull', 'switches', 'together'),
    'commit+switches': ('commit', 'switches', 'together'),
    'pull+throttled switches': ('pull', 'throttled_switches', 'together'),
    'pull+held switches': ('pull', 'held_switches', 'together'),
    'commit+held switches': ('commit', 'held_switches', 'together'),
    'commit+switch': ('commit', 'switch', 'during'),
    'pull_base+switch': ('pull_base', 'switch', 'during'),
    'pull then pull': ('pull', 'pull', 'after'),
}


def _note(trial):
    if not hasattr(trial, 'switch_count'):
        return ''
    return '%d switches during the job, at %s' % (
        trial.switch_count, ', '.join(trial.progress))


def run_case(conn, case, layer_mb, scratch):
    first, second, start = CASES[case]
    directory = tempfile.mkdtemp(dir=scratch)
    trial = Trial(conn, directory, layer_mb)
    try:
        trial.setup()
        expected = {}
        waits = {}
        expected['vda'] = getattr(trial, first)('vda')
        if start == 'after':
            waits['vda'] = trial.wait_job('vda')
        elif start != 'together':
            # Staggered: the first job is well under way; during: the
            # second piece of work is a switch, done while the job runs.
            time.sleep(0.15)
        try:
            expected['vdb'] = getattr(trial, second)('vdb')
        except libvirt.libvirtError as error:
            time.sleep(1)   # libvirt notices a dead QEMU a little later
            return (['QEMU died' if not trial.alive() else 'refused',
                     '%s on vdb failed: %s' % (second, error)],
                    _note(trial))
        for target, work in (('vda', first), ('vdb', second)):
            if target not in waits and 'switches' not in work \
                    and work != 'switch':
                waits[target] = trial.wait_job(target)
        problems = []
        if trial.alive():
            # QEMU keeps a finished pull's new cluster mapping in its cache:
            # stopping the guest flushes every block device, so that qemu-io
            # reads what the guest sees.
            try:
                trial.dom.suspend()
                trial.dom.resume()
            except libvirt.libvirtError:
                pass
        if not trial.alive():
            problems.append('QEMU died')
        for target, result in waits.items():
            if result != 'completed':
                problems.append('%s job %s' % (target, result))
        if trial.alive():
            for target in ('vda', 'vdb'):
                chain = trial.chain(target)
                if chain != expected[target]:
                    problems.append('%s chain %s, expected %s'
                                    % (target, chain, expected[target]))
                active = guest.domain_chain(trial.dom, target)[0]
                wrong = trial.models[target].mismatches(active)
                if wrong:
                    problems.append('%s data wrong in %s' % (target, wrong))
        return problems, _note(trial)
    finally:
        trial.teardown()
        shutil.rmtree(directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tries', type=int, default=3)
    parser.add_argument('--layer-mb', type=int, default=128)
    parser.add_argument('--uri', default=guest.libvirt_uri())
    parser.add_argument('cases', nargs='*', default=list(CASES))
    args = parser.parse_args()
    if not args.uri:
        sys.exit(guest.SKIP_REASON)
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    _start_event_loop()
    conn = libvirt.open(args.uri)
    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                                _on_block_job, None)
    print('libvirt %d, QEMU %d' % (conn.getLibVersion(), conn.getVersion()))
    scratch = tempfile.mkdtemp(prefix='probe-block-jobs-')
    results = {}
    try:
        for case in args.cases:
            for attempt in range(1, args.tries + 1):
                problems, note = run_case(conn, case, args.layer_mb,
                                          scratch)
                results.setdefault(case, []).append(problems)
                print('%-28s try %d: %s%s' % (
                    case, attempt, '; '.join(problems) or 'ok',
                    ' (%s)' % note if note else ''), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print('\n| case | tries | QEMU died | other problems |')
    print('| --- | --- | --- | --- |')
    for case, runs in results.items():
        died = sum(1 for p in runs if 'QEMU died' in p)
        other = sum(1 for p in runs if p and 'QEMU died' not in p)
        print('| %s | %d | %d | %d |' % (case, len(runs), died, other))


if __name__ == '__main__':
    main()
