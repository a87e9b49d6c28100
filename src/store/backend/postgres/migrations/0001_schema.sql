-- The schema of DESIGN-17. Later migrations add to it and never edit this file.

-- The process-wide registry (tenant specs, invitations, ...), shared by all nodes.
CREATE TABLE meta (
    key   bytea PRIMARY KEY,
    value bytea NOT NULL
);

-- Every tenant's rows (the sled tenant tree), keys and values in sled's encodings.
CREATE TABLE tenant_kv (
    tenant text  NOT NULL,
    key    bytea NOT NULL,
    value  bytea NOT NULL,
    PRIMARY KEY (tenant, key)
);

-- Webhook inboxes: one row per stored group of events (the group encoding of
-- src/store/inbox.rs); `live` = events of the group not processed yet.
CREATE TABLE inbox (
    tenant text   NOT NULL,
    id     bigint NOT NULL,
    value  bytea  NOT NULL,
    live   int    NOT NULL,
    PRIMARY KEY (tenant, id)
);

-- Generated ids (inbox sequence numbers), shared by all nodes.
CREATE SEQUENCE id_seq MINVALUE 0 START 1;

-- Which node owns which tenant; owner NULL = free.
CREATE TABLE leases (
    tenant     text PRIMARY KEY,
    owner      text,
    epoch      bigint NOT NULL DEFAULT 0,
    expires_at timestamptz
);

-- The nodes of a cluster.
CREATE TABLE nodes (
    node_id      text PRIMARY KEY,
    address      text,
    heartbeat_at timestamptz NOT NULL,
    draining     bool NOT NULL DEFAULT false
);
