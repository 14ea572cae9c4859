#!/usr/bin/env python3
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

"""Benchmarks of snapdriver against its baseline, side by side.

Run by tools/run-benchmarks.sh, which installs what is needed and provides
a private libvirtd ($SNAPDRIVER_TEST_LIBVIRT_URI). Prints markdown tables
as each benchmark ends and writes them all to RESULTS (default
.run/bench/results.md), with the raw samples in results.json beside it.

1. create: POST -> `creating` report at a Cinder stub, vs qemu-img info +
   snapshotCreateXML done directly (two TCG guests, interleaved);
2. delete: libvirt's COMPLETED event -> `deleting` report;
3. merge throughput of a layer full of data, commit and pull, vs the same
   block job driven directly;
4. the API alone under wrk (fake driver);
5. scaling with chain depth and with the number of guests;
6. the pieces of the create path, timed one by one;
7. a region: what the API tier and the broker add to a create, creates
   per second with 1-8 agents, how soon an agent's death is a 503
   (RabbitMQ; see tools/bench/region_case.py);
8. memory: snapdriver-api's resident memory after 10,000 and 20,000
   operations (fake driver; see tools/bench/memory_case.py).

The last table, "Targets (performance round two)", puts each target's
figure, computed from the samples of the sections that ran, with met or
missed (tools/bench/targets.py).

The snapdriver measured is the one of this checkout (the directory above
tools/), in this process and in every process the benchmark starts
(PYTHONPATH), whichever checkout the venv's editable install points at.

Nothing here asserts a time; the targets are stated next to the numbers.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import time
import traceback

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
sys.path.insert(1, REPO)

from bench import common  # noqa: E402

# Before anything imports snapdriver: this checkout's, here and in every
# process the benchmark starts (PYTHONPATH), not the one the venv's
# editable install points at.
common.measure_this_checkout()

from bench import api_case  # noqa: E402
from bench import libvirt_cases  # noqa: E402
from bench import machine  # noqa: E402
from bench import memory_case  # noqa: E402
from bench import region_case  # noqa: E402
from bench import targets  # noqa: E402
from snapdriver.tests.functional import guest as guest_mod  # noqa: E402

SECTIONS = ('create', 'delete', 'merge', 'api', 'scaling', 'components',
            'region', 'memory')
#: Sections that need no libvirt.
NO_LIBVIRT = {'api', 'region', 'memory'}

FULL = {'iterations': 30, 'warmup': 3, 'merge_mb': 1024, 'merge_reps': 5,
        'api_seconds': 10, 'scale_iterations': 8, 'depths': (1, 10, 100),
        'guest_counts': (2, 10, 50), 'component_iterations': 20,
        'region_iterations': 200, 'region_seconds': 5, 'region_reps': 3,
        'memory_operations': 10000}
QUICK = {'iterations': 8, 'warmup': 1, 'merge_mb': 128, 'merge_reps': 1,
         'api_seconds': 3, 'scale_iterations': 3, 'depths': (1, 10, 30),
         'guest_counts': (2, 10), 'component_iterations': 5,
         'region_iterations': 50, 'region_seconds': 2, 'region_reps': 1,
         'memory_operations': 1000}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='smaller sizes and counts (a few minutes)')
    parser.add_argument('--only', default=','.join(SECTIONS),
                        help='comma-separated sections to run, of: %s'
                        % ', '.join(SECTIONS))
    parser.add_argument('--iterations', type=int,
                        help='iterations of create and delete')
    parser.add_argument('--merge-mb', type=int,
                        help='size of the layer merged in benchmark 3')
    parser.add_argument('--profile', action='store_true',
                        help='also profile snapdriver-api under the POST '
                        'load with py-spy (if installed)')
    parser.add_argument('--no-whatif', dest='whatif', action='store_false',
                        help='leave out the "what-if" rows (snapdriver with '
                        'the suggested change patched in by '
                        'tools/bench/whatif.py)')
    parser.add_argument('--out', default=os.path.join(REPO, '.run', 'bench'),
                        help='directory for results.md, results.json and '
                        'the scratch files (default .run/bench)')
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(',') if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error('unknown section(s): %s' % ', '.join(sorted(unknown)))
    return args


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    sizes = dict(QUICK if args.quick else FULL)
    if args.iterations:
        sizes['iterations'] = args.iterations
    if args.merge_mb:
        sizes['merge_mb'] = args.merge_mb
    uri = guest_mod.libvirt_uri()
    needs_libvirt = set(args.sections) - NO_LIBVIRT
    if needs_libvirt and not uri:
        raise SystemExit(guest_mod.SKIP_REASON)
    signal.signal(signal.SIGTERM, _terminate)

    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, 'work')
    shutil.rmtree(work, ignore_errors=True)
    share = os.path.join(work, 'share')
    os.makedirs(share)
    results_md = os.path.join(args.out, 'results.md')
    results_json = os.path.join(args.out, 'results.json')
    started = time.monotonic()
    load_start = common.loadavg()

    stub = common.CinderStub()
    events = common.Events(uri) if uri else None
    snapdriver = whatif = None
    failures = []
    raw = {'sizes': {k: list(v) if isinstance(v, tuple) else v
                     for k, v in sizes.items()}, 'mode':
           'quick' if args.quick else 'full'}
    with open(results_md, 'w') as out:
        def emit(text):
            print(text, flush=True)
            out.write(text + '\n')
            out.flush()

        try:
            emit('## Benchmark run (%s mode)\n' % raw['mode'])
            emit('\n'.join(machine.describe(events.conn if events else None,
                                            load_start)) + '\n')
            raw['checkout'] = machine.checkout()
            if needs_libvirt:
                conf = {
                    'DEFAULT': {'driver': 'libvirt',
                                'status_reporter': 'cinder'},
                    'libvirt': {'connection_uri': uri, 'quiesce': 'never'},
                    'cinder': {'endpoint_override': stub.endpoint,
                               'report_initial_backoff': '0.05',
                               'report_deadline': '60'},
                }
                snapdriver = common.Snapdriver(work, 'snapdriver',
                                               conf).start()
                if args.whatif:
                    whatif = common.Snapdriver(
                        work, 'snapdriver-whatif', conf,
                        whatif=common.SUGGESTED).start()
                env = libvirt_cases.Env(uri, share, events, snapdriver,
                                        stub, sizes, whatif)
            runners = {
                'create': lambda: libvirt_cases.bench_create(env),
                'delete': lambda: libvirt_cases.bench_delete(env),
                'merge': lambda: libvirt_cases.bench_merge(env),
                'api': lambda: api_case.bench_api(work, sizes, args.profile),
                'scaling': lambda: libvirt_cases.bench_scaling(env),
                'components': lambda: libvirt_cases.bench_components(env),
                'region': lambda: region_case.bench_region(sizes),
                'memory': lambda: memory_case.bench_memory(work, sizes),
            }
            for section in SECTIONS:
                if section not in args.sections:
                    continue
                t0 = time.monotonic()
                print('... %s' % section, file=sys.stderr, flush=True)
                try:
                    tables, samples = runners[section]()
                except Exception as e:
                    traceback.print_exc()
                    failures.append(section)
                    emit('### %s: FAILED\n\n%s: %s\n'
                         % (section, type(e).__name__, e))
                    continue
                raw.update(samples)
                for table in tables:
                    emit(table.markdown())
                print('... %s took %.0f s (load average %s)' % (
                    section, time.monotonic() - t0, common.loadavg()),
                    file=sys.stderr, flush=True)
            if stub.other:
                emit('Unexpected requests at the Cinder stub: %s\n'
                     % stub.other[:10])
            emit('Whole run: %.0f s; load average at the end: %s (other '
                 'work on the machine shows up here).\n'
                 % (time.monotonic() - started, common.loadavg()))
            emit(targets.table(raw, args.sections, failures).markdown())
        finally:
            for process in (snapdriver, whatif):
                if process:
                    process.stop()
            stub.stop()
            if events:
                events.close()
            # The images are big (merge layers); logs and journals stay.
            shutil.rmtree(share, ignore_errors=True)
    with open(results_json, 'w') as f:
        json.dump(raw, f, indent=1, default=str)
    print('results: %s (raw samples: %s)' % (results_md, results_json),
          file=sys.stderr)
    if failures:
        print('FAILED: %s' % ', '.join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
