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

"""``snapdriver-manage operations watch``: running operations, live.

Reads this host's journal (``[database] connection``), where the service
keeps each running merge's progress (see
:mod:`snapdriver.operations.progress`), every ``interval`` seconds until
the operations watched have ended. On a terminal it draws a table with a
progress bar per operation (rich); otherwise it prints a plain line for
each operation whenever its state or its percentage changes, for logs and
scripts.
"""

import time

from rich import console as rich_console
from rich import live as rich_live
from rich import progress_bar
from rich import table as rich_table

from snapdriver import objects
from snapdriver.operations import progress as progress_mod

ACTIVE = (objects.QUEUED, objects.RUNNING)
# Characters of a progress bar.
_BAR = 30


def _figures(view):
    """(percent text, bytes text, rate text, time text) of an operation."""
    progress = view.progress
    if progress is None:
        return '', '', '', ''
    percent = ('%.1f%%' % progress.percent
               if progress.percent is not None else '')
    amount = '%s / %s' % (progress_mod.human_bytes(progress.bytes_done),
                          progress_mod.human_bytes(progress.bytes_total))
    if progress.finished:
        return (percent, amount,
                '%s/s avg' % progress_mod.human_bytes(progress.average_rate),
                'took %s' % progress_mod.human_seconds(
                    progress.job_seconds))
    rate = ('%s/s' % progress_mod.human_bytes(progress.rate)
            if progress.rate is not None else '')
    left = ('%s left' % progress_mod.human_seconds(progress.eta_seconds)
            if progress.eta_seconds is not None else '')
    return percent, amount, rate, left


def _where(view):
    return '%s %s' % (view.guest or '?', view.disk or '?')


def line(view):
    """An operation as one plain line."""
    parts = [view.snapshot_id, view.kind, _where(view), view.state]
    parts.extend(text for text in _figures(view) if text)
    if view.error:
        parts.append('error: %s' % view.error)
    return '  '.join(parts)


def table(views):
    """The operations as a rich table, a progress bar each."""
    grid = rich_table.Table(expand=False, box=None, pad_edge=False)
    for name, justify in (('snapshot', 'left'), ('kind', 'left'),
                          ('guest disk', 'left'), ('state', 'left'),
                          ('progress', 'left'), ('', 'right'),
                          ('done', 'right'), ('rate', 'right'),
                          ('time', 'right')):
        grid.add_column(name, justify=justify, no_wrap=True,
                        width=_BAR if name == 'progress' else None)
    for view in views:
        percent, amount, rate, left = _figures(view)
        progress = view.progress
        if view.state == objects.SUCCEEDED:
            bar = progress_bar.ProgressBar(total=100, completed=100,
                                           width=_BAR)
        elif progress is not None and progress.percent is not None:
            bar = progress_bar.ProgressBar(total=100,
                                           completed=progress.percent,
                                           width=_BAR)
        elif view.state == objects.RUNNING:
            bar = progress_bar.ProgressBar(total=None, width=_BAR)
        else:
            bar = ''
        grid.add_row(view.snapshot_id[:8], view.kind, _where(view),
                     view.state, bar, percent, amount, rate, left)
    return grid


class Watcher:
    """Follows operations of a journal until they have ended.

    :param journal: a :class:`snapdriver.operations.journal.Journal`.
    :param ids: operation or snapshot ids to follow; none: every queued
        or running operation, and those that start meanwhile, until none
        is left.
    """

    def __init__(self, journal, ids=(), interval=1.0, sleep=time.sleep):
        self.journal = journal
        self.ids = list(ids)
        self.interval = interval
        self.sleep = sleep
        self._seen = {}

    def views(self):
        """The operations followed, as they are now (those that ended
        since they were first seen included)."""
        if self.ids:
            rows = self.journal.listing(ids=self.ids)
        else:
            rows = self.journal.listing(states=ACTIVE)
            ended = [i for i in self._seen
                     if i not in {row['id'] for row in rows}]
            if ended:
                rows = sorted(rows + self.journal.listing(ids=ended),
                              key=lambda row: row['seq'])
        for row in rows:
            self._seen.setdefault(row['id'], None)
        return [objects.OperationView.from_row(row) for row in rows]

    @staticmethod
    def over(views):
        return all(view.state in objects.FINAL for view in views)

    def plain(self, out):
        """A line per operation each time it changes, until all ended.

        :returns: the last views.
        """
        while True:
            views = self.views()
            for view in views:
                text = line(view)
                shown = (view.state,
                         view.progress.percent if view.progress else None)
                if self._seen.get(view.id) != shown:
                    self._seen[view.id] = shown
                    out.write(text + '\n')
                    out.flush()
            if self.over(views):
                return views
            self.sleep(self.interval)

    def live(self, console):
        """A table redrawn every interval, until all ended; the last one
        stays on the screen.

        :returns: the last views.
        """
        views = self.views()
        with rich_live.Live(table(views), console=console,
                            auto_refresh=False) as screen:
            while not self.over(views):
                self.sleep(self.interval)
                views = self.views()
                screen.update(table(views), refresh=True)
        return views


def run(journal, ids=(), interval=1.0, out=None, sleep=time.sleep):
    """The command: a live table on a terminal, plain lines elsewhere.

    :returns: the exit code: 0 when every operation followed succeeded
        (or there was none), 1 when one failed, 2 when an id is unknown.
    """
    watcher = Watcher(journal, ids, interval, sleep)
    console = rich_console.Console(file=out)
    views = watcher.views()
    if not views:
        text = ("No operation %s in this host's journal." % ', '.join(ids)
                if ids else "No operation is queued or running.")
        console.file.write(text + '\n')
        return 2 if ids else 0
    if console.is_terminal:
        views = watcher.live(console)
    else:
        views = watcher.plain(console.file)
    return 1 if any(v.state == objects.FAILED for v in views) else 0
