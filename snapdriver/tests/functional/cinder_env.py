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

"""A real Cinder for interop tests: cinder-api, its database, its clients.

Cinder lives in a virtualenv of its own (``tools/setup-cinder-venv.sh``),
named by ``$SNAPDRIVER_TEST_CINDER_VENV``; tests that need it skip when the
variable is unset.

:class:`CinderApiFixture` runs ``cinder-api`` from that venv with no
Keystone and no message queue: ``auth_strategy = noauth`` (tokens
``<user>:<project>``, every caller an admin), SQLite, the fake transport.
It can be stopped and started again on the same port and database, to
take Cinder away while snapdriver has a status to report.

:class:`CinderSide` is the cinder-volume end: it runs Cinder's own code
(the compute client, the remotefs driver's online snapshot methods, the DB
API) in that venv through the script ``cinder_side.py``, with ``[nova]``
pointing at snapdriver.
"""

import json
import os
import select
import signal
import subprocess
import tempfile

import fixtures

from snapdriver.tests.functional import server

VENV_ENV = 'SNAPDRIVER_TEST_CINDER_VENV'
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SIDE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'cinder_side.py')


class CinderEnvError(Exception):
    """Cinder did not start, stop or answer as it should."""


def cinder_venv():
    """The Cinder venv from the environment.

    :returns: its path, or None when ``$SNAPDRIVER_TEST_CINDER_VENV`` is
        unset (the caller skips).
    :raises: CinderEnvError when it is set but holds no Cinder: a broken
        setup must fail, not skip.
    """
    venv = os.environ.get(VENV_ENV)
    if not venv:
        return None
    missing = [name for name in ('python', 'cinder-api', 'cinder-manage')
               if not os.access(os.path.join(venv, 'bin', name), os.X_OK)]
    if missing:
        raise CinderEnvError(
            "%s=%s has no %s; create it with tools/setup-cinder-venv.sh"
            % (VENV_ENV, venv, ', '.join('bin/' + m for m in missing)))
    return venv


SKIP_REASON = ("Cinder interop tests need a virtualenv with Cinder: run "
               "tools/setup-cinder-venv.sh and set %s to the path it prints"
               % VENV_ENV)


