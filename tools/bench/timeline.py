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

"""Where snapdriver's time goes within one operation, from its own log.

snapdriver logs each step of an operation at INFO with a millisecond
timestamp and the request id of the call that asked for it. Put next to
the times the benchmark took itself (request sent, libvirt's event, the
stub's receipt: wall-clock stamps of this process, same machine clock),
those lines split an operation into phases.
"""

import datetime
import re

from bench import common

_LINE = re.compile(
    r'^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ \w+ \S+ '
    r'\[\S+ (?P<req>req-[0-9a-f-]+)[^\]]*\] (?P<message>.*)$')

CREATE_PHASES = (
    ('POST sent -> accepted: HTTP, disk lookup, overlay header '
     '(read in-process), plan, journal insert', 'sent', 'accepted'),
    ('accepted -> about to call libvirt: hand-off to a worker, '
     'accept-time plan reused, journal update, the guest looked up '
     'by UUID and its chain compared', 'accepted', 'switching'),
    ('snapshotCreateXML + the chain read back and checked',
     'switching', 'verified'),
    ('outcome journalled', 'verified', 'finished'),
    ('journalled -> report at the stub: hand-off, cinderclient',
     'finished', 'reported'),
)

DELETE_PHASES = (
    ('COMPLETED event -> chain checked: wake-up, blockJobInfo, domain '
     'XML, the merge made durable (fsync, QEMU flush)', 'event', 'verified'),
    ('chain checked -> outcome journalled: backing name check (header '
     'read in-process), journal update', 'verified', 'finished'),
    ('journalled -> report at the stub: hand-off, cinderclient',
     'finished', 'reported'),
)


def _read(log_path):
    """{request id: [(epoch seconds, message)]} and
    {snapshot id: request id}."""
    by_request, snapshots = {}, {}
    with open(log_path, errors='replace') as f:
        for line in f:
            match = _LINE.match(line.rstrip('\n'))
            if not match:
                continue
            when = datetime.datetime.strptime(
                match.group('when'), '%Y-%m-%d %H:%M:%S.%f').timestamp()
            message = match.group('message')
            by_request.setdefault(match.group('req'), []).append(
                (when, message))
            accepted = re.match(r'Accepted \w+ of snapshot (\S+) ', message)
            if accepted:
                snapshots[accepted.group(1)] = match.group('req')
    return by_request, snapshots


def _marks(lines, snapshot_id, kind):
    marks = {}
    for when, message in lines:
        if message.startswith('Accepted %s of snapshot %s ' % (
                'create' if kind == 'create' else kind, snapshot_id)):
            marks.setdefault('accepted', when)
        elif message.startswith('Snapshot %s: switching' % snapshot_id):
            marks.setdefault('switching', when)
        elif re.match(r'(Snapshot|Block \w+) done: the chain', message):
            marks.setdefault('verified', when)
        elif message.startswith('%s of snapshot %s done' % (kind,
                                                            snapshot_id)):
            marks.setdefault('finished', when)
    return marks


def phases(log_path, samples, kind):
    """Per phase, the list of durations over ``samples`` (results of
    :class:`sides.ViaSnapdriver` with ``snapshot_id`` and wall times).

    :param kind: ``create`` or ``commit``.
    """
    by_request, snapshots = _read(log_path)
    spec = CREATE_PHASES if kind == 'create' else DELETE_PHASES
    out = {label: [] for label, _, _ in spec}
    for sample in samples:
        request = snapshots.get(sample['snapshot_id'])
        if request is None:
            continue
        marks = _marks(by_request[request], sample['snapshot_id'], kind)
        marks.update(sent=sample['wall_sent'],
                     reported=sample['wall_reported'])
        if 'wall_event' in sample:
            marks['event'] = sample['wall_event']
        for label, start, end in spec:
            if start in marks and end in marks:
                out[label].append(marks[end] - marks[start])
    return out


def job_starts(log_path, samples):
    """Per merge in ``samples`` (results of :class:`sides.ViaSnapdriver`),
    seconds from the request sent to snapdriver's log line just before it
    asks libvirt for the block job; None where the line is missing."""
    by_request, snapshots = _read(log_path)
    out = []
    for sample in samples:
        start = None
        prefix = 'Snapshot %s: block ' % sample['snapshot_id']
        for when, message in by_request.get(
                snapshots.get(sample['snapshot_id']), ()):
            if message.startswith(prefix):
                start = when - sample['wall_sent']
                break
        out.append(start)
    return out


def table(title, columns):
    """A phase table: ``columns`` is [(name, {phase: [durations]})]."""
    names = [name for name, _ in columns]
    t = common.Table(title, ['phase'] + ['%s median ms' % n for n in names]
                     + ['%s p95 ms' % n for n in names])
    for label in columns[0][1]:
        cells = [label]
        cells += [common.ms(common.median(data[label])) if data[label]
                  else 'n/a' for _, data in columns]
        cells += [common.ms(common.percentile(data[label], 95))
                  if data[label] else 'n/a' for _, data in columns]
        t.add(*cells)
    t.note("From snapdriver's own log lines (millisecond timestamps, "
           'INFO level) put next to the times the benchmark took; a '
           'phase ends when its log line is written.')
    return t
