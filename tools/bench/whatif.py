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

"""snapdriver-api with a change the benchmarks suggest, patched in at run
time, to measure it without touching the service's code.

    python tools/bench/whatif.py [--qemu-img-spawn] -- SNAPDRIVER-API ARGS...

* ``--qemu-img-spawn``: the command ``qemuimg._execute`` builds (qemu-img
  behind the prefixes it puts in front: prlimit(1) for the limits, setpriv
  to tie it to snapdriver) is started by :class:`subprocess.Popen` without
  a ``preexec_fn`` instead of by ``processutils.execute``.
  processutils always passes one (it only resets SIGPIPE, which Popen's
  ``restore_signals`` does anyway), and a ``preexec_fn`` makes CPython
  fork the whole process instead of using vfork. ``qemuimg._execute``
  itself runs unchanged: only the ``processutils`` it calls is replaced,
  by :class:`Spawn`, which keeps the arguments, the return value, the
  exceptions (exit code, stderr; a timeout lets ``TimeoutExpired`` out
  after handing the child to ``on_execute``) and, when qemuimg falls back
  to oslo's ``prlimit=`` (no prlimit(1) on the host), processutils itself.

The numbers it gives are labelled "what-if" in the tables: they are not
snapdriver as it is, but what the suggested change would give.
"""

import argparse
import os
import subprocess
import sys

from oslo_concurrency import processutils


class Spawn:
    """Stands in for the ``processutils`` module inside qemuimg."""

    ProcessExecutionError = processutils.ProcessExecutionError
    ProcessLimits = processutils.ProcessLimits

    @staticmethod
    def execute(*cmd, prlimit=None, timeout=None, env_variables=None,
                on_execute=None):
        if prlimit is not None:
            # The fallback without prlimit(1): that one needs processutils.
            return processutils.execute(
                *cmd, prlimit=prlimit, timeout=timeout,
                env_variables=env_variables, on_execute=on_execute)
        cmd = [str(c) for c in cmd]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True,
                                env=env_variables)
        if on_execute:
            on_execute(proc)
        out, err = proc.communicate(timeout=timeout)
        out, err = os.fsdecode(out), os.fsdecode(err)
        if proc.returncode != 0:
            raise processutils.ProcessExecutionError(
                exit_code=proc.returncode, stdout=out, stderr=err,
                cmd=' '.join(cmd))
        return out, err


def spawn_qemu_img():
    """Patch :class:`Spawn` into qemuimg (``--qemu-img-spawn``)."""
    from snapdriver.drivers.libvirt import qemuimg
    qemuimg.processutils = Spawn


def main():
    argv = sys.argv[1:]
    if '--' not in argv:
        raise SystemExit(__doc__)
    split = argv.index('--')
    parser = argparse.ArgumentParser()
    parser.add_argument('--qemu-img-spawn', action='store_true')
    args = parser.parse_args(argv[:split])
    if args.qemu_img_spawn:
        spawn_qemu_img()
    from snapdriver.cmd import api
    return api.main(argv[split + 1:])


if __name__ == '__main__':
    sys.exit(main())
