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

"""The Cinder status reporter (``[DEFAULT] status_reporter = cinder``).

Sends ``os-update_snapshot_status`` through python-cinderclient (API v3),
exactly as Cinder waits for it. Unlike the reference, which sends once with
the caller's token and swallows any failure (Cinder then waits out its full
timeout), it:

* prefers snapdriver's own service credentials (``[cinder] auth_type`` and
  friends): a caller's token can expire during a two-hour commit; the
  caller's token (with its service token, when one was sent) is the
  fallback;
* retries what can succeed later with exponential back-off and jitter, up
  to ``[cinder] report_deadline``: Cinder or Keystone unreachable (refused,
  reset, timed out, a TLS failure), a 5xx, 408 or 429 from either, and
  once a 401 with the service credentials (the token is fetched again);
* does not retry what cannot (another 4xx): Cinder's (or Keystone's)
  message is logged and recorded with the operation.
"""

from cinderclient import client as cinder_client
from cinderclient import exceptions as cinder_exc
from keystoneauth1 import access
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import plugin
from keystoneauth1 import service_token
from keystoneauth1 import token_endpoint
from oslo_log import log
import tenacity

from snapdriver.conf import cinder as cinder_conf
from snapdriver.conf import CONF
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import reporter

LOG = log.getLogger(__name__)

_RETRIABLE_CODES = (408, 429)
_PROJECT = '%(project_id)s'


class _CallerAuth(plugin.BaseAuthPlugin):
    """The caller's token, with Cinder found in the caller's catalog."""

    def __init__(self, token, catalog):
        super().__init__()
        self._token = token
        self._catalog = access.service_catalog.ServiceCatalogV2(catalog)

    def get_token(self, session, **kwargs):
        return self._token

    def get_endpoint(self, session, service_type=None, interface=None,
                     region_name=None, service_name=None, **kwargs):
        return self._catalog.url_for(service_type=service_type,
                                     interface=interface,
                                     region_name=region_name)


def _adapter_options(endpoint_override=None):
    """The ``[cinder]`` adapter options, as keystoneauth Adapter arguments.

    service_type, valid_interfaces (or interface), region_name, retries...,
    with ``endpoint_override`` as given (its project filled in).

    :raises: TypeError (keystoneauth's) for values that do not go together
    """
    options = {'endpoint_override': endpoint_override}
    if not (CONF.cinder.valid_interfaces or CONF.cinder.interface):
        options['interface'] = cinder_conf.DEFAULT_INTERFACE
    ks_loading.adapter.process_conf_options(CONF.cinder, options)
    # cinderclient speaks v3 with microversions of its own: no discovery.
    for name in cinder_conf.UNUSED_ADAPTER_OPTIONS:
        options.pop(name, None)
    return options


class TransientReportError(Exception):
    """A report failed in a way that may succeed if tried again."""


