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

"""A description of the machine the numbers were taken on."""

import datetime
import os
import platform
import subprocess

from bench import common


def _cpuinfo():
    model, flags = 'unknown', set()
    with open('/proc/cpuinfo') as f:
        for line in f:
            key, _, value = line.partition(':')
            key = key.strip()
            if key == 'model name' and model == 'unknown':
                model = value.strip()
            elif key == 'flags' and not flags:
                flags = set(value.split())
    return model, flags


def _mem_gib():
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal:'):
                return int(line.split()[1]) / 1024.0 / 1024.0
    return 0.0


def _version(number):
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000,
                         number % 1000)


def _git(*args):
    try:
        return subprocess.run(('git',) + args, capture_output=True,
                              text=True, timeout=10,
                              cwd=common.CHECKOUT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def checkout():
    """The checkout measured: {'path', 'describe', 'branch'}."""
    return {'path': common.CHECKOUT,
            'describe': _git('describe', '--always', '--dirty') or 'unknown',
            'branch': _git('rev-parse', '--abbrev-ref', 'HEAD') or 'unknown'}


def _binding_version():
    try:
        from importlib import metadata
        return metadata.version('libvirt-python')
    except Exception:
        return 'unknown'


def describe(conn, load_start):
    """Markdown lines describing this machine and the software.

    :param conn: the benchmark's libvirt connection, None when no section
        run needs libvirt (its lines then say so).
    """
    model, flags = _cpuinfo()
    kvm = os.path.exists('/dev/kvm')
    virt_flags = sorted(flags & {'vmx', 'svm'})
    try:
        with open('/etc/debian_version') as f:
            debian = f.read().strip()
    except OSError:
        debian = 'not Debian'
    measured = checkout()
    import snapdriver
    imported = os.path.dirname(os.path.dirname(os.path.abspath(
        snapdriver.__file__)))
    if conn is not None:
        import libvirt
        virt = [
            '| libvirt | libvirtd %s, C library %s, libvirt-python %s |' % (
                _version(conn.getLibVersion()),
                _version(libvirt.getVersion()), _binding_version()),
            '| QEMU | %s |' % _version(conn.getVersion()),
            '| acceleration | %s: guests are `<domain type=\'qemu\'>`, i.e. '
            'TCG |' % ('no KVM (/dev/kvm %s, CPU flags %s)' % (
                'exists' if kvm else 'absent',
                ', '.join(virt_flags) or 'without vmx/svm'))]
    else:
        virt = ['| libvirt, QEMU | not used by the sections run |']
    lines = [
        '| | |', '| --- | --- |',
        '| date | %s |' % datetime.datetime.now(
            datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        '| CPUs (nproc) | %d |' % len(os.sched_getaffinity(0)),
        '| CPU model | %s |' % model,
        '| RAM | %.1f GiB |' % _mem_gib(),
        '| OS | Debian %s, kernel %s |' % (debian, platform.release()),
        '| Python | %s |' % platform.python_version(),
    ] + virt + [
        '| snapdriver measured | `%s` (branch %s) in %s; imported from %s, '
        'and its processes run with PYTHONPATH=%s |' % (
            measured['describe'], measured['branch'], measured['path'],
            imported, measured['path']),
        '| load average at start | %s |' % load_start,
    ]
    return lines
