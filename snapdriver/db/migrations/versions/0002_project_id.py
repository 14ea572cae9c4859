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

"""The project of the caller that asked for each operation (the target of
GET's policy rule), filled from the journalled request contexts.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('operations') as batch:
        batch.add_column(sa.Column('project_id', sa.String(255)))
    operations = sa.table('operations', sa.column('id', sa.String),
                          sa.column('context', sa.JSON),
                          sa.column('project_id', sa.String))
    conn = op.get_bind()
    for operation_id, context in conn.execute(
            sa.select(operations.c.id, operations.c.context).where(
                operations.c.context.is_not(None))).fetchall():
        project_id = (context or {}).get('project_id')
        if project_id:
            conn.execute(operations.update()
                         .where(operations.c.id == operation_id)
                         .values(project_id=project_id))
