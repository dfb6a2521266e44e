-- Run once by the postgres image on the first start of an empty `postgres-data` volume (DEPLOY.md,
-- "PostgreSQL"). Each role's password comes from the postgres container's environment
-- (POSTGRES_<SERVICE>_PASSWORD, passed by docker-compose.yml from .env), read by psql's \getenv.
-- One role per service and one database per service that owns a store, owned by its service's role:
-- a service reaches its own database only. The gateway's role reads the status projection and the
-- notifier's deliveries and can change neither. Each service creates its own tables at start. A
-- database or role added here later must also be created by hand on an existing volume.
\set ON_ERROR_STOP on
\getenv csa_password POSTGRES_CSA_PASSWORD
\getenv violations_password POSTGRES_VIOLATIONS_PASSWORD
\getenv inspections_password POSTGRES_INSPECTIONS_PASSWORD
\getenv authority_password POSTGRES_AUTHORITY_PASSWORD
\getenv status_password POSTGRES_STATUS_PASSWORD
\getenv notifier_password POSTGRES_NOTIFIER_PASSWORD
\getenv gateway_password POSTGRES_GATEWAY_PASSWORD

CREATE ROLE csa LOGIN PASSWORD :'csa_password';
CREATE ROLE violations LOGIN PASSWORD :'violations_password';
CREATE ROLE inspections LOGIN PASSWORD :'inspections_password';
CREATE ROLE authority LOGIN PASSWORD :'authority_password';
CREATE ROLE status LOGIN PASSWORD :'status_password';
CREATE ROLE notifier LOGIN PASSWORD :'notifier_password';
CREATE ROLE gateway LOGIN PASSWORD :'gateway_password';

CREATE DATABASE fmcsa_csa OWNER csa;
CREATE DATABASE fmcsa_violations OWNER violations;
CREATE DATABASE fmcsa_inspections OWNER inspections;
CREATE DATABASE fmcsa_authority OWNER authority;
CREATE DATABASE fmcsa_status OWNER status;
CREATE DATABASE fmcsa_notifier OWNER notifier;

-- nobody but its owner connects to a service's database ...
REVOKE ALL ON DATABASE fmcsa_csa, fmcsa_violations, fmcsa_inspections, fmcsa_authority, fmcsa_status, fmcsa_notifier FROM PUBLIC;
-- ... except the gateway, to the two it reads
GRANT CONNECT ON DATABASE fmcsa_status, fmcsa_notifier TO gateway;

-- The gateway reads what the status service and the notifier create, now and later (a status rebuild
-- creates a new schema and renames it into place): default privileges of the owners, read only.
\connect fmcsa_status
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO gateway;
ALTER DEFAULT PRIVILEGES FOR ROLE status GRANT USAGE ON SCHEMAS TO gateway;
ALTER DEFAULT PRIVILEGES FOR ROLE status GRANT SELECT ON TABLES TO gateway;
ALTER ROLE gateway IN DATABASE fmcsa_status SET default_transaction_read_only = on;

\connect fmcsa_notifier
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO gateway;
ALTER DEFAULT PRIVILEGES FOR ROLE notifier GRANT USAGE ON SCHEMAS TO gateway;
ALTER DEFAULT PRIVILEGES FOR ROLE notifier GRANT SELECT ON TABLES TO gateway;
ALTER ROLE gateway IN DATABASE fmcsa_notifier SET default_transaction_read_only = on;
