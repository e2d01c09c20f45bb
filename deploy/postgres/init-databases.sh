#!/usr/bin/env bash
# Creates one LOGIN role and one database owned by it for each Strategia service.
#
# The postgres image runs this from /docker-entrypoint-initdb.d/ once, when it
# initialises an empty data volume. The passwords come from the container's
# environment (<SERVICE>_DB_PASSWORD, set from the operator's .env by
# docker-compose.yml); they are read by psql's \getenv, so they never appear in
# a command line. Re-running it is harmless: existing roles and databases are
# kept (passwords too; change those with ALTER ROLE).
set -Eeuo pipefail

STRATEGIA_SERVICES=(intake groups notifications news)

for service in "${STRATEGIA_SERVICES[@]}"; do
  password_var="${service^^}_DB_PASSWORD"
  if [[ -z "${!password_var:-}" ]]; then
    echo "init-databases: ${password_var} is empty or unset" >&2
    exit 1
  fi
  echo "init-databases: role and database '${service}'"
  psql --no-psqlrc -v ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set=service="${service}" --set=password_var="${password_var}" <<'SQL'
\getenv password :password_var
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'service', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'service') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'service', :'service')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'service') \gexec
-- Each service reaches only its own database.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'service') \gexec
SQL
done
