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

"""/v2.1[/{project_id}]/os-snapdriver-agents: the agents of the region.

snapdriver's own resource, for operators: each agent's host, whether it
is up, when it last reported, its driver and version, and how many volumes
its driver sees. A single-process snapdriver lists itself.
"""

import pecan

from snapdriver.api.controllers import assisted_volume_snapshots as avs
from snapdriver import policy


class AgentsController(object):

    def __init__(self, project_id=None):
        self.project_id = project_id

    @pecan.expose(generic=True, content_type='application/json')
    def index(self, **kwargs):
        pecan.abort(405, headers={'Allow': 'GET'})

    @index.when(method='GET', template='json')
    def get(self, **kwargs):
        context = avs.check_context(self.project_id, policy.AGENTS)
        return {'agents': pecan.request.operations.agents(context)}