class CinderAccess:
    """Cinder's v3 API with the ``[cinder]`` session and credentials:
    snapdriver's own service credentials when there are any, else the
    caller's token (and service token)."""

    def __init__(self):
        self._session = ks_loading.load_session_from_conf_options(
            CONF, cinder_conf.GROUP)
        # Intermediate progress updates: quick or not at all.
        self._progress_session = ks_loading.load_session_from_conf_options(
            CONF, cinder_conf.GROUP, timeout=CONF.cinder.progress_timeout)
        self._service_auth = ks_loading.load_auth_from_conf_options(
            CONF, cinder_conf.GROUP)
        try:
            _adapter_options()
        except TypeError as e:
            raise exception.ConfigurationError(reason="[cinder]: %s" % e)

    def client_for(self, context):
        """A cinderclient for ``context``, or None without credentials."""
        auth = self._auth(context)
        return None if auth is None else self._client(context, auth)

    def _auth(self, context):
        if self._service_auth is not None:
            return self._service_auth
        if context is None or not context.auth_token:
            return None
        if CONF.cinder.endpoint_override:
            auth = token_endpoint.Token(self._endpoint(context, None),
                                        context.auth_token)
        else:
            auth = _CallerAuth(context.auth_token, context.service_catalog)
        if context.service_token:
            auth = service_token.ServiceTokenAuthWrapper(
                user_auth=auth,
                service_auth=token_endpoint.Token(None,
                                                  context.service_token))
        return auth

    def _endpoint(self, context, auth):
        """``[cinder] endpoint_override`` with its project filled in.

        Cinder refuses a URL whose project is not the one of the token
        (400 "Malformed request url"), so the project is the caller's when
        reporting with the caller's token and the service credentials' own
        when reporting with those. When the credentials cannot tell their
        project (``admin_token``), the segment is left out: Cinder serves
        its v3 API without a project id in the URL (microversion 3.67).
        """
        endpoint = CONF.cinder.endpoint_override
        if not endpoint or _PROJECT not in endpoint:
            return endpoint
        if auth is not None and auth is self._service_auth:
            # May authenticate: called inside the retry loop.
            project_id = auth.get_project_id(self._session)
        else:
            project_id = context.project_id if context is not None else None
        if project_id:
            return endpoint.replace(_PROJECT, project_id)
        return endpoint.replace('/' + _PROJECT, '').replace(_PROJECT, '')

    def _client(self, context, auth, session=None):
        return cinder_client.Client(
            '3', session=session or self._session, auth=auth,
            global_request_id=getattr(context, 'global_request_id', None),
            **_adapter_options(self._endpoint(context, auth)))


