"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 14:37:32.309758
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('client_id', sa.String(length=512), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_event'), ['event'], unique=False)

    op.create_table('clients',
    sa.Column('client_id', sa.String(length=512), nullable=False),
    sa.Column('client_secret_hash', sa.String(length=64), nullable=True),
    sa.Column('client_secret_expires_at', sa.BigInteger(), nullable=False),
    sa.Column('client_name', sa.String(length=200), nullable=True),
    sa.Column('redirect_uris', sa.JSON(), nullable=False),
    sa.Column('grant_types', sa.JSON(), nullable=False),
    sa.Column('token_endpoint_auth_method', sa.String(length=40), nullable=False),
    sa.Column('application_type', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('allowed_resources', sa.JSON(), nullable=False),
    sa.Column('allowed_scopes', sa.JSON(), nullable=False),
    sa.Column('served_resource', sa.String(length=2048), nullable=True),
    sa.Column('metadata_document', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('last_used_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_clients'))
    )
    op.create_table('resources',
    sa.Column('resource', sa.String(length=2048), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('default_scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('resource', name=op.f('pk_resources'))
    )
    op.create_table('revoked_access_tokens',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_revoked_access_tokens'))
    )
    with op.batch_alter_table('revoked_access_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revoked_access_tokens_expires_at'), ['expires_at'], unique=False)

    op.create_table('signing_keys',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('algorithm', sa.String(length=10), nullable=False),
    sa.Column('private_key_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('public_jwk', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('activates_at', sa.BigInteger(), nullable=False),
    sa.Column('retires_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_signing_keys'))
    )
    op.create_table('users',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('login', sa.String(length=200), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('avatar_url', sa.String(length=2048), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('last_login_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users'))
    )
    op.create_table('authorization_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=512), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('resource', sa.String(length=2048), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('auth_time', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('redeemed_at', sa.BigInteger(), nullable=True),
    sa.Column('grant_id', sa.String(length=36), nullable=True),
    sa.Column('access_token_jti', sa.String(length=64), nullable=True),
    sa.Column('access_token_expires_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_authorization_codes_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_authorization_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_authorization_codes'))
    )
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_codes_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_codes_expires_at'), ['expires_at'], unique=False)

    op.create_table('authorization_requests',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=512), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('client_state', sa.String(length=2048), nullable=True),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('resource', sa.String(length=2048), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('browser_binding_hash', sa.String(length=64), nullable=False),
    sa.Column('upstream_state_hash', sa.String(length=64), nullable=True),
    sa.Column('upstream_secrets_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_authorization_requests_client_id_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_authorization_requests')),
    sa.UniqueConstraint('upstream_state_hash', name=op.f('uq_authorization_requests_upstream_state_hash'))
    )
    with op.batch_alter_table('authorization_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_requests_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_requests_expires_at'), ['expires_at'], unique=False)

    op.create_table('browser_sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('last_seen_at', sa.BigInteger(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_browser_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_browser_sessions'))
    )
    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_browser_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_browser_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('consents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('client_id', sa.String(length=512), nullable=False),
    sa.Column('resource', sa.String(length=2048), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_consents_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_consents_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents')),
    sa.UniqueConstraint('user_id', 'client_id', 'resource', name=op.f('uq_consents_user_id'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consents_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consents_expires_at'), ['expires_at'], unique=False)

    op.create_table('grants',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('client_id', sa.String(length=512), nullable=False),
    sa.Column('resource', sa.String(length=2048), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('auth_time', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('last_used_at', sa.BigInteger(), nullable=True),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.Column('revoked_reason', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_grants_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_grants_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grants'))
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grants_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_grants_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index('ix_grants_user_id_client_id', ['user_id', 'client_id'], unique=False)

    op.create_table('upstream_identities',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('provider', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('access_token_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('refresh_token_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('access_token_expires_at', sa.BigInteger(), nullable=True),
    sa.Column('scopes', sa.Text(), nullable=True),
    sa.Column('checked_at', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_upstream_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upstream_identities')),
    sa.UniqueConstraint('provider', 'subject', name=op.f('uq_upstream_identities_provider'))
    )
    with op.batch_alter_table('upstream_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upstream_identities_user_id'), ['user_id'], unique=False)

    op.create_table('refresh_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('grant_id', sa.String(length=36), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('rotated_at', sa.BigInteger(), nullable=True),
    sa.Column('grace_used', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_refresh_tokens_grant_id_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_refresh_tokens'))
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_tokens_grant_id'), ['grant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_grant_id'))

    op.drop_table('refresh_tokens')
    with op.batch_alter_table('upstream_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upstream_identities_user_id'))

    op.drop_table('upstream_identities')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index('ix_grants_user_id_client_id')
        batch_op.drop_index(batch_op.f('ix_grants_expires_at'))
        batch_op.drop_index(batch_op.f('ix_grants_client_id'))

    op.drop_table('grants')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consents_expires_at'))
        batch_op.drop_index(batch_op.f('ix_consents_client_id'))

    op.drop_table('consents')
    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_browser_sessions_user_id'))
        batch_op.drop_index(batch_op.f('ix_browser_sessions_expires_at'))

    op.drop_table('browser_sessions')
    with op.batch_alter_table('authorization_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_requests_expires_at'))
        batch_op.drop_index(batch_op.f('ix_authorization_requests_client_id'))

    op.drop_table('authorization_requests')
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_codes_expires_at'))
        batch_op.drop_index(batch_op.f('ix_authorization_codes_client_id'))

    op.drop_table('authorization_codes')
    op.drop_table('users')
    op.drop_table('signing_keys')
    with op.batch_alter_table('revoked_access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revoked_access_tokens_expires_at'))

    op.drop_table('revoked_access_tokens')
    op.drop_table('resources')
    op.drop_table('clients')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_event'))
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')
