"""grant generation: the newest refresh-token generation of each family, on the grant row

Refresh decides "is this the immediately previous token?" under the grant's row lock; reading
the newest generation from the locked row keeps that decision to one statement and correct
under concurrency (a subquery would see the snapshot from before the lock wait).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('generation', sa.Integer(), server_default='0', nullable=False))
    op.execute(
        "UPDATE grants SET generation = COALESCE("
        "(SELECT max(refresh_tokens.generation) FROM refresh_tokens WHERE refresh_tokens.grant_id = grants.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_column('generation')