class CinderApiFixture(fixtures.Fixture):
    """cinder-api on 127.0.0.1 with a SQLite database in a temporary dir.

    :param venv: the Cinder virtualenv.
    """

    def __init__(self, venv):
        super().__init__()
        self.venv = venv
        self.process = None
        self.port = None

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def endpoint(self, with_project=True):
        """The v3 endpoint, for ``[cinder] endpoint_override``."""
        return self.url + ('/v3/%(project_id)s' if with_project else '/v3')

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def log_text(self):
        """cinder-manage's and cinder-api's output so far."""
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def side_log_text(self):
        """The log of Cinder's code run by :class:`CinderSide`."""
        try:
            with open(self.side_log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def side_worker(self):
        """The process that runs :class:`CinderSide` commands, started on
        first use and shared by every side of this Cinder."""
        if self._side_worker is None or not self._side_worker.alive:
            self._side_worker = _SideWorker(self.venv, self.dir,
                                            self.side_log_path)
        return self._side_worker

    def _bin(self, name):
        return os.path.join(self.venv, 'bin', name)

    def _setUp(self):
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.port = server.free_port()
        self.log_path = os.path.join(self.dir, 'cinder.log')
        self.side_log_path = os.path.join(self.dir, 'cinder-side.log')
        self._side_worker = None
        self.db_path = os.path.join(self.dir, 'cinder.sqlite')
        self.config_path = os.path.join(self.dir, 'cinder.conf')
        paste = os.path.join(self.venv, 'etc', 'cinder', 'api-paste.ini')
        if not os.path.exists(paste):
            raise CinderEnvError("%s is missing: is %s a Cinder venv?"
                                 % (paste, self.venv))
        server.write_config(self.config_path, {
            'DEFAULT': {
                'auth_strategy': 'noauth',
                'api_paste_config': paste,
                'transport_url': 'fake:/',
                'state_path': self.dir,
                'osapi_volume_listen': '127.0.0.1',
                'osapi_volume_listen_port': self.port,
                'osapi_volume_workers': 1,
                'graceful_shutdown_timeout': 5,
                'debug': False,
            },
            'database': {'connection': 'sqlite:///' + self.db_path},
            'oslo_concurrency': {
                'lock_path': os.path.join(self.dir, 'locks')},
        })
        self._run_to_end([self._bin('cinder-manage'), '--config-file',
                          self.config_path, 'db', 'sync'], 'db sync')
        self.addCleanup(self._cleanup)
        self.start()

    def _run_to_end(self, argv, what):
        with open(self.log_path, 'ab') as log:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, cwd=self.dir,
                                  timeout=120)
        if done.returncode != 0:
            raise CinderEnvError("cinder-manage %s exited with %s:\n%s"
                                 % (what, done.returncode, self.log_text()))

    def start(self):
        """Start cinder-api (again) on the same port and database, and
        wait until it answers."""
        if self.running:
            raise CinderEnvError("cinder-api is already running")
        with open(self.log_path, 'ab') as log:
            log.write(b'\n=== snapdriver tests: starting cinder-api ===\n')
            log.flush()
            # Its own process group: cinder-api forks a worker, and both
            # must go when it is stopped.
            self.process = subprocess.Popen(
                [self._bin('cinder-api'), '--config-file', self.config_path],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=self.dir,
                start_new_session=True)
        state = server.wait_healthy(self.process, self.port, START_TIMEOUT)
        if state == 'healthy':
            return
        if state == 'exited':
            raise CinderEnvError("cinder-api exited with %s at start-up:"
                                 "\n%s" % (self.process.returncode,
                                           self.log_text()))
        self._kill_group()
        raise CinderEnvError("cinder-api did not answer on port %d within "
                             "%ss:\n%s" % (self.port, START_TIMEOUT,
                                           self.log_text()))

    def stop(self):
        """Stop cinder-api (SIGTERM, as an operator would); the database
        stays. Returns once nothing listens on the port any more."""
        if not self.running:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_group()
            raise CinderEnvError("cinder-api ignored SIGTERM for %ss:\n%s"
                                 % (STOP_TIMEOUT, self.log_text()))
        # The worker may outlive the parent by a moment.
        self._kill_group()

    def _kill_group(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(STOP_TIMEOUT)

    def _cleanup(self):
        if self._side_worker is not None:
            self._side_worker.close()
            self._side_worker = None
        if self.process is not None:
            try:
                self.stop()
            finally:
                self._kill_group()

    def side(self, nova_endpoint, nova_token):
        """A :class:`CinderSide` (a fixture) on this Cinder's database,
        with ``[nova]`` pointing at ``nova_endpoint``."""
        return CinderSide(self, nova_endpoint, nova_token)


class _SideWorker:
    """One ``cinder_side.py --serve`` process: Cinder imported once."""

    def __init__(self, venv, cwd, log_path):
        with open(log_path, 'ab') as log:
            self.process = subprocess.Popen(
                [os.path.join(venv, 'bin', 'python'), SIDE_SCRIPT,
                 '--serve'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=log, cwd=cwd)

    def ask(self, request, timeout):
        """Send one request; :returns: (exit status or None, answer line).

        :raises: CinderEnvError when no answer comes within ``timeout``
            (the process is killed then).
        """
        self.process.stdin.write(json.dumps(request).encode('utf-8')
                                 + b'\n')
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.close(kill=True)
            raise CinderEnvError("cinder_side %s did not answer within %ss"
                                 % (request['command'], timeout))
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
        return self.process.returncode, line

    @property
    def alive(self):
        return self.process.poll() is None

    def close(self, kill=False):
        if kill and self.alive:
            self.process.kill()
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


class CinderSide(fixtures.Fixture):
    """Cinder's volume-service end: Cinder's own code in the Cinder venv.

    ``[nova] auth_type = admin_token`` with ``endpoint`` and ``token``:
    Cinder's service credentials for the compute API, a fixed token with
    the endpoint given directly (no Keystone catalog).

    Commands run in the Cinder fixture's ``cinder_side.py --serve``
    process (importing Cinder takes a second or more), which reads this
    side's configuration files with each request; :meth:`background` runs
    one in a process of its own.

    :param cinder: the :class:`CinderApiFixture` whose database is used.
    :param nova_endpoint: snapdriver's compute endpoint (``.../v2.1``).
    :param nova_token: the token Cinder sends (``<user>:<project>`` for a
        noauth snapdriver).
    """

    def __init__(self, cinder, nova_endpoint, nova_token):
        super().__init__()
        self.cinder = cinder
        self.nova_endpoint = nova_endpoint
        self.nova_token = nova_token

    def _setUp(self):
        fd, self.config_path = tempfile.mkstemp(
            prefix='nova-client-', suffix='.conf', dir=self.cinder.dir)
        os.close(fd)
        server.write_config(self.config_path, {
            'DEFAULT': {'use_stderr': True, 'debug': True},
            'nova': {'auth_type': 'admin_token',
                     'endpoint': self.nova_endpoint,
                     'token': self.nova_token},
        })

    @property
    def config_files(self):
        return [self.cinder.config_path, self.config_path]

    def log_text(self):
        """The log of Cinder's code run by the tests (all sides)."""
        return self.cinder.side_log_text()

    def call(self, command, args, timeout=60):
        """Run one command of ``cinder_side.py`` with ``args`` (a dict).

        :returns: the parsed answer: ``{"ok": True, "result": ...}`` or
            ``{"ok": False, "error": {"type", "module", "message"}}``.
        :raises: CinderEnvError when the script crashed or timed out.
        """
        try:
            returncode, line = self.cinder.side_worker().ask(
                {'config_files': self.config_files, 'command': command,
                 'args': args}, timeout)
        except CinderEnvError as e:
            raise CinderEnvError("%s\n%s" % (e, self.log_text()[-5000:]))
        return self._answer(command, returncode, line)

    def _answer(self, command, returncode, out):
        try:
            answer = json.loads(out.decode('utf-8'))
        except ValueError:
            answer = None
        if returncode or not isinstance(answer, dict):
            raise CinderEnvError("cinder_side %s: exit status %s, answer "
                                 "%r\n%s" % (command, returncode, out,
                                             self.log_text()[-5000:]))
        return answer

    def must(self, command, args, timeout=60):
        """:meth:`call`, and the result; Cinder's code must not raise."""
        answer = self.call(command, args, timeout=timeout)
        if not answer['ok']:
            raise CinderEnvError("cinder_side %s raised %s: %s\n%s"
                                 % (command, answer['error']['type'],
                                    answer['error']['message'],
                                    self.log_text()[-5000:]))
        return answer['result']

    def background(self, command, args):
        """Start a command in a process of its own and return at once (a
        remotefs wait that spans a Cinder outage).

        :returns: a :class:`BackgroundCall`.
        """
        request = json.dumps({'config_files': self.config_files,
                              'command': command, 'args': args})
        with open(self.cinder.side_log_path, 'ab') as log:
            process = subprocess.Popen(
                [os.path.join(self.cinder.venv, 'bin', 'python'),
                 SIDE_SCRIPT, request], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=log, cwd=self.cinder.dir)
        return BackgroundCall(self, command, process)

    # Cinder's database.

    def seed(self, volume_id, project_id, user_id, instance_uuid,
             snapshots=None, attachments=None):
        """An in-use volume attached to ``instance_uuid``, and snapshots
        given as ``{snapshot_id: (status, progress)}``.

        :param attachments: instead of the one attachment (host
            ``compute-1``), ``[(host_name, instance_uuid), ...]``: the
            host names Cinder records (None: an attachment without one);
            an empty list leaves the volume detached.
        :returns: ``{"volume": {"status", "attach_status"}, "snapshots":
            {id: {"status", "progress", "updated_at"}}}``.
        """
        args = {
            'volume_id': volume_id, 'project_id': project_id,
            'user_id': user_id, 'instance_uuid': instance_uuid,
            'snapshots': [{'id': snapshot_id, 'status': status,
                           'progress': progress}
                          for snapshot_id, (status, progress)
                          in (snapshots or {}).items()]}
        if attachments is not None:
            args['attachments'] = [
                {'host_name': host_name, 'instance_uuid': instance}
                for host_name, instance in attachments]
        return self.must('seed', args)

    def update_snapshot(self, snapshot_id, status, progress):
        return self.must('update_snapshot', {
            'snapshot_id': snapshot_id, 'status': status,
            'progress': progress})

    def move_attachments(self, volume_id, host_name):
        """Every attachment of the volume now names ``host_name`` (a live
        migration is over). :returns: how many were moved."""
        return self.must('move_attachments', {
            'volume_id': volume_id, 'host_name': host_name})['moved']

    def snapshot(self, snapshot_id):
        """``{"status", "progress", "updated_at"}`` from Cinder's DB."""
        return self.must('get_snapshot', {'snapshot_id': snapshot_id})

    def wait_snapshot(self, snapshot_id, status, progress, timeout=30):
        """Poll Cinder's DB until the snapshot shows ``status`` and
        ``progress``.

        :returns: the last state seen, with ``matched``, ``waited`` and
            ``seen_at`` (epoch seconds).
        """
        return self.must('wait_snapshot', {
            'snapshot_id': snapshot_id, 'status': status,
            'progress': progress, 'timeout': timeout}, timeout=timeout + 30)

    # Cinder's compute client and remotefs driver.

    def nova_create(self, volume_id, create_info, project_id=None):
        """``cinder.compute.nova.API().create_volume_snapshot``."""
        return self.call('nova_create', {
            'volume_id': volume_id, 'create_info': create_info,
            'project_id': project_id})

    def nova_delete(self, snapshot_id, delete_info, project_id=None):
        """``cinder.compute.nova.API().delete_volume_snapshot``."""
        return self.call('nova_delete', {
            'snapshot_id': snapshot_id, 'delete_info': delete_info,
            'project_id': project_id})

    def remotefs_create(self, snapshot_id, backing_filename, new_snap_path,
                        project_id=None, timeout=30):
        """The remotefs driver's ``_create_snapshot_online``: returns
        (``ok`` true) only once Cinder's DB shows creating + 90%."""
        return self.call('remotefs_create', {
            'snapshot_id': snapshot_id, 'backing_filename': backing_filename,
            'new_snap_path': new_snap_path, 'project_id': project_id},
            timeout=timeout)

    def remotefs_delete(self, snapshot_id, delete_info, project_id=None,
                        timeout=30):
        """The remotefs driver's ``_nova_assisted_vol_snap_delete``:
        returns only once Cinder's DB shows deleting + 90%."""
        return self.call('remotefs_delete', {
            'snapshot_id': snapshot_id, 'delete_info': delete_info,
            'project_id': project_id}, timeout=timeout)


class BackgroundCall:
    """A ``cinder_side.py`` command running in the background."""

    def __init__(self, side, command, process):
        self.side = side
        self.command = command
        self.process = process

    def done(self):
        return self.process.poll() is not None

    def result(self, timeout):
        """Wait for the answer (as :meth:`CinderSide.call` returns it)."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CinderEnvError("cinder_side %s did not end within %ss\n%s"
                                 % (self.command, timeout,
                                    self.side.log_text()[-5000:]))
        return self.side._answer(self.command, self.process.returncode, out)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
