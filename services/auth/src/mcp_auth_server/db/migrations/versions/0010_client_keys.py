"""client_keys: the public keys of private_key_jwt clients (RFC 7523 §2.2)

RFC 7591 §2 `jwks` (a JWK Set, inline) or `jwks_uri` (where the client publishes it); at most one of
the two. Clients that authenticate with a secret, or none, have neither.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 20:15:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jwks', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('jwks_uri', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('workload_issuer', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('workload_subject', sa.String(length=512), nullable=True))
        batch_op.create_unique_constraint(
            'uq_clients_workload_issuer', ['workload_issuer', 'workload_subject']
        )


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_constraint('uq_clients_workload_issuer', type_='unique')
        batch_op.drop_column('workload_subject')
        batch_op.drop_column('workload_issuer')
        batch_op.drop_column('jwks_uri')
        batch_op.drop_column('jwks')
