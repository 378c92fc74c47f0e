"""account sign-ins: upstream sign-in for the user's connected-applications page

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_sign_ins',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('browser_binding_hash', sa.String(length=64), nullable=False),
    sa.Column('upstream_secrets_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_account_sign_ins'))
    )
    with op.batch_alter_table('account_sign_ins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_sign_ins_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('account_sign_ins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_sign_ins_expires_at'))

    op.drop_table('account_sign_ins')
