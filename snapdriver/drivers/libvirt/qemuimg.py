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

"""qemu-img, run the careful way.

Every call goes through :func:`oslo_concurrency.processutils.execute`.
``info`` only reads headers: it runs with an address space limit and a CPU
time limit, set by util-linux's prlimit(1), against headers crafted to make
it allocate or compute without bound (as Nova limits ``qemu-img info``).
``commit`` and ``rebase`` copy data: they get a wall-clock timeout
instead, and no address space limit (as Nova runs its data-copying
qemu-img calls): their virtual size grows with the I/O worker threads QEMU
starts on a busy host, and 1 GiB was not enough ("qemu_thread_create:
Resource temporarily unavailable"). Output is read as JSON, never as text
meant for humans, by oslo.utils' ``imageutils.QemuImgInfo``. Formats are
explicit everywhere except :func:`probe`, whose purpose is to find out a
file's format.
"""

import os
import re
import select
import shutil
import subprocess
import tempfile
import time

from oslo_concurrency import processutils
from oslo_log import log
from oslo_serialization import jsonutils
from oslo_utils import imageutils

from snapdriver.conf import CONF
from snapdriver import cpus as snapdriver_cpus
from snapdriver import exception

LOG = log.getLogger(__name__)

QEMU_IMG = 'qemu-img'


def find():
    """:returns: the path of qemu-img, or None when it is not installed."""
    return shutil.which(QEMU_IMG)


def _limited(cmd, cpu_time, address_space):
    """``cmd`` under its resource limits.

    util-linux's prlimit(1) sets them and execs qemu-img: a few
    milliseconds, where processutils' own ``prlimit=`` starts a Python
    interpreter first (about 30 ms, on every create and after every merge).
    Without prlimit(1), processutils' way is the fallback.

    :returns: (command, processutils.ProcessLimits or None)
    """
    space = (CONF.libvirt.qemu_img_address_space_mb * 1024 * 1024
             if address_space else None)
    if not space and not cpu_time:
        return cmd, None
    prlimit = shutil.which('prlimit')
    if prlimit is None:
        return cmd, processutils.ProcessLimits(address_space=space,
                                               cpu_time=cpu_time)
    prefix = [prlimit]
    if space:
        prefix.append('--as=%d' % space)
    if cpu_time:
        prefix.append('--cpu=%d' % cpu_time)
    return tuple(prefix) + ('--',) + cmd, None


def _tied_to_us(cmd):
    """``cmd`` killed if snapdriver dies (SIGKILL, OOM) while it runs.

    A merge left running would race the one that recovery starts on the
    same images. Killing it is safe: qemu-img relinks nothing before its
    copy is complete, and recovery runs the merge again.
    """
    setpriv = shutil.which('setpriv')
    if setpriv is None:
        return cmd
    return (setpriv, '--pdeathsig', 'KILL', '--') + cmd


def _on_every_cpu(cmd):
    """``cmd`` on every CPU snapdriver could use before it kept its own
    threads on one (``[DEFAULT] single_cpu``): a commit or rebase copies
    data and may use several."""
    cpus = snapdriver_cpus.ORIGINAL
    taskset = shutil.which('taskset') if cpus else None
    if taskset is None:
        return cmd
    return (taskset, '--cpu-list', ','.join(map(str, sorted(cpus)))) + cmd


def _execute(args, what, cpu_time=None, timeout=None, address_space=True,
             failed=exception.OperationFailed):
    cmd, limits = _limited((QEMU_IMG,) + tuple(args), cpu_time,
                           address_space)
    cmd = _tied_to_us(cmd)
    env = None
    if address_space:
        # glibc gives each thread that allocates an arena of its own (up to
        # 8 per CPU, 64 MiB of address space each, twice that while it is
        # made): on a busy host QEMU's I/O threads alone used up 1 GiB.
        # With one arena the limit bounds what the image makes qemu-img
        # allocate, not how busy the host is.
        env = dict(os.environ, MALLOC_ARENA_MAX='1')
    # processutils lets TimeoutExpired through without stopping the child;
    # a qemu-img left running would keep its image locks, so kill it.
    children = []
    try:
        out, _err = processutils.execute(
            *cmd, prlimit=limits, timeout=timeout, env_variables=env,
            on_execute=children.append)
    except processutils.ProcessExecutionError as error:
        raise failed(
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


# What ``qemu-img -p`` prints as it goes, each ended by a carriage return.
_PERCENT = re.compile(rb'\((\d+(?:\.\d+)?)/100%\)')


def _execute_with_progress(args, what, on_percent, timeout=None):
    """Run qemu-img with ``-p`` and hand each percentage it prints to
    ``on_percent``, as it goes.

    For the long commands (commit, rebase), which run under no resource
    limit; tied to this process and killed on timeout as
    :func:`_execute` does.
    """
    cmd = _on_every_cpu(_tied_to_us((QEMU_IMG,) + tuple(args)))
    deadline = None if not timeout else time.monotonic() + timeout
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=errors)
        except OSError as error:
            raise exception.OperationFailed(
                reason="%s could not be started: %s" % (what, error))
        with proc:
            pending = b''
            fd = proc.stdout.fileno()
            while True:
                left = (None if deadline is None
                        else deadline - time.monotonic())
                if left is not None and left <= 0:
                    proc.kill()
                    proc.wait()
                    raise exception.OperationFailed(
                        reason="%s did not finish within %s seconds and "
                        "was killed." % (what, timeout))
                ready, _, _ = select.select([fd], [], [],
                                            min(left or 1.0, 1.0))
                if not ready:
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                *lines, pending = re.split(rb'[\r\n]', pending + chunk)
                for line in lines:
                    match = _PERCENT.search(line)
                    if match:
                        on_percent(float(match.group(1)))
            proc.wait()
        if proc.returncode:
            errors.seek(0)
            message = errors.read().decode('utf-8', 'replace').strip()
            raise exception.OperationFailed(
                reason="%s failed (exit code %s): %s"
                % (what, proc.returncode, message or 'no error message'))


