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

"""The journal's tables, as the newest migration leaves them.

The queries of :mod:`snapdriver.operations.journal` use these; the
migrations in ``migrations/versions`` make them, and a test checks that
both agree on every database.
"""

import sqlalchemy as sa

from snapdriver.db import types

metadata = sa.MetaData()

operations = sa.Table(
    'operations', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('seq', sa.Integer, nullable=False, index=True),
    sa.Column('snapshot_id', sa.String(255), nullable=False, index=True),
    sa.Column('volume_id', sa.String(255), nullable=False, index=True),
    sa.Column('kind', sa.String(16), nullable=False),
    sa.Column('request', sa.JSON, nullable=False),
    sa.Column('context', sa.JSON),
    sa.Column('guest', sa.String(255)),
    sa.Column('disk', sa.String(64)),
    sa.Column('state', sa.String(32), nullable=False, index=True),
    sa.Column('error', sa.Text),
    sa.Column('chain_before', sa.JSON),
    sa.Column('expected_chain', sa.JSON),
    sa.Column('chain_after', sa.JSON),
    sa.Column('status', sa.String(32)),
    sa.Column('delivery', sa.String(16)),
    sa.Column('delivery_detail', sa.Text),
    sa.Column('report_attempts', sa.Integer, nullable=False, default=0),
    sa.Column('created_at', types.MOMENT, nullable=False),
    sa.Column('started_at', types.MOMENT),
    sa.Column('finished_at', types.MOMENT),
    sa.Column('reported_at', types.MOMENT),
    # 0002
    sa.Column('project_id', sa.String(255)),
    # 0003: objects.MergeProgress.to_dict()
    sa.Column('progress', sa.JSON),
)

COLUMNS = [c.name for c in operations.columns]
