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

"""Benchmarks on real TCG guests: create, delete (event to report), merge
throughput, and scaling with chain depth and guest count.

Each one does the same thing to a volume driven through snapdriver and to
a volume driven directly through libvirt, interleaved (the order swaps at
every iteration), so that whatever else the machine is doing hits both.
"""

import contextlib
import http.client
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time

from bench import common
from bench.common import median
from bench.common import ms
from bench.common import percentile
from bench.common import ratio
from bench.common import verdict
from bench import sides
from bench import targets
from bench import timeline
from snapdriver.tests.functional import guest as guest_mod


class Env:
    """What the libvirt benchmarks share: one snapdriver (libvirt driver,
    Cinder status reporter pointed at the stub), the stub, the benchmark's
    libvirt connection, the scratch directory, and the sizes to use."""

    def __init__(self, uri, share, events, snapdriver, stub, sizes,
                 whatif=None):
        self.uri = uri
        self.share = share
        self.events = events
        self.sd = snapdriver
        self.whatif = whatif
        self.stub = stub
        self.sizes = sizes

    def volume(self, label, directory=None, **kwargs):
        return sides.Volume(self.events, self.uri, directory or self.share,
                            label, **kwargs)

    def pair(self, label, **kwargs):
        """A volume for snapdriver and one for the baseline, alike."""
        return (sides.ViaSnapdriver(self.volume(label + '-sd', **kwargs),
                                    self.sd, self.stub),
                sides.Baseline(self.volume(label + '-base', **kwargs)))


@contextlib.contextmanager
def guests(*holders):
    """Destroy the guests of the given sides/volumes on the way out."""
    try:
        yield
    finally:
        for holder in holders:
            volume = getattr(holder, 'volume', holder)
            try:
                volume.destroy()
            except Exception as e:  # keep destroying the others
                print('warning: destroying %s: %s' % (volume.volume_id, e))


_raw_ids = itertools.count(1)


def interleaved(i, a, b):
    return (a, b) if i % 2 == 0 else (b, a)


