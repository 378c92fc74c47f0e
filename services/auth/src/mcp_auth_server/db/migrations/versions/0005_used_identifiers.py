"""used identifiers: single-use jti values (DPoP proofs, assertions) shared by every replica

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 17:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('used_identifiers',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_used_identifiers'))
    )
    with op.batch_alter_table('used_identifiers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_identifiers_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('used_identifiers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_identifiers_expires_at'))

    op.drop_table('used_identifiers')
