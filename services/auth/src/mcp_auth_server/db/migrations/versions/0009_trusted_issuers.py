"""trusted_issuers: token issuers added with `mcp-auth issuers add` (ID-JAG IdPs, workload issuers)

Enterprise identity providers whose ID-JAGs and workload issuers whose tokens the token endpoint
accepts as JWT authorization grants (RFC 7523 §2.1), merged with AUTH_TRUSTED_ISSUERS. Single use
of their `jti`s lives in the existing replay cache (`used_identifiers` or Redis), so no table here.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'trusted_issuers',
        sa.Column('issuer', sa.String(length=2048), nullable=False),
        sa.Column('config', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('issuer', name=op.f('pk_trusted_issuers')),
    )


def downgrade() -> None:
    op.drop_table('trusted_issuers')
