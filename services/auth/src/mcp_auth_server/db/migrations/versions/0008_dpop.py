"""dpop: per-resource DPoP policy, codes bound to a key (dpop_jkt), refresh tokens bound to a key

RFC 9449: `resources.dpop` is `required` or `allowed` (a CLI-added resource's policy); an
authorization request and the code it yields carry the `dpop_jkt` the client named (§10); a grant
carries the thumbprint of the key its tokens are bound to (§5: a public client's refresh tokens).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop', sa.String(length=10), server_default='allowed', nullable=False))
    with op.batch_alter_table('authorization_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ('grants', 'authorization_codes', 'authorization_requests'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('dpop_jkt')
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.drop_column('dpop')