def _info(args, what):
    # A hung share must not hang the request: the wall clock is limited
    # as well as the CPU.
    return _execute(('info', '--output=json', '--force-share') + tuple(args),
                    what, cpu_time=CONF.libvirt.qemu_img_cpu_time,
                    timeout=CONF.libvirt.qemu_img_info_timeout,
                    failed=exception.ImageUnreadable)


def _image_info(text, what):
    """One image's JSON, read by oslo.utils' QemuImgInfo."""
    if not text.strip():
        # (QemuImgInfo would read nothing as an image without any field.)
        raise exception.OperationFailed(
            reason="%s printed no valid JSON: no output" % what)
    try:
        return imageutils.QemuImgInfo(text, format='json')
    except ValueError as error:
        raise exception.OperationFailed(
            reason="%s printed no valid JSON: %s" % (what, error))
    except AttributeError:
        # Valid JSON, but not an object.
        raise exception.OperationFailed(
            reason="%s printed no description of an image" % what)


def data_file(image):
    """The external data file a qcow2 header names, or None.

    :param image: an ``oslo_utils.imageutils.QemuImgInfo``.
    """
    data = (image.format_specific or {}).get('data') or {}
    return data.get('data-file')


def probe(path):
    """Read the header of a file whose format is to be found out.

    The one call without ``-f``: the point is to learn whether Cinder's
    overlay really is qcow2.

    :returns: an ``oslo_utils.imageutils.QemuImgInfo`` (``file_format``,
        ``backing_file``, ...).
    :raises: ImageUnreadable (qemu-img could not read it), OperationFailed
        (it did not finish in time, or could not be started)
    """
    what = "qemu-img info of %s" % path
    return _image_info(_info((path,), what), what)


def info(path, fmt):
    """The header of an image of known format.

    :returns: an ``oslo_utils.imageutils.QemuImgInfo``.
    :raises: OperationFailed
    """
    what = "qemu-img info of %s" % path
    return _image_info(_info(('-f', fmt, path), what), what)


def backing_chain(path, fmt):
    """The chain of an image, as its headers record it.

    ``--force-share`` lets this read the images of a running guest too.

    :param fmt: the image's format (the ``<driver type>`` of the disk).
    :returns: one ``oslo_utils.imageutils.QemuImgInfo`` per image, the
        image at ``path`` first.
    :raises: OperationFailed
    """
    what = "qemu-img info --backing-chain of %s" % path
    out = _info(('--backing-chain', '-f', fmt, path), what)
    # A JSON list, one object per image, which QemuImgInfo does not read
    # as a whole: each object is read on its own.
    try:
        images = jsonutils.loads(out)
    except ValueError as error:
        raise exception.OperationFailed(
            reason="%s printed no valid JSON: %s" % (what, error))
    if not isinstance(images, list):
        raise exception.OperationFailed(
            reason="%s printed no list of images" % what)
    return [_image_info(jsonutils.dumps(image), what) for image in images]


def rebase(path, fmt, backing, backing_fmt=None, unsafe=False,
           on_percent=None):
    """Make ``backing`` the backing file of ``path``.

    A safe rebase first copies into ``path`` whatever of the old chain the
    new backing lacks; an unsafe one (``unsafe=True``) only rewrites the
    header, for when the data already is where it must be.

    :param backing: the name to write into the header (relative to the
        directory of ``path``), or '' for no backing file at all.
    :param backing_fmt: the format of ``backing``; required unless
        ``backing`` is ''.
    :param on_percent: called with each percentage qemu-img prints.
    :raises: OperationFailed
    """
    args = ['rebase', '-f', fmt]
    if unsafe:
        args.append('-u')
    if backing:
        args.extend(['-F', backing_fmt])
    args.extend(['-b', backing, path])
    what = "qemu-img rebase of %s onto %r" % (path, backing)
    if on_percent is not None:
        _execute_with_progress(args[:1] + ['-p'] + args[1:], what,
                               on_percent,
                               timeout=CONF.libvirt.qemu_img_timeout)
        return
    _execute(args, what, timeout=CONF.libvirt.qemu_img_timeout,
             address_space=False)


def commit(path, fmt, on_percent=None):
    """Write the data of ``path`` into its backing file.

    ``-d`` leaves ``path`` as it was: until the image above it is relinked,
    the chain through ``path`` must still show the same data.

    :param on_percent: called with each percentage qemu-img prints.
    :raises: OperationFailed
    """
    what = "qemu-img commit of %s" % path
    if on_percent is not None:
        _execute_with_progress(('commit', '-p', '-f', fmt, '-d', path),
                               what, on_percent,
                               timeout=CONF.libvirt.qemu_img_timeout)
        return
    _execute(('commit', '-f', fmt, '-d', path), what,
             timeout=CONF.libvirt.qemu_img_timeout, address_space=False)
