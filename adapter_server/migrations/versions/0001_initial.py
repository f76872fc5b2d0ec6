"""Adapter store: data sources and services.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adapter_datasource",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("password_token", sa.Text(), nullable=True),
        sa.Column("pool_size", sa.Integer(), nullable=False),
        sa.Column("connect_timeout", sa.Float(), nullable=False),
        sa.Column("query_timeout", sa.Float(), nullable=False),
    )
    op.create_table(
        "adapter_service",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(100), nullable=False, unique=True),
        sa.Column("version", sa.String(30), nullable=False),
        sa.Column("subsystem", sa.String(100), nullable=False, index=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column(
            "datasource_id",
            sa.Integer(),
            sa.ForeignKey("adapter_datasource.id", ondelete="RESTRICT"),
            nullable=False,
            index=True,
        ),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("max_rows", sa.Integer(), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("adapter_service")
    op.drop_table("adapter_datasource")
