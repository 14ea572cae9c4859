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

"""snapdriver-manage: commands for operators.

::

    snapdriver-manage [--config-file FILE] agents list [--wait SECONDS]
    snapdriver-manage [--config-file FILE] operations list [--state S]
        [--delivery D] [--volume V] [--limit N]
    snapdriver-manage [--config-file FILE] operations show ID
    snapdriver-manage [--config-file FILE] operations resend ID
    snapdriver-manage [--config-file FILE] operations watch [ID ...]
        [--interval SECONDS]

The ``operations`` commands read this host's journal (``[database]
connection``): run them where the service (or the agent) runs.

Commands come in categories, as nova-manage's do (an oslo.config
sub-command ``category``, then an action with its own arguments); each
category is a class of :data:`CATEGORIES` whose public methods are its
actions, their command-line arguments declared with :func:`args`. A
command returns the process's exit code.
"""

import json
import sys
import time

from oslo_config import cfg
from oslo_log import log

from snapdriver.conf import CONF
from snapdriver import objects
from snapdriver import service

LOG = log.getLogger(__name__)

#: Seconds to wait for the broker before giving up.
CONNECT_TIMEOUT = 15


def args(*names, **kwargs):
    """Declare a command-line argument of an action (as argparse's
    ``add_argument`` takes it)."""
    def decorate(fn):
        fn.__dict__.setdefault('args', []).insert(0, (names, kwargs))
        return fn
    return decorate


def _table(columns, rows):
    """Text columns, left-aligned, the header first."""
    rows = [[('-' if value is None else str(value)) for value in row]
            for row in rows]
    widths = [max(len(text) for text in column)
              for column in zip(columns, *rows)]
    return '\n'.join('  '.join(text.ljust(width) for text, width in
                               zip(row, widths)).rstrip()
                     for row in [list(columns)] + rows)


class AgentCommands:
    """The agents of a region ([api] dispatch = agents)."""

    @args('--wait', type=float, default=3.0, metavar='SECONDS',
          help="How long to listen for the agents' reports after asking "
               "every agent to report (default: %(default)s).")
    def list(self, wait):
        """List the agents that report now: host, state, last seen,
        driver, version and how many volumes each driver sees.

        Asks every agent to report at once (as an API process does when it
        starts) and lists those whose report arrives within ``wait``
        seconds; an agent that is down is not listed (the API tier's
        ``GET /v2.1/os-snapdriver-agents`` shows it as down).
        """
        from snapdriver.agent import registry as registry_mod
        from snapdriver.agent import rpcapi

        registry = registry_mod.AgentRegistry(CONF.api.agent_down_time)
        listener = registry_mod.ReportListener(
            registry, rpcapi.AgentAPI(CONF.api.agent_timeout))
        listener.start()
        try:
            if not listener.connected.wait(CONNECT_TIMEOUT):
                sys.stderr.write(
                    "snapdriver-manage: the message broker ([DEFAULT] "
                    "transport_url) cannot be reached; waited %d s\n"
                    % CONNECT_TIMEOUT)
                return 1
            time.sleep(wait)
        finally:
            listener.stop()
        agents = registry.agents()
        if not agents:
            print("No agent reported within %s s." % wait)
            return 0
        print(_table(
            ('host', 'state', 'last seen', 'driver', 'version', 'volumes'),
            [(agent['host'], agent['state'], agent['last_seen'],
              agent['driver'], agent['version'], agent['volumes'])
             for agent in agents]))
        return 0


def _journal():
    """This host's journal, or None (said on stderr) when there is none:
    a command that reads it must not make an empty one."""
    from snapdriver.db import api as db_api
    from snapdriver.operations import journal as journal_mod

    missing = db_api.missing_sqlite_file()
    if missing:
        sys.stderr.write("snapdriver-manage: no journal at %s ([database] "
                         "connection): run this where snapdriver-api or "
                         "snapdriver-agent runs\n" % missing)
        return None
    return journal_mod.Journal()


def _percent(view):
    if view.progress is None or view.progress.percent is None:
        return None
    return '%g%%' % view.progress.percent


