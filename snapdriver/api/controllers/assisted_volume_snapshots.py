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

"""The os-assisted-volume-snapshots resource.

POST on the collection validates the body and asks the operations API to
accept a create; DELETE on an item parses ``delete_info`` from the query
string and asks for a delete. Each handler builds its typed request
(:mod:`snapdriver.objects`) once. Both answer once the operation is
validated and journalled; the outcome reaches Cinder through the status
reporter.
GET on an item (snapdriver's addition) shows what became of the operations
of a snapshot id. Every other method is a 405 naming the allowed ones.
"""

import json

import pecan
import webob

from snapdriver.api import microversion
from snapdriver.api.schemas import assisted_volume_snapshots as schemas
from snapdriver.api import validation
from snapdriver import exception
from snapdriver import objects
from snapdriver import policy

_JSON_TYPES = ('application/json', '')


class UnsupportedMediaType(exception.SnapdriverException):
    code = 415
    msg_fmt = ("Unsupported Content-Type %(content_type)r: send "
               "application/json.")


def _loads(text, field):
    """json.loads with the failures a caller can cause turned into 400s
    that quote the value."""
    try:
        return json.loads(text)
    except RecursionError:
        raise exception.InvalidInput(
            field=field, reason="it is nested too deeply")
    except ValueError as e:
        value = text if len(text) <= 120 else text[:117] + '...'
        raise exception.InvalidInput(
            field=field, reason="value %r is not JSON (%s)" % (value, e))


def _parse_body(request):
    content_type = (request.content_type or '').lower()
    if content_type not in _JSON_TYPES:
        raise UnsupportedMediaType(content_type=request.content_type)
    try:
        text = request.body.decode('utf-8')
    except UnicodeDecodeError:
        raise exception.InvalidInput(field='(body)',
                                     reason="it is not valid UTF-8")
    return _loads(text, '(body)')


def _parse_delete_query(request):
    # The query string is known to be UTF-8 (RequestLimits checked it).
    params = request.GET
    values = params.getall('delete_info')
    if request.version >= microversion.STRICT_QUERY_VERSION:
        validation.validate(schemas.delete_query_v275,
                            dict.fromkeys(params.keys(), ''), 'query string')
    if not values:
        raise exception.InvalidInput(
            field='delete_info', reason="it is required in the query string")
    if len(values) > 1:
        raise exception.InvalidInput(
            field='delete_info', reason="it was given %d times; give it once"
            % len(values))
    delete_info = _loads(values[0], 'delete_info')
    if not isinstance(delete_info, dict):
        raise exception.InvalidInput(
            field='delete_info', reason="value %r is not a JSON object"
            % values[0][:120])
    validation.validate(schemas.delete_info, delete_info, 'delete_info')
    return delete_info


def _not_allowed(allowed):
    pecan.abort(405, headers={'Allow': allowed})


def check_context(project_id, rule):
    """The caller's context, once the project id in the URL (if any) is
    the token's and ``rule`` allows the call."""
    context = pecan.request.context
    if project_id and project_id != context.project_id:
        raise exception.InvalidProjectId(url=project_id,
                                         token=context.project_id)
    policy.authorize(context, rule)
    return context


def _check_identifier(field, value):
    validation.check_identifier(field, value, schemas.IDENTIFIER_RULE,
                                schemas.IDENTIFIER_PATTERN)


class SnapshotController(object):
    """.../os-assisted-volume-snapshots/{snapshot_id}"""

    def __init__(self, project_id, snapshot_id):
        self.project_id = project_id
        self.snapshot_id = snapshot_id

    def _check_id(self):
        _check_identifier('snapshot_id (path)', self.snapshot_id)

    @pecan.expose(generic=True, content_type='application/json')
    def index(self, **kwargs):
        _not_allowed('DELETE, GET')

    @index.when(method='GET', template='json')
    def get(self, **kwargs):
        context = check_context(self.project_id, policy.SHOW)
        self._check_id()
        # Then each operation with its own project as the target, so that
        # a policy can scope GET per project.
        operations = [
            operation for operation in
            pecan.request.operations.query(context, self.snapshot_id)
            if policy.check(context, policy.SHOW,
                            {'project_id': operation.project_id})]
        if not operations:
            raise exception.OperationNotFound(snapshot_id=self.snapshot_id)
        return {'operations': [operation.to_dict()
                               for operation in operations]}

    @index.when(method='DELETE', content_type='application/json')
    def delete(self, **kwargs):
        context = check_context(self.project_id, policy.DELETE)
        self._check_id()
        delete_info = _parse_delete_query(pecan.request)
        _check_identifier('delete_info.volume_id', delete_info['volume_id'])
        pecan.request.operations.accept(context, objects.DeleteRequest(
            volume_id=delete_info['volume_id'],
            snapshot_id=self.snapshot_id,
            file_to_merge=delete_info.get('file_to_merge'),
            merge_target_file=delete_info.get('merge_target_file')))
        return webob.Response(status=204)


class AssistedVolumeSnapshotsController(object):
    """/v2.1[/{project_id}]/os-assisted-volume-snapshots"""

    def __init__(self, project_id=None):
        self.project_id = project_id

    @pecan.expose(generic=True, content_type='application/json')
    def index(self, **kwargs):
        _not_allowed('POST')

    @index.when(method='POST', template='json')
    def post(self, **kwargs):
        context = check_context(self.project_id, policy.CREATE)
        body = _parse_body(pecan.request)
        validation.validate(schemas.create, body)
        snapshot = body['snapshot']
        create_info = snapshot['create_info']
        _check_identifier('snapshot.volume_id', snapshot['volume_id'])
        _check_identifier('snapshot.create_info.snapshot_id',
                          create_info['snapshot_id'])
        pecan.request.operations.accept(context, objects.CreateRequest(
            volume_id=snapshot['volume_id'],
            snapshot_id=create_info['snapshot_id'],
            new_file=create_info['new_file']))
        return {'snapshot': {'id': create_info.get('id'),
                             'volumeId': snapshot['volume_id']}}

    @pecan.expose()
    def _lookup(self, snapshot_id, *remainder):
        if remainder:
            pecan.abort(404)
        return SnapshotController(self.project_id, snapshot_id), remainder
