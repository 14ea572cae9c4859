"""The os-assisted-volume-snapshots resource.

POST validates the body and asks the operations API to accept a create;
DELETE parses ``delete_info`` from the query string and asks for a delete.
Both answer once the operation is validated and queued; the outcome reaches
Cinder through the status reporter. GET (snapdriver's addition) shows what
became of the operations of a snapshot id.
"""

import json

import pecan
from pecan import rest

from snapdriver.api import microversion
from snapdriver.api import middleware
from snapdriver.api.schemas import assisted_volume_snapshots as schemas
from snapdriver.api import validation
from snapdriver import exception
from snapdriver import policy

def _parse_delete_query(request):
    try:
        params = request.GET
        values = params.getall('delete_info')
        names = set(params.keys())
    except UnicodeDecodeError:
        raise exception.Invalid("The query string is not valid UTF-8.")
    if request.version >= microversion.STRICT_QUERY_VERSION:
        validation.validate(schemas.delete_query_v275,
                            {name: '' for name in names}, 'query string')
    if not values:
        raise exception.InvalidInput(
            field='delete_info', reason="it is required in the query string")
    if len(values) > 1:
        raise exception.InvalidInput(
            field='delete_info', reason="it was given %d times; give it once"
            % len(values))
    try:
        delete_info = json.loads(values[0])
    except ValueError as e:
        raise exception.InvalidInput(
            field='delete_info', reason="value %r is not JSON (%s)"
            % (values[0][:120], e))
    if not isinstance(delete_info, dict):
        raise exception.InvalidInput(
            field='delete_info', reason="value %r is not a JSON object"
            % values[0][:120])
    validation.validate(schemas.delete_info, delete_info, 'delete_info')
    return delete_info


class AssistedVolumeSnapshotsController(rest.RestController):
    """/v2.1[/{project_id}]/os-assisted-volume-snapshots"""

    def __init__(self, project_id=None):
        super().__init__()
        self.project_id = project_id

    def _context(self, action):
        context = pecan.request.context
        if self.project_id and self.project_id != context.project_id:
            raise exception.InvalidProjectId(url=self.project_id,
                                             token=context.project_id)
        policy.authorize(context, action)
        return context

    @pecan.expose('json')
    def post(self, **kwargs):
        context = self._context(policy.CREATE)
        body = pecan.request.environ.get(middleware.JSON_ENV)
        validation.validate(schemas.create, body)
        snapshot = body['snapshot']
        create_info = snapshot['create_info']
        pecan.request.operations.accept(context, {
            'kind': 'create',
            'volume_id': snapshot['volume_id'],
            'snapshot_id': create_info['snapshot_id'],
            'new_file': create_info['new_file'],
        })
        return {'snapshot': {'id': create_info.get('id'),
                             'volumeId': snapshot['volume_id']}}

    @pecan.expose()
    def delete(self, snapshot_id, **kwargs):
        context = self._context(policy.DELETE)
        delete_info = _parse_delete_query(pecan.request)
        pecan.request.operations.accept(context, {
            'kind': 'delete',
            'volume_id': delete_info['volume_id'],
            'snapshot_id': snapshot_id,
            'file_to_merge': delete_info.get('file_to_merge'),
            'merge_target_file': delete_info.get('merge_target_file'),
        })
        pecan.response.status = 204
        return ''

    @pecan.expose('json')
    def get_one(self, snapshot_id, **kwargs):
        context = self._context(policy.SHOW)
        return {'operations': pecan.request.operations.query(context,
                                                             snapshot_id)}
