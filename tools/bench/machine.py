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

import libvirt


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
                              cwd=os.path.dirname(__file__)).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def _binding_version():
    try:
        from importlib import metadata
        return metadata.version('libvirt-python')
    except Exception:
        return 'unknown'


def describe(conn, load_start):
    """Markdown lines describing this machine and the software."""
    model, flags = _cpuinfo()
    kvm = os.path.exists('/dev/kvm')
    virt_flags = sorted(flags & {'vmx', 'svm'})
    try:
        with open('/etc/debian_version') as f:
            debian = f.read().strip()
    except OSError:
        debian = 'not Debian'
    commit = _git('rev-parse', '--short', 'HEAD')
    dirty = ' + uncommitted changes' if _git('status', '--porcelain',
                                             '--untracked-files=no') else ''
    lines = [
        '| | |', '| --- | --- |',
        '| date | %s |' % datetime.datetime.now(
            datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        '| CPUs (nproc) | %d |' % len(os.sched_getaffinity(0)),
        '| CPU model | %s |' % model,
        '| RAM | %.1f GiB |' % _mem_gib(),
        '| OS | Debian %s, kernel %s |' % (debian, platform.release()),
        '| Python | %s |' % platform.python_version(),
        '| libvirt | libvirtd %s, C library %s, libvirt-python %s |' % (
            _version(conn.getLibVersion()), _version(libvirt.getVersion()),
            _binding_version()),
        '| QEMU | %s |' % _version(conn.getVersion()),
        '| acceleration | %s: guests are `<domain type=\'qemu\'>`, i.e. TCG '
        '|' % ('no KVM (/dev/kvm %s, CPU flags %s)' % (
            'exists' if kvm else 'absent',
            ', '.join(virt_flags) or 'without vmx/svm')),
        '| snapdriver | %s%s |' % (commit or 'unknown', dirty),
        '| load average at start | %s |' % load_start,
    ]
    return lines