def rotated(i, items):
    """``items`` in an order that changes at every iteration: each one
    comes first, in the middle and last equally often."""
    items = list(items)
    k = i % len(items)
    order = items[k:] + items[:k]
    return order if (i // len(items)) % 2 == 0 else order[::-1]


# 1. create ----------------------------------------------------------------

def bench_create(env):
    n, warm = env.sizes['iterations'], env.sizes['warmup']
    sd, base = env.pair('create')
    all_sides = [sd, base]
    if env.whatif:
        all_sides.append(sides.ViaSnapdriver(env.volume('create-whatif'),
                                             env.whatif, env.stub,
                                             name='what-if'))
    samples = {side.name: [] for side in all_sides}
    with guests(*all_sides):
        for i in range(warm + n):
            for side in rotated(i, all_sides):
                result = side.create(side.volume.add_overlay('c'))
                if i >= warm:
                    samples[side.name].append(result)
        for side in all_sides:
            side.volume.check()

    def values(name, key='total'):
        return [s[key] for s in samples[name]]
    sd_total, b_total = values('snapdriver'), values('baseline')
    paired = [a - b for a, b in zip(sd_total, b_total)]
    table = common.Table(
        '1. Create: POST until the stub has `creating` 90%%, vs the bare '
        'libvirt sequence (n = %d each, interleaved)' % n,
        ['measured', 'median ms', 'p95 ms', 'min ms', 'max ms',
         'ratio to baseline (medians)'])
    rows = [('snapdriver: POST -> `creating` report at the stub', sd_total),
            ('  of which POST -> 200 (accept)', values('snapdriver',
                                                       'accept')),
            ('baseline: qemu-img info + snapshotCreateXML', b_total),
            ('  of which qemu-img info', values('baseline', 'info')),
            ('  of which snapshotCreateXML', values('baseline', 'libvirt')),
            ('paired difference (snapdriver - baseline)', paired)]
    if env.whatif:
        rows.append(('what-if (qemu-img spawned): POST -> report',
                     values('what-if')))
        rows.append(('  of which POST -> 200 (accept)',
                     values('what-if', 'accept')))
    for label, vals in rows:
        r = ('%.2f' % ratio(median(vals), median(b_total))
             if label.startswith(('snapdriver', 'what-if')) else '')
        table.add(label, ms(median(vals)), ms(percentile(vals, 95)),
                  ms(min(vals)), ms(max(vals)), r)
    r = ratio(median(sd_total), median(b_total))
    overhead = median(sd_total) - median(b_total)
    table.note('Ratio of medians snapdriver / baseline: **%.2f** (target '
               '<= %.2f: %s); p95 ratio %.2f. Overhead of the medians: '
               '**%s ms** (target <= %g ms: %s).' % (
                   r, targets.CREATE_RATIO, verdict(r <= targets.CREATE_RATIO),
                   ratio(percentile(sd_total, 95), percentile(b_total, 95)),
                   ms(overhead), targets.CREATE_OVERHEAD * 1000,
                   verdict(overhead <= targets.CREATE_OVERHEAD)))
    if env.whatif:
        w = values('what-if')
        table.note('What-if (tools/bench/whatif.py `--qemu-img-spawn`: '
                   'the qemu-img info of the overlay at accept started by '
                   '`subprocess.Popen` without a preexec_fn instead of '
                   'through `processutils.execute`): ratio %.2f, overhead '
                   '%s ms.' % (ratio(median(w), median(b_total)),
                               ms(median(w) - median(b_total))))
    table.note('Chains grew from 1 to %d images during the run on every '
               'guest; each guest has a root disk (vda, left out of the '
               'snapshot) and the volume (vdb).' % (warm + n + 1))
    columns = [('snapdriver', timeline.phases(
        env.sd.log_path, samples['snapdriver'], 'create'))]
    if env.whatif:
        columns.append(('what-if', timeline.phases(
            env.whatif.log_path, samples['what-if'], 'create')))
    phase_table = timeline.table(
        '1b. Create, phase by phase (same runs as table 1; the baseline '
        'took %s ms for qemu-img info and %s ms for snapshotCreateXML)'
        % (ms(median(values('baseline', 'info'))),
           ms(median(values('baseline', 'libvirt')))), columns)
    return [table, phase_table], {'create': samples}


# 2. delete: event -> report -----------------------------------------------

def bench_delete(env):
    n, warm = env.sizes['iterations'], env.sizes['warmup']
    all_sides = [sides.ViaSnapdriver(env.volume('delete'), env.sd, env.stub)]
    if env.whatif:
        all_sides.append(sides.ViaSnapdriver(
            env.volume('delete-whatif'), env.whatif, env.stub,
            name='what-if'))
    samples = {side.name: [] for side in all_sides}
    layer_mib = 1
    with guests(*all_sides):
        for side in all_sides:
            side.volume.switch_direct(side.volume.add_overlay('d'))
        for i in range(warm + n):
            for side in rotated(i, all_sides):
                volume = side.volume
                # The guest writes into its active layer, which then
                # becomes a small layer under a new overlay and is
                # committed into the image below it.
                guest_mod.write_pattern_live(
                    volume.dom, 0x10 + i % 0xe0, (i % 32) * common.MiB,
                    layer_mib * common.MiB, volume.fixture.volume_alias,
                    verify=False)
                layer = volume.active
                volume.switch_direct(volume.add_overlay('d'))
                result = side.commit(layer, volume.chain[2])
                volume.remove(result['gone'])
                if i >= warm:
                    samples[side.name].append(result)
        for side in all_sides:
            side.volume.check()

    table = common.Table(
        '2. Delete: block job end (libvirt BLOCK_JOB_2 COMPLETED on the '
        "benchmark's own connection) until the stub has `deleting` 90%% "
        '(n = %d commits of %d MiB layers)' % (n, layer_mib),
        ['measured', 'p50 ms', 'p95 ms', 'min ms', 'max ms'])
    for side in all_sides:
        prefix = '' if side.name == 'snapdriver' else 'what-if: '
        for label, key in (
                ('COMPLETED event -> `deleting` report', 'event_to_report'),
                ('DELETE -> COMPLETED event', 'to_event'),
                ('DELETE -> 204 (accept)', 'accept'),
                ('DELETE -> `deleting` report', 'total')):
            vals = [s[key] for s in samples[side.name]]
            table.add(prefix + label, ms(median(vals)),
                      ms(percentile(vals, 95)), ms(min(vals)), ms(max(vals)))
    p95 = percentile([s['event_to_report'] for s in samples['snapdriver']],
                     95)
    table.note('Event -> report p95: **%s ms** (target <= %g ms: %s).'
               % (ms(p95), targets.EVENT_TO_REPORT_P95 * 1000,
                  verdict(p95 <= targets.EVENT_TO_REPORT_P95)))
    if env.whatif:
        w95 = percentile([s['event_to_report']
                          for s in samples['what-if']], 95)
        table.note('What-if (the same change as in table 1: after the '
                   "job snapdriver reads the rewritten image's header "
                   'with qemu-img info to check that its backing name '
                   'stayed relative): event -> report p95 %s ms.'
                   % ms(w95))
    columns = [(side.name, timeline.phases(
        side.sd.log_path, samples[side.name], 'commit'))
        for side in all_sides]
    phase_table = timeline.table(
        '2b. Delete, from the COMPLETED event to the report, phase by phase '
        '(same runs as table 2)', columns)
    return [table, phase_table], {'delete': samples}


# 3. merge throughput -----------------------------------------------------

def _prepare_layer(volume, size_mb):
    """Chain [top, layer (size_mb of data), below...]: returns layer.

    """
    layer = volume.new_name('fill')
    sides.fill_layer(volume.directory, layer, volume.active, size_mb)
    volume.switch_direct(layer)
    volume.switch_direct(volume.add_overlay('top'))
    return layer


def bench_merge(env):
    size = env.sizes['merge_mb']
    reps = env.sizes['merge_reps']
    makers = [lambda v: sides.ViaSnapdriver(v, env.sd, env.stub),
              sides.Baseline]
    if env.whatif:
        makers.append(lambda v: sides.ViaSnapdriver(v, env.whatif, env.stub,
                                                    name='what-if'))
    samples = {}
    # A fresh guest for every merge, its images in RAM: every merge starts
    # from the same state, and the disk (shared with whatever else runs)
    # adds no noise.
    scratch = tempfile.mkdtemp(prefix='snapdriver-bench-', dir='/dev/shm')
    try:
        for rep in range(reps):
            for k, kind in enumerate(('commit', 'pull')):
                for make in rotated(2 * rep + k, makers):
                    volume = env.volume('merge', size_mb=size,
                                        directory=scratch)
                    with guests(volume):
                        side = make(volume)
                        layer = _prepare_layer(volume, size)
                        below = volume.chain[2]
                        if kind == 'commit':
                            result = side.commit(layer, below)
                        else:
                            result = side.pull(below)
                        volume.check()
                    shutil.rmtree(volume.directory)
                    samples.setdefault((kind, side.name), []).append(result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logs = {'snapdriver': env.sd.log_path}
    if env.whatif:
        logs['what-if'] = env.whatif.log_path
    return [merge_table(samples, size, reps, logs)], {
        'merge': {'%s/%s' % key: value for key, value in samples.items()}}


def merge_table(samples, size, reps, logs):
    """Table 3 from the samples of :func:`bench_merge`.

    :param samples: {(kind, side name): [results]}.
    :param logs: {side name: log file} of the snapdriver sides.
    """
    table = common.Table(
        '3. Merge throughput of a %d MiB layer full of data (%d run(s) '
        'each, interleaved; medians)' % (size, reps),
        ['merge', 'snapdriver MiB/s (DELETE -> report)',
         'baseline MiB/s (call -> COMPLETED)', 'ratio',
         'snapdriver MiB/s (DELETE -> COMPLETED: the job alone)',
         'snapdriver s', 'baseline s', 'what-if MiB/s', 'what-if ratio'])
    verdicts, fixed, spread = [], [], []
    for kind in ('commit', 'pull'):
        def med(name, key='total'):
            return median([s[key] for s in samples[(kind, name)]])
        sd_t, b_t = med('snapdriver'), med('baseline')
        r = ratio(size / sd_t, size / b_t)
        verdicts.append('%s %.3f (%s)' % (
            kind, r, verdict(r >= targets.MERGE_RATIO)))
        # What snapdriver adds per merge, whatever the size, measured
        # directly: before the job (request -> its log line just before
        # libvirt is called) and after it (COMPLETED event -> report). The
        # ratio reaches the target r where the job takes r / (1 - r)
        # times as long (0.97: 32.3 times).
        costs = []
        for name in logs:
            own = samples[(kind, name)]
            starts = timeline.job_starts(logs[name], own)
            per_merge = [start + s['event_to_report']
                         for start, s in zip(starts, own)
                         if start is not None]
            if per_merge:
                cost = median(per_merge)
                job = targets.merge_job_for(cost)
                costs.append('%s%s ms (%.2f from a job of %.2f s, i.e. '
                             '%.1f GiB at the baseline\'s speed)' % (
                                 '' if name == 'snapdriver' else
                                 name + ' ', ms(cost), targets.MERGE_RATIO,
                                 job, job * size / b_t / 1024.0))
        fixed.append('%s %s' % (kind, ', '.join(costs)))
        base_times = [s['total'] for s in samples[(kind, 'baseline')]]
        spread.append('%s %s to %s ms, difference of the medians %s ms'
                      % (kind, ms(min(base_times)), ms(max(base_times)),
                         ms(sd_t - b_t)))
        if 'what-if' in logs:
            w_t = med('what-if')
            whatif_cells = ['%.0f' % (size / w_t),
                            '%.3f' % ratio(size / w_t, size / b_t)]
        else:
            whatif_cells = ['', '']
        table.add(kind, '%.0f' % (size / sd_t), '%.0f' % (size / b_t),
                  '%.3f' % r, '%.0f' % (size / med('snapdriver', 'to_event')),
                  '%.3f' % sd_t, '%.3f' % b_t, *whatif_cells)
    table.note('Ratio snapdriver / baseline throughput (target >= %.2f): '
               % targets.MERGE_RATIO
               + '; '.join(verdicts) + '. Commit: `blockCommit` of the '
               'layer into the image below it; pull: `blockRebase` of the '
               'layer into the (empty) active image, base = the image '
               'below the layer. Every merge runs on a new guest whose '
               'images are on tmpfs (/dev/shm): the same starting state '
               'each time, no disk noise, and the copy as fast as it gets, '
               'which is the hardest case for the ratio (snapdriver adds a '
               'fixed cost per merge).')
    table.note('Fixed cost per merge (medians of request -> job started, '
               "from snapdriver's log, plus COMPLETED event -> report): "
               + '; '.join(fixed) + '. The job itself varies from run '
               'to run (baseline: ' + '; '.join(spread) + '): with few '
               'runs the ratios carry that noise.')
    return table


# 4. scaling -------------------------------------------------------------

def _cycle(sd, base, i, record):
    """At chain length d: create S1 (at d), create S2 (at d+1), commit S1
    into the image below it (at d+2), pull the image under S2 into S2
    (at d+1; no base when that image is the last). Back at d."""
    for side in interleaved(i, sd, base):
        record('create', side.name, side.create(side.volume.add_overlay('s')))
    for side in interleaved(i, sd, base):
        side.create(side.volume.add_overlay('s'))
    for side in interleaved(i, sd, base):
        volume = side.volume
        result = side.commit(volume.chain[1], volume.chain[2])
        volume.remove(result['gone'])
        record('commit', side.name, result)
    for side in interleaved(i, sd, base):
        volume = side.volume
        below = volume.chain[2] if len(volume.chain) > 2 else None
        result = side.pull(below)
        volume.remove(result['gone'])
        record('pull', side.name, result)


def _scaling_row(table, label, samples):
    cells = [label]
    for op in ('create', 'commit', 'pull'):
        sd_m = median([s['total'] for s in samples[(op, 'snapdriver')]])
        b_m = median([s['total'] for s in samples[(op, 'baseline')]])
        cells += [ms(sd_m), ms(b_m), '%.2f' % ratio(sd_m, b_m)]
    table.add(*cells)


_SCALING_COLUMNS = ['create sd ms', 'create base ms', 'ratio',
                    'commit sd ms', 'commit base ms', 'ratio',
                    'pull sd ms', 'pull base ms', 'ratio']


def _measure(sd, base, m, warm):
    samples = {}

    def record(op, side, result):
        if recording:
            samples.setdefault((op, side), []).append(result)
    for i in range(warm + m):
        recording = i >= warm
        _cycle(sd, base, i, record)
    sd.volume.check()
    base.volume.check()
    return samples


def bench_scaling(env):
    m, warm = env.sizes['scale_iterations'], 1
    depth_table = common.Table(
        '5a. Scaling with chain depth (2 guests; median of %d cycles; '
        'snapdriver = request -> report, baseline = bare libvirt)' % m,
        ['chain depth d'] + _SCALING_COLUMNS)
    raw = {'depth': {}, 'guests': {}}
    for depth in env.sizes['depths']:
        sd, base = env.pair('depth%d' % depth, depth=depth)
        with guests(sd, base):
            samples = _measure(sd, base, m, warm)
        _scaling_row(depth_table, str(depth), samples)
        raw['depth'][depth] = {'%s/%s' % k: v for k, v in samples.items()}
    depth_table.note(
        'One cycle at depth d: create (chain d -> d+1), a second create '
        '(d+1 -> d+2, not shown), commit of the layer under the active one '
        'into the image below it (d+2 -> d+1), pull of the image under the '
        'active one into it (d+1 -> d; at d = 1 a pull with no base). '
        'Layers are empty: this is the per-operation cost, not data '
        'copying.')
    text, ok = targets.depth_figure({'scaling': raw}, env.sizes)
    depth_table.note(
        'Cost per operation (the medians of create, commit and pull summed, '
        'each request -> report for snapdriver, call -> done for the '
        'baseline), snapdriver over baseline at depth 100 (target <= %.2f): '
        '%s (%s).' % (targets.DEPTH_RATIO, text, verdict(ok)))

    guest_table = common.Table(
        '5b. Scaling with the number of guests on the host (chain depth 1; '
        'median of %d cycles)' % m,
        ['guests (domains listed by libvirt)'] + _SCALING_COLUMNS)
    extras = []
    try:
        for count in env.sizes['guest_counts']:
            while len(extras) + 2 < count:
                extras.append(env.volume('extra', size_mb=16, paused=True))
            sd, base = env.pair('guests%d' % count)
            with guests(sd, base):
                samples = _measure(sd, base, m, warm)
            _scaling_row(guest_table, str(count), samples)
            raw['guests'][count] = {'%s/%s' % k: v
                                    for k, v in samples.items()}
    finally:
        with guests(*extras):
            pass
    guest_table.note(
        'The two measured guests are always there; the others are guests '
        'of the same kind (root disk + a volume with a serial), started '
        'and then paused so that their TCG vCPUs do not take CPU from the '
        'measurement (libvirt lists them, and shows their live XML, as '
        'for running ones). snapdriver finds a volume by reading the XML '
        'of the guests its disk index names (kept by libvirt\'s domain '
        'events); the baseline knows its domain.')
    text, ok = targets.guests_figure({'scaling': raw}, env.sizes)
    guest_table.note(
        'Cost per operation (the medians of create, commit and pull summed, '
        'request -> report), from the fewest guests (2: one per side, the '
        'fewest possible) to 50 (target: flat, <= %g %%): %s (%s).'
        % (100 * targets.GUESTS_CHANGE, text, verdict(ok)))
    return [depth_table, guest_table], {'scaling': raw}


# 6. where the time goes -------------------------------------------------

def bench_components(env):
    """The pieces of snapdriver's operations, timed one by one here, with
    snapdriver's own functions where it has them."""
    from unittest import mock

    from oslo_concurrency import processutils

    from bench import whatif
    from snapdriver.conf import CONF
    from snapdriver.drivers.libvirt import domxml
    from snapdriver.drivers.libvirt import qcow2
    from snapdriver.drivers.libvirt import qemuimg
    from snapdriver.operations import journal as journal_mod

    # Defaults, as the benchmark's snapdriver has them ([libvirt] limits
    # of qemu-img info; [cinder] for the reporter below).
    CONF([], project='snapdriver', default_config_files=[])
    k = env.sizes['component_iterations']
    rows = []
    volume = env.volume('parts')
    with guests(volume):
        overlay = volume.path(volume.add_overlay('p'))

        def timed(label, fn, note=''):
            fn()  # warm
            values = []
            for _ in range(k):
                t0 = time.monotonic()
                fn()
                values.append(time.monotonic() - t0)
            rows.append((label, values, note))

        timed('qemu-img info (subprocess.run, as the baseline)',
              lambda: subprocess.run(
                  ['qemu-img', 'info', '--output=json', '--force-share',
                   overlay], check=True, capture_output=True))
        timed('the overlay\'s header read in-process, as snapdriver does '
              'at accept and after a merge (`qcow2.read`)',
              lambda: qcow2.read(overlay),
              'one open(O_NOFOLLOW), fstat and pread; qemu-img only for '
              'what it defers')
        timed('qemu-img info through `qemuimg.probe` (the fallback)',
              lambda: qemuimg.probe(overlay),
              '`%s`, through `processutils.execute`'
              % _qemu_img_command(qemuimg, overlay))
        with mock.patch.object(qemuimg, 'processutils', whatif.Spawn):
            timed('the same, started by `subprocess.Popen` (what-if)',
                  lambda: qemuimg.probe(overlay),
                  'tools/bench/whatif.py `--qemu-img-spawn`')
        timed('/bin/true through `processutils.execute`',
              lambda: processutils.execute('/bin/true'),
              'processutils always passes a preexec_fn: CPython forks '
              'this whole process (RSS %.0f MiB here)'
              % common.rss_mib(os.getpid()))
        timed('/bin/true through `subprocess.run`',
              lambda: subprocess.run(['/bin/true'], check=True,
                                     stdin=subprocess.DEVNULL,
                                     capture_output=True),
              'no preexec_fn: vfork')
        conn = env.events.conn

        def locate():
            for dom in conn.listAllDomains(0):
                domxml.parse_domain(dom.XMLDesc(0))
        timed('listAllDomains + XMLDesc + parse of every domain (%d), as '
              '`locate_disk` did per request before the disk index (now: '
              'once a minute, and on a miss)' % len(conn.listAllDomains(0)),
              locate)
        timed('lookupByUUIDString + XMLDesc + parse of one domain, as the '
              'driver before and after it acts',
              lambda: domxml.parse_domain(conn.lookupByUUIDString(
                  volume.uuid).XMLDesc(0)))

        for mode in ('NORMAL', 'FULL'):
            # [database] sqlite_synchronous: false is NORMAL, true FULL.
            journal = journal_mod.Journal(
                'sqlite:///%s' % os.path.join(env.share, 'journal-%s.sqlite'
                                              % mode),
                sqlite_synchronous=mode == 'FULL', migrate=True)
            row = journal.add({
                'id': 'parts-%s' % mode, 'snapshot_id': 's', 'kind': 'create',
                'volume_id': 'v', 'state': 'queued', 'report_attempts': 0,
                'request': {'new_file': 'x' * 200},
                'created_at': journal_mod.utcnow()})
            timed('journal update of one operation, SQLite `synchronous = '
                  '%s`' % mode,
                  lambda: journal.update(row['id'], state='running',
                                         started_at=journal_mod.utcnow()),
                  'the default; 4 commits per operation (accept, running, '
                  'finished, reported)' if mode == 'NORMAL' else
                  'an fsync per commit')
            journal.engine.dispose()

        report_fn = _cinderclient_report(env)
        if report_fn:
            timed('status report with python-cinderclient (new client per '
                  'report, as snapdriver)', report_fn)
        timed('status report with http.client (one POST)',
              lambda: _raw_report(env))

    table = common.Table(
        '6. Where the time goes: pieces of the operations, timed one by '
        'one in the benchmark process (n = %d each)' % k,
        ['piece', 'median ms', 'p95 ms', 'note'])
    for label, values, note in rows:
        table.add(label, ms(median(values)), ms(percentile(values, 95)),
                  note)
    return [table], {'components': {label: values
                                    for label, values, _ in rows}}


def _qemu_img_command(qemuimg, path):
    """What qemuimg runs for a probe of ``path``, up to qemu-img's own
    arguments (the limits and whatever else it puts in front)."""
    from unittest import mock

    from oslo_concurrency import processutils

    calls = []
    execute = processutils.execute

    def recording(*cmd, **kwargs):
        calls.append((cmd, kwargs))
        return execute(*cmd, **kwargs)
    with mock.patch.object(processutils, 'execute', recording):
        qemuimg.probe(path)
    cmd, kwargs = calls[0]
    words = [os.path.basename(str(c)) for c in cmd]
    if kwargs.get('prlimit') is not None:
        # processutils' own wrapper (no prlimit(1) on the host).
        words = ['python', '-m', 'oslo_concurrency.prlimit', '...',
                 '--'] + words
    return ' '.join(words[:words.index(qemuimg.QEMU_IMG) + 1]) + ' ...'


def _raw_report(env):
    body = json.dumps({'os-update_snapshot_status': {
        'status': 'creating', 'progress': '90%'}})
    conn = http.client.HTTPConnection('127.0.0.1', env.stub.port, timeout=10)
    try:
        conn.request('POST', '/v3/%s/snapshots/raw-%d/action' % (
            common.PROJECT, next(_raw_ids)), body=body,
            headers={'Content-Type': 'application/json',
                     'X-Auth-Token': common.TOKEN})
        conn.getresponse().read()
    finally:
        conn.close()


def _cinderclient_report(env):
    """A report through snapdriver's CinderReporter, configured as the
    benchmark's snapdriver is; None if it cannot be set up here."""
    try:
        import logging
        from snapdriver.conf import CONF
        from snapdriver import context as context_mod
        from snapdriver.operations import cinder
        # It warns that [cinder] has no service credentials: known here.
        logging.getLogger('snapdriver.operations.cinder').setLevel(
            logging.ERROR)
        CONF.set_override('endpoint_override', env.stub.endpoint, 'cinder')
        reporter = cinder.CinderReporter()
        context = context_mod.RequestContext(auth_token=common.TOKEN,
                                             project_id=common.PROJECT,
                                             user_id='admin')
    except Exception as e:
        print('warning: cannot time CinderReporter here: %s' % e)
        return None

    def report():
        delivery = reporter.report(context, 'cc-%d' % next(_raw_ids),
                                   'creating')
        if delivery.state != 'delivered':
            raise common.BenchError('CinderReporter: %s' % delivery.detail)
    return report