class OperationCommands:
    """The operations in this host's journal."""

    @args('--state', choices=objects.STATES,
          help="Only operations in this state.")
    @args('--delivery', choices=objects.DELIVERIES,
          help="Only operations whose status report is in this state.")
    @args('--volume', metavar='VOLUME_ID', help="Only this volume's.")
    @args('--limit', type=int, default=50, metavar='N',
          help="The newest N at most (default: %(default)s).")
    def list(self, state, delivery, volume, limit):
        """List operations, oldest first: id, snapshot, volume, kind,
        state, progress of a merge, report delivery, when accepted."""
        journal = _journal()
        if journal is None:
            return 1
        views = [objects.OperationView.from_row(row) for row in
                 journal.listing(states=[state] if state else None,
                                 delivery=delivery, volume_id=volume,
                                 limit=limit)]
        if not views:
            print("No operation.")
            return 0
        print(_table(
            ('id', 'snapshot', 'volume', 'kind', 'state', 'progress',
             'delivery', 'created'),
            [(view.id, view.snapshot_id, view.volume_id, view.kind,
              view.state, _percent(view), view.status_report.delivery,
              view.created_at.isoformat(timespec='seconds'))
             for view in views]))
        return 0

    @args('id', metavar='ID', help="An operation id or a snapshot id.")
    def show(self, id):
        """Show operations (of a snapshot id, or one by its id) as GET
        shows them, in JSON."""
        journal = _journal()
        if journal is None:
            return 1
        rows = journal.listing(ids=[id])
        if not rows:
            sys.stderr.write("snapdriver-manage: no operation %s in this "
                             "host's journal\n" % id)
            return 2
        print(json.dumps([objects.OperationView.from_row(row).to_dict()
                          for row in rows], indent=2))
        return 0

    @args('id', metavar='ID', help="An operation id or a snapshot id (its "
          "newest finished operation).")
    def resend(self, id):
        """Send the status report of a finished operation to Cinder now
        (one given up, or still pending), with the status reporter and
        credentials of this configuration, and journal what became of it.
        Exit code 0 when delivered, 1 when not, 2 when there is nothing to
        send."""
        import threading

        from snapdriver.operations import delivery as delivery_mod
        from snapdriver.operations import reporter as reporter_mod
        from snapdriver import plugins

        journal = _journal()
        if journal is None:
            return 1
        rows = [row for row in journal.listing(ids=[id])
                if row['state'] in objects.FINAL]
        if not rows:
            sys.stderr.write("snapdriver-manage: no finished operation %s "
                             "in this host's journal (a queued or running "
                             "one is reported when it ends)\n" % id)
            return 2
        row = rows[-1]
        if row['delivery'] == objects.DELIVERED:
            sys.stderr.write("snapdriver-manage: the %s report of snapshot "
                             "%s (operation %s) was delivered at %s; nothing "
                             "to resend\n" % (row['status'],
                                              row['snapshot_id'], row['id'],
                                              row['reported_at']))
            return 2
        if not CONF.status_reporter:
            sys.stderr.write("snapdriver-manage: [DEFAULT] status_reporter "
                             "is not set\n")
            return 1
        reporter = plugins.load(reporter_mod.NAMESPACE, CONF.status_reporter,
                                'status reporter')
        sender = delivery_mod.ReportDelivery(journal, reporter,
                                             threading.Condition())
        try:
            row = sender.send_now(row['id'])
        finally:
            sender.shutdown(wait=False)
        print("%s report of snapshot %s (operation %s): %s, %s"
              % (row['status'], row['snapshot_id'], row['id'],
                 row['delivery'], row['delivery_detail']))
        return 0 if row['delivery'] == objects.DELIVERED else 1

    @args('ids', metavar='ID', nargs='*',
          help="Operation or snapshot ids to follow (default: every "
               "operation queued or running, and those that start "
               "meanwhile, until none is left).")
    @args('--interval', type=float, default=1.0, metavar='SECONDS',
          help="Seconds between two looks (default: %(default)s).")
    def watch(self, ids, interval):
        """Show running operations with a progress bar each, refreshed
        until they have ended; plain lines when the output is not a
        terminal. Exit code 1 when one of them failed."""
        from snapdriver.cmd import watch as watch_mod

        journal = _journal()
        if journal is None:
            return 1
        return watch_mod.run(journal, ids, interval)


class DbCommands:
    """The journal's schema ([database] connection)."""

    def sync(self):
        """Bring the journal's schema to the newest revision (and adopt a
        journal made before snapdriver had migrations). Run it before
        starting a new or upgraded snapdriver-api or snapdriver-agent."""
        from snapdriver.db import api as db_api
        from snapdriver.db import migration

        engine = db_api.create_engine()
        before, after = migration.upgrade(engine)
        if before == after:
            print("The journal is at revision %s, the newest." % after)
        else:
            print("The journal went from revision %s to %s."
                  % (before or 'none (empty)', after))
        return 0

    def version(self):
        """Print the journal's schema revision: 'none' when it has no
        schema, 'legacy:N' when made before migrations; exit code 0 when
        it is the newest, 1 when 'db sync' is needed, 2 when it is newer
        than this snapdriver knows."""
        from snapdriver.db import api as db_api
        from snapdriver.db import migration

        current = migration.version(db_api.create_engine())
        print(current or 'none')
        if current == migration.head():
            return 0
        if current is None or current.startswith('legacy:') \
                or current in migration.revisions():
            return 1
        return 2


#: The categories of commands, by name.
CATEGORIES = {
    'agents': AgentCommands,
    'db': DbCommands,
    'operations': OperationCommands,
}


def _actions(cls):
    return sorted((name, getattr(cls, name)) for name in vars(cls)
                  if not name.startswith('_')
                  and callable(getattr(cls, name)))


def add_command_parsers(subparsers):
    for category, cls in sorted(CATEGORIES.items()):
        parser = subparsers.add_parser(category, help=cls.__doc__)
        parser.set_defaults(command_class=cls)
        actions = parser.add_subparsers(dest='action', metavar='<action>')
        actions.required = True
        for name, fn in _actions(cls):
            action = actions.add_parser(
                name, help=(fn.__doc__ or '').split('\n\n')[0])
            action.set_defaults(action_name=name)
            for names, kwargs in getattr(fn, 'args', []):
                action.add_argument(*names, **kwargs)


category_opt = cfg.SubCommandOpt(
    'category', title='Command categories',
    help="Available categories", handler=add_command_parsers)


def run(category):
    """Run the action ``category`` (the parsed sub-command) names.

    :returns: the exit code.
    """
    fn = getattr(category.command_class(), category.action_name)
    kwargs = {name.lstrip('-').replace('-', '_'):
              getattr(category, name.lstrip('-').replace('-', '_'))
              for names, _ in getattr(fn, 'args', []) for name in names[:1]}
    return fn(**kwargs)


def main(argv=None):
    CONF.register_cli_opt(category_opt)
    service.prepare(argv)
    if not CONF.debug:
        # The commands print what they are for; the log only warns (and
        # the AMQP library not of its own chatter at a quick exit).
        import logging
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger('amqp').setLevel(logging.ERROR)
    return run(CONF.category)


if __name__ == '__main__':
    sys.exit(main())