class CinderReporter(CinderAccess, reporter.StatusReporter):
    """Reports snapshot statuses to Cinder's v3 API."""

    def __init__(self):
        super().__init__()
        if self._service_auth is None:
            LOG.warning("[cinder] has no auth_type: status reports will use "
                        "the token of the caller that asked for each "
                        "operation, which may expire before a long merge "
                        "ends. Configure service credentials.")

    @property
    def uses_caller_token(self):
        """Only without service credentials: then the caller's token is
        the fallback, and the journal must keep it until the report is
        delivered."""
        return self._service_auth is None

    def _send(self, context, auth, snapshot_id, status, progress, tries):
        try:
            client = self._client(context, auth)
            client.volume_snapshots.update_snapshot_status(
                snapshot_id, {'status': status, 'progress': progress})
        except (ks_exc.ConnectionError, ks_exc.DiscoveryFailure) as e:
            # Cinder or Keystone refused the connection, reset it, timed
            # out or failed the TLS handshake; or Keystone's version
            # document could not be had.
            raise TransientReportError("%s: %s" % (type(e).__name__, e))
        except ks_exc.HttpError as e:
            # Keystone's answer while the service credentials got a token
            # (cinderclient turns Cinder's own errors into its exceptions).
            if self._transient(e.http_status, auth, tries):
                raise TransientReportError("Keystone answered %s: %s"
                                           % (e.http_status, e.message))
            raise
        except cinder_exc.ClientException as e:
            if self._transient(e.code, auth, tries):
                raise TransientReportError("Cinder answered %s: %s"
                                           % (e.code, e.message))
            raise

    def _transient(self, code, auth, tries):
        """Whether an HTTP error ``code`` may go away if tried again.

        A 401 with the service credentials may be a token revoked or
        expired early: it is tried once more with a new one. A caller's
        token will not come back, and a second 401 means the credentials
        themselves are refused.
        """
        if code >= 500 or code in _RETRIABLE_CODES:
            return True
        if code == 401 and auth is self._service_auth:
            tries['unauthorized'] += 1
            if tries['unauthorized'] == 1:
                auth.invalidate()
                return True
        return False

    def report(self, context, snapshot_id, status,
               progress=reporter.PROGRESS, on_retry=None):
        auth = self._auth(context)
        if auth is None:
            LOG.error("Cannot report status %s of snapshot %s: no service "
                      "credentials in [cinder] and no caller token",
                      status, snapshot_id)
            return reporter.Delivery(
                state=objects.GIVEN_UP,
                detail="no credentials to reach Cinder: configure [cinder] "
                "auth_type and its options")
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientReportError),
            wait=tenacity.wait_exponential_jitter(
                initial=CONF.cinder.report_initial_backoff,
                max=CONF.cinder.report_max_backoff),
            stop=tenacity.stop_after_delay(CONF.cinder.report_deadline),
            before_sleep=self._log_retry(snapshot_id, status, on_retry),
            reraise=True)
        try:
            retrying(self._send, context, auth, snapshot_id, status,
                     progress, {'unauthorized': 0})
        except TransientReportError as e:
            attempts = retrying.statistics.get('attempt_number', 1)
            LOG.error("Gave up reporting status %s of snapshot %s to Cinder "
                      "after %d attempt(s) over %d s: %s", status,
                      snapshot_id, attempts, CONF.cinder.report_deadline, e)
            return reporter.Delivery(
                state=objects.GIVEN_UP,
                detail="gave up after %d attempt(s): %s" % (attempts, e),
                attempts=attempts)
        except (cinder_exc.ClientException, ks_exc.EndpointNotFound,
                ks_exc.HttpError) as e:
            # Cinder or Keystone said no, or the catalog has no Cinder:
            # trying again changes nothing.
            attempts = retrying.statistics.get('attempt_number', 1)
            if isinstance(e, cinder_exc.ClientException):
                who, reason = 'Cinder', "%s %s" % (e.code, e.message)
            elif isinstance(e, ks_exc.HttpError):
                who, reason = 'Keystone', "%s %s" % (e.http_status,
                                                     e.message)
            else:
                who, reason = 'Cinder', "no Cinder endpoint: %s" % e
            LOG.error("%s refused status %s of snapshot %s: %s", who,
                      status, snapshot_id, reason)
            return reporter.Delivery(
                state=objects.GIVEN_UP,
                detail="%s refused it: %s" % (who, reason),
                attempts=attempts)
        attempts = retrying.statistics.get('attempt_number', 1)
        LOG.info("Reported status %s (%s) of snapshot %s to Cinder "
                 "(attempt %d)", status, progress, snapshot_id, attempts)
        return reporter.Delivery(
            state=objects.DELIVERED, detail="accepted by Cinder (attempt %d)"
            % attempts, attempts=attempts)

    def report_progress(self, context, snapshot_id, status, progress):
        """One try, within ``[cinder] progress_timeout``; any failure
        drops the update (the next one, or the final report, supersedes
        it)."""
        auth = self._auth(context)
        if auth is None:
            return reporter.Delivery(state=objects.GIVEN_UP,
                                     detail="no credentials to reach Cinder")
        try:
            client = self._client(context, auth, self._progress_session)
            client.volume_snapshots.update_snapshot_status(
                snapshot_id, {'status': status, 'progress': progress})
        except cinder_exc.ClientException as e:
            detail = "Cinder answered %s: %s" % (e.code, e.message)
        except Exception as e:
            detail = "%s: %s" % (type(e).__name__, e)
        else:
            return reporter.Delivery(state=objects.DELIVERED,
                                     detail="accepted by Cinder")
        LOG.warning("Intermediate status %s (%s) of snapshot %s not "
                    "delivered, dropped: %s", status, progress, snapshot_id,
                    detail)
        return reporter.Delivery(state=objects.GIVEN_UP, detail=detail)

    @staticmethod
    def _log_retry(snapshot_id, status, on_retry):
        def log_it(retry_state):
            error = retry_state.outcome.exception()
            LOG.warning("Reporting status %s of snapshot %s failed "
                        "(attempt %d): %s; retrying in %.1f s", status,
                        snapshot_id, retry_state.attempt_number, error,
                        retry_state.next_action.sleep)
            if on_retry is not None:
                on_retry(retry_state.attempt_number, str(error))
        return log_it
