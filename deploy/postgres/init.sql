-- Run once by the postgres image, on the first start of an empty `postgres-data` volume: one
-- database per service that owns a store (DEPLOY.md, "PostgreSQL"). Each service creates its own
-- tables at start. A database added here later must also be created by hand on an existing volume:
--   docker compose exec postgres createdb -U fmcsa fmcsa_<name>
CREATE DATABASE fmcsa_csa;
CREATE DATABASE fmcsa_violations;
CREATE DATABASE fmcsa_inspections;
CREATE DATABASE fmcsa_status;
CREATE DATABASE fmcsa_notifier;
