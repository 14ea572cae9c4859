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

"""A chain as its image headers record it, changed with qemu-img.

A stopped guest's XML does not show its whole chain, and no QEMU holds its
images: its chain is read from the headers (:func:`read_chain`) and merged
by qemu-img (:func:`merge`). After any merge of a file disk, online or
offline, the header that was rewritten must name its backing file
relatively, as Cinder finds the files of a chain by those names
(:func:`check_relative`).

Nothing here needs a pause or a flush: nothing outlives qemu-img's exit,
and it syncs every image it wrote before exiting.
"""

import os

from snapdriver import chain
from snapdriver.drivers.libvirt import qcow2
from snapdriver.drivers.libvirt import qemuimg
from snapdriver import exception


def read_chain(path, fmt):
    """The chain of the image at ``path``, as its headers record it.

    ``qemu-img info --backing-chain`` follows whatever the headers say
    (absolute paths, ``..``, symbolic links) and guesses formats that are
    not recorded; every merge of a stopped guest starts from this chain, so
    it must stay among the volume's files: each backing file named by its
    plain name (``./`` at most), a regular file in the active image's
    directory, with its format recorded.

    :param fmt: the image's format (the disk's ``<driver type>``).
    :returns: a tuple of :class:`snapdriver.chain.ChainEntry`, the image at
        ``path`` first, each named by its file name.
    :raises: UnsafeChain, OperationFailed
    """
    directory = os.path.dirname(path)
    entries = []
    above = None
    for info in qemuimg.backing_chain(path, fmt):
        image_path = info.image if entries else path
        if above is not None:
            _check_link(directory, above, image_path)
        entries.append(chain.ChainEntry(name=os.path.basename(image_path),
                                        path=image_path, fmt=info.file_format))
        above = info
    return tuple(entries)


def _check_link(directory, above, image_path):
    """The link from the image ``above`` (its QemuImgInfo) to the image at
    ``image_path`` stays among the volume's files."""
    name = above.backing_file or ''
    plain = name[2:] if name.startswith('./') else name
    where = "%s names %r as its backing file" % (above.image, name)
    if not plain or '/' in plain or plain in ('.', '..'):
        reason = ("%s: a chain must name each backing file by its plain "
                  "name, in the volume's directory %s" % (where, directory))
    elif not above.backing_file_format:
        reason = ("%s without recording its format: qemu-img would guess "
                  "it" % where)
    elif os.path.lexists(image_path) and (
            os.path.islink(image_path) or not os.path.isfile(image_path)
            or os.path.dirname(os.path.realpath(image_path))
            != os.path.realpath(directory)):
        # (qemu-img has just opened it; one gone since fails the merge.)
        reason = ("%s, which is not a regular file in %s (a symbolic "
                  "link, or elsewhere)" % (where, directory))
    else:
        return
    raise exception.UnsafeChain(
        reason="The chain of the stopped guest's disk is refused: %s; "
        "nothing was changed." % reason)


def _relative(path, image_path):
    """``path`` as a backing name written into the image at
    ``image_path``: relative to that image's directory, as Cinder wants."""
    return os.path.relpath(path, os.path.dirname(image_path))


def merge(location, plan, on_percent=None):
    """Carry out ``plan`` on the file disk of a stopped guest.

    A pull rebases the active image onto the base (a safe rebase copies
    what the base lacks); a commit writes the top into the base, then
    relinks the image above the top onto the base without copying.

    :param location: the located disk (:class:`chain.DiskLocation`), with
        the chain the plan was made for.
    :param plan: a :class:`chain.DeletePlan`.
    :param on_percent: called with each percentage of the copy (the safe
        rebase of a pull, the commit of a commit) as qemu-img prints it.
    :raises: OperationFailed
    """
    entries = location.chain
    active = entries[0]
    if plan.kind == chain.PULL:
        if plan.base is None:
            qemuimg.rebase(active.path, active.fmt, '',
                           on_percent=on_percent)
            return
        base = location.entry(plan.base)
        qemuimg.rebase(active.path, active.fmt,
                       _relative(base.path, active.path), base.fmt,
                       on_percent=on_percent)
        return
    position = location.names.index(plan.top)
    top, above = entries[position], entries[position - 1]
    base = entries[position + 1]
    qemuimg.commit(top.path, top.fmt, on_percent=on_percent)
    # The data of top is in base now: relink without copying.
    qemuimg.rebase(above.path, above.fmt, _relative(base.path, above.path),
                   base.fmt, unsafe=True)


def check_relative(location, plan):
    """The header the merge rewrote must name its backing relatively.

    Cinder finds the files of a chain by the names in the headers.

    :param location: the file disk as it was before the merge.
    :param plan: the :class:`chain.DeletePlan` carried out.
    :raises: OperationFailed
    """
    if plan.base is None:
        return
    rewritten = (location.names[0] if plan.kind == chain.PULL
                 else location.names[location.names.index(plan.top) - 1])
    entry = location.entry(rewritten)
    backing = qcow2.image_facts(entry.path, entry.fmt).backing_file or ''
    if backing.startswith('/'):
        raise exception.OperationFailed(
            reason="After the block %s, %s records its backing file as the "
            "absolute path %s; Cinder needs a relative name."
            % (plan.kind, entry.path, backing))
