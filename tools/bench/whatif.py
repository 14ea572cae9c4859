"""snapdriver-api with the changes the benchmarks suggest, patched in at
run time, to measure them without touching the service's code.

    python tools/bench/whatif.py [--journal-sync NORMAL]
        [--qemu-img-prlimit binary] [--reuse-overlay-probe]
        -- SNAPDRIVER-API ARGS...

* ``--journal-sync NORMAL``: the journal's SQLite runs with
  ``synchronous=NORMAL`` (WAL: no fsync per commit; a power cut may lose
  the last commits, a crash of snapdriver loses nothing) instead of FULL.
* ``--qemu-img-prlimit binary``: qemu-img's resource limits are set by
  util-linux's ``prlimit`` (a small C program) instead of
  ``python -m oslo_concurrency.prlimit`` (a Python interpreter start per
  call). Same limits, same timeout and kill handling.
* ``--reuse-overlay-probe``: the run-time re-check of ``new_file`` reuses
  the header read at accept time while the file is unchanged (same inode,
  size, mtime and ctime); any change reads it again.

The numbers it gives are labelled "what-if" in the tables: they are not
snapdriver as it is, but what the suggested change would give.
"""

import argparse
import os
import subprocess
import sys
import threading


def _journal_sync(mode):
    from snapdriver.operations import journal

    def pragmas(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA synchronous=%s' % mode)
        cursor.execute('PRAGMA busy_timeout=10000')
        cursor.close()
    journal._sqlite_pragmas = pragmas


def _prlimit_binary():
    from oslo_concurrency import processutils

    from snapdriver.conf import CONF
    from snapdriver.drivers.libvirt import qemuimg
    from snapdriver import exception

    def execute(args, what, cpu_time=None, timeout=None,
                address_space=True):
        # Mirrors qemuimg._execute: the same limits and environment, set
        # by prlimit(1) instead of a Python interpreter.
        limits, env = ['prlimit'], None
        if address_space:
            limits.append('--as=%d' % (
                CONF.libvirt.qemu_img_address_space_mb * 1024 * 1024))
            env = dict(os.environ, MALLOC_ARENA_MAX='1')
        if cpu_time:
            limits.append('--cpu=%d' % cpu_time)
        cmd = (limits if len(limits) > 1 else []) + [qemuimg.QEMU_IMG]
        children = []
        try:
            out, _err = processutils.execute(
                *(cmd + list(args)), timeout=timeout, env_variables=env,
                on_execute=children.append)
        except processutils.ProcessExecutionError as error:
            raise exception.OperationFailed(
                reason="%s failed (exit code %s): %s"
                % (what, error.exit_code, (error.stderr or '').strip()
                   or 'no error message'))
        except subprocess.TimeoutExpired:
            for child in children:
                child.kill()
                child.wait()
            raise exception.OperationFailed(
                reason="%s did not finish within %s seconds and was killed."
                % (what, timeout))
        except OSError as error:
            raise exception.OperationFailed(
                reason="%s could not be started: %s" % (what, error))
        return out
    qemuimg._execute = execute


def _reuse_overlay_probe():
    from snapdriver.drivers.libvirt import qemuimg

    probe = qemuimg.probe
    cache = {}
    lock = threading.Lock()

    def signature(path):
        st = os.stat(path)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                st.st_ctime_ns)

    def cached_probe(path):
        key = (path, signature(path))
        with lock:
            if key in cache:
                return cache[key]
        info = probe(path)
        with lock:
            if len(cache) > 256:
                cache.clear()
            cache[key] = info
        return info
    qemuimg.probe = cached_probe


def main():
    argv = sys.argv[1:]
    if '--' not in argv:
        raise SystemExit(__doc__)
    split = argv.index('--')
    parser = argparse.ArgumentParser()
    parser.add_argument('--journal-sync', choices=('FULL', 'NORMAL', 'OFF'))
    parser.add_argument('--qemu-img-prlimit', choices=('binary',))
    parser.add_argument('--reuse-overlay-probe', action='store_true')
    args = parser.parse_args(argv[:split])
    if args.journal_sync:
        _journal_sync(args.journal_sync)
    if args.qemu_img_prlimit:
        _prlimit_binary()
    if args.reuse_overlay_probe:
        _reuse_overlay_probe()
    from snapdriver.cmd import api
    return api.main(argv[split + 1:])


if __name__ == '__main__':
    sys.exit(main())
